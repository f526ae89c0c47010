"""The LASeR routing check on real sampled answers: does LinUCB pick the right specialist RM?

    .venv/bin/python bench/laser_routing.py [--from-runs runs/laser-seeds] [--run-dir runs/laser-routing]
        [--problems 160] [--decisions 400] [--seeds 0 1 2] [--dims 8 16] [--contexts policy text] [--alpha 1.0]

Answers: with ``--from-runs``, the answer sets the reproduction's SmolLM2 policies sampled during training
(``iter_*/samples.json`` of every finished or running method and seed; no new generation); otherwise
SmolLM2-135M-Instruct samples 4 answers (temperature 0.8, 32 new tokens) to ``--problems`` generated
problems once (cached in RUN_DIR). The verifier labels them; real RMs (partial credit, number-F1 reference
similarity, exact verifier) score them. Specialist ``c`` is one real RM on category ``c`` and the same RM
inverted elsewhere, so each category's best RM is known. Contexts: ``policy`` = the base policy's prompt
embeddings (mean final hidden state, fixed Gaussian projection to ``dim``, unit norm), as in the LASeR
loop; ``text`` = a hashed bag of words of the prompt, projected the same way. No training.

Prints, per method (LinUCB instance and batch mode, random, sequential, the classifier router fitted on a
dev split, the per-category oracle), the right-pick rate in the second half (mean over seeds, min..max),
the cumulative pseudo-regret against the oracle, and the pick rate over time; writes RUN_DIR/routing.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ASSIGN = {"add": "partial", "sub": "refsim", "mul": "verifier", "two_step": "partial"}


def _samples(run: Path, n: int, threads: int) -> dict:
    cache = run / f"samples_{n}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    import torch

    torch.set_num_threads(threads)
    from banditarena.laser import Policy, arithmetic_problems
    from banditarena.models.hub import offline, resolve_llm

    offline()
    probs = arithmetic_problems(n, seed=101, id_prefix="route")  # not the reproduction's problems
    pol = Policy.load(resolve_llm("smollm2-135m-instruct"), system_prompt="You are a math tutor. Be brief.")
    answers = pol.sample(probs, 4, temperature=0.8, max_new_tokens=32, seed=7)
    hidden = pol.embed(probs, dim=None)  # full 576-d; projected per --dims below
    out = {"ids": [p.id for p in probs], "texts": [p.text for p in probs], "categories": [p.category for p in probs],
           "references": [p.reference for p in probs], "messages": [p.messages for p in probs], "answers": answers,
           "hidden": hidden.tolist()}
    run.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out))
    return out


def _from_runs(runs: Path, run: Path, threads: int) -> dict:
    """Answer sets sampled during the reproduction, with the base policy's embeddings of their prompts."""
    from experiments.multiseed import sampled_answer_sets

    from banditarena.errors import ConfigError

    try:
        recipe, got = sampled_answer_sets(runs)
    except ConfigError as exc:
        raise SystemExit(f"error: --from-runs {exc}") from None
    by_id = {p.id: p for p, _ in got}
    ids = sorted(by_id)
    cache = run / "embed_from_runs.json"
    if cache.exists():
        hid = json.loads(cache.read_text())
    else:
        import torch

        torch.set_num_threads(threads)
        from banditarena.laser import Policy
        from banditarena.models.hub import offline, resolve_llm

        offline()
        pol = Policy.load(resolve_llm(recipe["policy"]["model"]), system_prompt=recipe["policy"]["system_prompt"])
        hid = dict(zip(ids, pol.embed([by_id[i] for i in ids], dim=None).tolist()))
        run.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(hid))
    ps = [p for p, _ in got]
    return {"ids": [p.id for p in ps], "texts": [p.text for p in ps], "categories": [p.category for p in ps],
            "references": [p.reference for p in ps], "messages": [p.messages for p in ps],
            "answers": [a for _, a in got], "hidden": [hid[p.id] for p in ps]}


