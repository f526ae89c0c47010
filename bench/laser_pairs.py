"""What each reward model's pairs would teach under the two pair rules (``loop.pair_with``), on real samples.

    .venv/bin/python bench/laser_pairs.py --from-runs runs/laser-warm [--gemma] [--max-sets N] [--noise partial=0.3]

Replays the answer sets that the reproduction's policies sampled during training (``iter_*/samples.json`` of
every clean run under ``--from-runs``; no generation, no training) through each RM of the run's recipe
(``gemma`` only with ``--gemma``: llama.cpp, slow), forms the pairs that the loop would form with ``rank``
(top vs ranks 2..m, a tied pair dropped: the documented runs) and with ``lower`` (top vs the m - 1 best answers
scored strictly below it), and labels both answers of every pair with the verifier. A (right, wrong) pair
teaches the policy the right answer; (wrong, right) teaches it the wrong one; (right, right) and (wrong, wrong)
teach style at most, but their NLL term still imitates the chosen answer. ``--noise RM=SIGMA`` also replays
that RM with N(0, SIGMA^2) added to its scores (the noise experiment's RM; seeded). Prints one table.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from-runs", required=True, help="a bench/laser_seeds.py run directory")
    ap.add_argument("--gemma", action="store_true", help="also replay the GGUF likelihood RM (slow)")
    ap.add_argument("--max-sets", type=int, default=None, help="use the first N answer sets (default: all)")
    ap.add_argument("--noise", default=None, help="RM=SIGMA: also replay RM with Gaussian noise on its scores")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from experiments.multiseed import sampled_answer_sets

    from banditarena.errors import ConfigError
    from banditarena.laser import load_recipe
    from banditarena.laser.pairs import PAIR_WITH, PairStats, form_pairs
    from banditarena.laser.rewards import verifier_labels
    from banditarena.laser.rm_registry import build_reward_model

    runs = Path(args.from_runs)
    try:
        recipe, sets = sampled_answer_sets(runs, part="clean")
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None
    rc = load_recipe(recipe)
    sets = sets[:args.max_sets] if args.max_sets else sets
    if not sets:
        raise SystemExit(f"error: {runs}: no iter_*/samples.json under seed*/clean")
    labels = verifier_labels([a for _, a in sets], [p.reference for p, _ in sets])
    m = rc.loop.pairs_m
    print(f"{len(sets)} answer sets of {rc.policy.n_samples} answers from {runs}; pairs_m = {m}; "
          f"{sum(1 for y in labels if 0 < np.nansum(y) < len(y))} sets hold a right and a wrong answer\n")
    print("| RM | pair_with | pairs per set | (right, wrong) | (wrong, right) | (right, right) | (wrong, wrong) "
          "| (right, wrong) pairs per set |")
    print("|---|---|---|---|---|---|---|---|")
    specs = list(rc.reward_models)
    if args.noise:
        name, _, sigma = args.noise.partition("=")
        base = next((sp for sp in specs if sp.name == name), None)
        if base is None or not sigma:
            raise SystemExit(f"error: --noise {args.noise}: use RM=SIGMA with an RM of the recipe "
                             f"({', '.join(sp.name for sp in specs)})")
        specs.append(base.model_copy(update={"name": f"{name}+N(0,{sigma}^2)", "noise_sigma": float(sigma)}))
    for spec in specs:
        if spec.kind == "gguf" and not args.gemma:
            continue
        try:
            rm = build_reward_model(spec)
        except ConfigError as exc:
            print(f"| {spec.name} | skipped: {exc} |")
            continue
        scores = rm.score_batch([p.messages for p, _ in sets], [a for _, a in sets], [p.reference for p, _ in sets])
        for rule in PAIR_WITH:
            kinds: Counter[str] = Counter()
            for (p, ans), s, y in zip(sets, scores, labels):
                idx = {a: i for i, a in enumerate(ans)}
                for row in form_pairs(p, ans, np.asarray(s, dtype=float), m, PairStats(), pair_with=rule):
                    c, r = idx[row["chosen"][0]["content"]], idx[row["rejected"][0]["content"]]
                    kinds[("right" if y[c] == 1 else "wrong", "right" if y[r] == 1 else "wrong")] += 1
            n = sum(kinds.values())
            share = {k: kinds[k] / n if n else float("nan") for k in
                     [("right", "wrong"), ("wrong", "right"), ("right", "right"), ("wrong", "wrong")]}
            print(f"| {spec.name} | {rule} | {n / len(sets):.2f} | " + " | ".join(f"{v:.2f}" for v in share.values())
                  + f" | {kinds[('right', 'wrong')] / len(sets):.3f} |")


if __name__ == "__main__":
    main()
