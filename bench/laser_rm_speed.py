"""Cost of LASeR's reward models per answer scored (CPU seconds, so a busy machine skews it less).

    .venv/bin/python bench/laser_rm_speed.py [--answers 32] [--transformers]

Gemma 3 270M (Q4_K_M GGUF from PyPI) through llama.cpp - load time, then CPU seconds per answer with the
prompt's KV cache reused; ``--transformers`` also loads the same GGUF through transformers (``gguf_file=``,
dequantised to fp32) and times a batched forward pass. The partial-credit verifier and number-F1 similarity
for comparison. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _cpu(fn):
    t0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - t0, time.perf_counter() - w0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--answers", type=int, default=32)
    ap.add_argument("--transformers", action="store_true")
    args = ap.parse_args()
    from banditarena.laser.data import arithmetic_problems
    from banditarena.rewards.gguf import GGUFLikelihoodRM, gguf_path
    from banditarena.rewards.partial_credit import PartialCreditRM
    from banditarena.rewards.reward_models import ReferenceSimilarityRM

    probs = arithmetic_problems(args.answers // 4, seed=11)
    answers = []
    for p in probs:
        work, n = p.reference.split("\n#### ")
        answers.append([f"{work}. The answer is {n}.", f"The answer is {int(n) + 1}.",
                        f"Let me think. {work.split(' = ')[0]} = {int(n) + 2}, so the answer is {int(n) + 2}.",
                        f"{p.text.split('.')[0]}. The answer is {n}."])
    msgs, refs = [p.messages for p in probs], [p.reference for p in probs]
    n = sum(len(a) for a in answers)
    rows = []
    rm = GGUFLikelihoodRM("gemma3-270m", name="gemma")
    _, c, w = _cpu(rm.load)
    rows.append(("gemma (llama.cpp) load", c, w))
    _, c, w = _cpu(lambda: rm.score_batch(msgs[:1], answers[:1], refs[:1]))  # warm the mmap
    _, c, w = _cpu(lambda: rm.score_batch(msgs, answers, refs))
    rows.append((f"gemma (llama.cpp) per answer ({n} answers)", c / n, w / n))
    for name, other in (("partial", PartialCreditRM()), ("refsim numbers", ReferenceSimilarityRM("numbers"))):
        _, c, w = _cpu(lambda other=other: other.score_batch(msgs, answers, refs))
        rows.append((f"{name} per answer", c / n, w / n))
    if args.transformers:
        import torch
        from transformers import AutoModelForCausalLM

        path = gguf_path("gemma3-270m")
        model, c, w = _cpu(lambda: AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                                       dtype=torch.float32))
        rows.append(("gemma (transformers, dequantised fp32) load", c, w))
        ids = torch.randint(10, 1000, (16, 90))
        with torch.no_grad():
            _, c, w = _cpu(lambda: model(input_ids=ids))
        rows.append(("gemma (transformers) forward, 16 x 90 tokens, per answer", c / 16, w / 16))
    print(f"torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}; load average {os.getloadavg()[0]:.1f}")
    print("| what | CPU s | wall s |\n|---|---|---|")
    for what, c, w in rows:
        print(f"| {what} | {c:.4f} | {w:.4f} |")


if __name__ == "__main__":
    main()