def _real_rms(s: dict, labels: list, scores: dict) -> None:
    """Mean ranking agreement with the verifier of each real RM (and Gemma 3 270M) per category."""
    from banditarena.laser.rewards import ranking_agreement
    from banditarena.rewards.gguf import GGUFLikelihoodRM

    inf = [i for i, y in enumerate(labels) if np.nanmin(y) == 0 and np.nanmax(y) == 1]
    gem = GGUFLikelihoodRM("gemma3-270m", name="gemma").score_batch([s["messages"][i] for i in inf],
                                                                      [s["answers"][i] for i in inf])
    table = {k: [ranking_agreement(v[i], labels[i]) for i in inf] for k, v in scores.items()}
    table["gemma"] = [ranking_agreement(g, labels[i]) for g, i in zip(gem, inf)]
    cats = np.array([s["categories"][i] for i in inf])
    print(f"{len(inf)} answer sets with a right and a wrong answer\n")
    print("| category | n | " + " | ".join(table) + " |\n|---|---|" + "---|" * len(table))
    for c in [*sorted(set(cats)), "all"]:
        m = cats == c if c != "all" else np.ones(len(cats), dtype=bool)
        print(f"| {c} | {int(m.sum())} | " + " | ".join(f"{np.nanmean(np.array(v)[m]):.2f}" for v in table.values())
              + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", default=str(ROOT / "runs" / "laser-routing"))
    ap.add_argument("--problems", type=int, default=160)
    ap.add_argument("--decisions", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--dims", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--real-rms", action="store_true",
                    help="only print each real RM's agreement per category, Gemma 3 270M included (no routing)")
    ap.add_argument("--from-runs", default=None, help="reuse the answers sampled by bench/laser_seeds.py runs")
    ap.add_argument("--contexts", nargs="+", default=["policy", "text"], choices=["policy", "text"])
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from experiments.routing import (
        METHODS,
        RoutingData,
        run_routing,
        specialist_agreement,
        text_contexts,
    )

    from banditarena.laser.rewards import verifier_labels
    from banditarena.rewards.partial_credit import PartialCreditRM
    from banditarena.rewards.reward_models import ReferenceSimilarityRM, VerifierRM

    run = Path(args.run_dir)
    s = _from_runs(Path(args.from_runs), run, args.threads) if args.from_runs else _samples(run, args.problems,
                                                                                             args.threads)
    labels = verifier_labels(s["answers"], s["references"])
    rms = {"partial": PartialCreditRM(), "refsim": ReferenceSimilarityRM("numbers"), "verifier": VerifierRM()}
    scores = {k: rm.score_batch(s["messages"], s["answers"], s["references"]) for k, rm in rms.items()}
    if args.real_rms:  # the learned judges as pointwise RMs too (kind: learned), with their scoring time
        from banditarena.rewards.reward_models import LearnedJudgeRM

        n_answers = sum(len(a) for a in s["answers"])
        for key, art in (("learned", "default"), ("learned_fast", "judge-learned-fast")):
            t0 = time.perf_counter()
            scores[key] = LearnedJudgeRM(art, name=key).score_batch(s["messages"], s["answers"], s["references"])
            print(f"{key}: {n_answers} answers scored in {time.perf_counter() - t0:.1f} s (load included)")
    print("| RM | answer sets whose 4 scores all tie | NaN scores |\n|---|---|---|")
    for k, sc in scores.items():
        tie = np.mean([bool(np.all(x == x[0])) for x in sc])
        print(f"| {k} | {tie:.3f} | {int(sum(np.isnan(x).sum() for x in sc))} |")
    if args.real_rms:
        _real_rms(s, labels, scores)
        return
    agree, names, keep = specialist_agreement(scores, labels, s["categories"], ASSIGN)
    cats = np.array(s["categories"])
    print(f"{len(cats)} answer sets of 4 sampled answers ({len(set(s['ids']))} distinct problems); {int(keep.sum())} with a right and a wrong answer "
          f"(per category: {dict(zip(*np.unique(cats[keep], return_counts=True)))})")
    print("mean agreement per category (rows) and specialist (columns):")
    print("| category | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for c in sorted(set(cats[keep])):
        m = agree[keep & (cats == c)].mean(axis=0)
        print(f"| {c} | " + " | ".join(f"{v:.2f}" for v in m) + " |")
    hidden = np.asarray(s["hidden"])
    uniq = sorted(set(s["ids"]))  # the router's dev split: a quarter of the problems, never decided on
    dev_ids = set(np.random.default_rng(0).permutation(uniq)[: max(1, len(uniq) // 4)].tolist())
    dev = np.array([i in dev_ids for i in s["ids"]])
    out = {"problems": len(cats), "informative": int(keep.sum()), "specialists": names, "results": {}}
    print(f"\n{args.decisions} decisions per run; seeds {args.seeds}; LinUCB alpha {args.alpha}; "
          f"batch mode: {args.batch_size} prompts of one category per decision\n")
    print("| context | method | right picks, 2nd half | min..max | cumulative regret | right picks by fifth |")
    print("|---|---|---|---|---|---|")
    for kind, dim in [(k, d) for k in args.contexts for d in args.dims]:
        if kind == "text":
            ctx = text_contexts(s["texts"], dim=dim, seed=dim)
        else:
            proj = np.random.default_rng(dim).normal(size=(hidden.shape[1], dim)) / np.sqrt(dim)
            ctx = hidden @ proj
            ctx /= np.maximum(np.linalg.norm(ctx, axis=1, keepdims=True), 1e-12)
        data = RoutingData(cats[keep], ctx[keep], agree[keep], names, dev[keep])
        for m in METHODS:
            rs = [run_routing(data, m, decisions=args.decisions, batch_size=args.batch_size, alpha=args.alpha,
                              seed=sd) for sd in args.seeds]
            sh = [r.second_half_correct for r in rs]
            reg = [r.cumulative_regret for r in rs]
            win = np.mean([r.windows(5) for r in rs], axis=0)
            out["results"][f"{kind}-{dim}/{m}"] = {"second_half_correct": sh, "regret": reg, "windows": win.tolist()}
            print(f"| {kind} {dim}-d | {m} | {np.mean(sh):.3f} | {min(sh):.2f}..{max(sh):.2f} | {np.mean(reg):.1f} | "
                  + " ".join(f"{w:.2f}" for w in win) + " |")
    (run / "routing.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
