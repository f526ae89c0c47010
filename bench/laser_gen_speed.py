"""The LASeR policy's generation in float32 against bfloat16 (``policy.gen_dtype``), side by side in one run.

    .venv/bin/python bench/laser_gen_speed.py [--recipe src/banditarena/recipes/laser-math.yaml]
        [--threads 2] [--prompts 64] [--repeats 2] [--test N]

Generation is most of a LASeR run (sampling the training answers, the dev window and the greedy evaluations).
For each dtype it times, on the recipe's own settings (``n_samples``, ``temperature``, ``max_new_tokens``,
``gen_batch_size``): sampling ``--prompts`` training prompts, and the greedy evaluation on the whole test
split; best of ``--repeats``. It also reports what the switch changes in the measurement: the base policy's
test accuracy under each dtype, the share of identical greedy answers, and an exact McNemar test.
Run it with nothing else on the machine; it prints the load average.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=str(ROOT / "src" / "banditarena" / "recipes" / "laser-math.yaml"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--test", type=int, default=None, help="evaluate on the first N test problems (default: all)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from banditarena.laser import load_recipe
    from banditarena.laser.policy import GEN_DTYPES, Policy
    from banditarena.laser.run import load_problems
    from banditarena.models.hub import offline, resolve_llm
    from banditarena.ratings.stats import mcnemar_test

    offline()
    torch.set_num_threads(args.threads)
    rc = load_recipe(args.recipe)
    ps = rc.policy
    train, _dev, test = load_problems(rc)
    prompts = train[:args.prompts]
    test = test[:args.test] if args.test else test
    print(f"load average at start: {os.getloadavg()[0]:.2f}; torch threads {args.threads}; "
          f"cpu bf16: {'avx512_bf16' in Path('/proc/cpuinfo').read_text() if Path('/proc/cpuinfo').exists() else '?'}")
    rows, evals = [], {}
    for dt in GEN_DTYPES:
        pol = Policy.load(resolve_llm(ps.model), system_prompt=ps.system_prompt, gen_batch_size=ps.gen_batch_size,
                          gen_dtype=dt)
        t = time.perf_counter()
        pol.greedy(prompts[:1], max_new_tokens=2)  # builds the bfloat16 copy once per set of weights
        first = time.perf_counter() - t
        ts, _ = _best(lambda p=pol: p.sample(prompts, ps.n_samples, temperature=ps.temperature,
                                             max_new_tokens=ps.max_new_tokens, seed=0), args.repeats)
        te, ev = _best(lambda p=pol: p.evaluate(test, max_new_tokens=rc.eval_max_new_tokens), args.repeats)
        evals[dt] = ev
        rows.append((dt, first, ts, len(prompts) * ps.n_samples / ts, te, len(test) / te, ev.accuracy))
    base = rows[0]
    print(f"\n{len(prompts)} prompts x {ps.n_samples} samples, {ps.max_new_tokens} new tokens; greedy evaluation "
          f"on {len(test)} test problems; best of {args.repeats}\n")
    print("| gen_dtype | first call (copy) s | sampling s | answers/s | evaluation s | problems/s | test accuracy "
          "| speed-up (sampling / evaluation) |")
    print("|---|---|---|---|---|---|---|---|")
    for dt, first, ts, sps, te, eps, acc in rows:
        print(f"| {dt} | {first:.2f} | {ts:.1f} | {sps:.1f} | {te:.1f} | {eps:.1f} | {100 * acc:.1f}% "
              f"| {base[2] / ts:.2f}x / {base[4] / te:.2f}x |")
    a, b = evals["float32"], evals["bfloat16"]
    same = sum(x == y for x, y in zip(a.answers, b.answers)) / len(a.answers)
    print(f"\nidentical greedy answers: {100 * same:.1f}%; accuracy bfloat16 - float32: "
          f"{100 * (b.accuracy - a.accuracy):+.1f} points, exact McNemar p = {mcnemar_test(b.correct, a.correct)['p_value']:.2f}")


if __name__ == "__main__":
    main()
