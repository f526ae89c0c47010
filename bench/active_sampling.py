"""Active pair sampling vs uniform pairing: battles needed, in simulation.

Run:  .venv/bin/python bench/active_sampling.py [--seeds 5] [--models 16] [--batch 250]

Battles are drawn from a Bradley-Terry model with 10% ties (banditarena.ratings.simulate_battles). Every
``--batch`` battles the pairs of the next batch are chosen by ``propose_pairs`` (``variance``: Chatbot
Arena's variance-reduction rule; ``uniform``: every pair equally likely) and the leaderboard is refit
(95% Wald CIs, i.e. ``fit_bt(..., bootstrap=0)``, to keep the simulation fast). Reported: battles until

* every adjacent pair (in the true order) is separated: non-overlapping CIs in the correct order;
* Kendall tau >= 0.9 against the true strengths;

median (and min-max) over seeds, and the ratio uniform / rule, for Chatbot Arena's variance rule
(``variance``) and banditarena's adjacent-pair variant (``adjacent``). Scenario A: strengths evenly spaced
(``--gap`` Elo apart); scenario B: strengths drawn from N(0, 150^2) (tau only: some adjacent gaps are
tiny, so separating every adjacent pair would take millions of battles).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import statistics
import time

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from banditarena.ratings import aggregate, fit_bt, propose_pairs, simulate_battles

METHODS = ("uniform", "variance", "adjacent")


def run(truth: pd.Series, method: str, seed: int, batch: int, max_battles: int,
        want_separation: bool) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    order = list(truth.sort_values(ascending=False).index)
    names = list(truth.index)
    counts = aggregate(simulate_battles(truth, pairs=propose_pairs(None, batch, models=names, method="uniform",
                                                                   seed=rng), seed=rng))
    n = batch
    hit = {"separated": float("nan"), "tau90": float("nan")}
    while n <= max_battles:
        lb = fit_bt(counts, bootstrap=0)
        lb = lb.reindex(order)
        if np.isnan(hit["tau90"]):
            tau = kendalltau(lb["rating"].to_numpy(), truth.reindex(order).to_numpy()).statistic
            if tau >= 0.9:
                hit["tau90"] = n
        if want_separation and np.isnan(hit["separated"]):
            lo = lb["ci_low"].to_numpy()
            hi = lb["ci_high"].to_numpy()
            if (lo[:-1] > hi[1:]).all():
                hit["separated"] = n
        if not np.isnan(hit["tau90"]) and (not want_separation or not np.isnan(hit["separated"])):
            break
        pairs = propose_pairs(counts, batch, models=names, method=method, seed=rng)
        counts = counts.merge(aggregate(simulate_battles(truth, pairs=pairs, seed=rng)))
        n += batch
    return hit


def summarise(values: list[float]) -> str:
    ok = [v for v in values if not np.isnan(v)]
    if not ok:
        return "not reached"
    med = statistics.median(ok)
    tail = "" if len(ok) == len(values) else f" ({len(values) - len(ok)} not reached)"
    return f"{med:,.0f} [{min(ok):,.0f}-{max(ok):,.0f}]{tail}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=16)
    ap.add_argument("--gap", type=float, default=40.0, help="Elo gap between adjacent models (scenario A)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--max-battles", type=int, default=200_000)
    args = ap.parse_args()
    names = [f"m{k:02d}" for k in range(args.models)]
    scenarios = {
        f"A: evenly spaced, {args.gap:g} Elo apart": (pd.Series(np.arange(args.models) * args.gap, index=names), True),
        "B: N(0, 150^2) strengths": (pd.Series(np.random.default_rng(99).normal(0, 150, args.models), index=names),
                                     False),
    }
    t0 = time.perf_counter()
    rows = []
    for label, (truth, want_sep) in scenarios.items():
        res = {m: [run(truth, m, 1000 + s, args.batch, args.max_battles, want_sep) for s in range(args.seeds)]
               for m in METHODS}
        for crit, name in (("separated", "all adjacent pairs separated"), ("tau90", "Kendall tau >= 0.9")):
            if crit == "separated" and not want_sep:
                continue
            u = [r[crit] for r in res["uniform"]]
            cells = [summarise(u)]
            for m in METHODS[1:]:
                v = [r[crit] for r in res[m]]
                ratio = statistics.median([a / b for a, b in zip(u, v) if not (np.isnan(a) or np.isnan(b))]
                                          or [np.nan])
                cells += [summarise(v), f"{ratio:.2f}"]
            rows.append((label, name, *cells))
    print(f"Active pair sampling vs uniform: {args.models} models, 10% ties, batches of {args.batch}, "
          f"{args.seeds} seeds; battles needed, median [min-max]")
    print(f"{'scenario':<34} {'criterion':<30} {'uniform':>28} {'variance rule (paper)':>28} {'ratio':>6} "
          f"{'adjacent-variance rule':>28} {'ratio':>6}")
    for label, name, u, v, rv, a, ra in rows:
        print(f"{label:<34} {name:<30} {u:>28} {v:>28} {rv:>6} {a:>28} {ra:>6}")
    print("ratio = battles needed with uniform pairing / with the rule (median over seeds; > 1: the rule needs fewer)")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
