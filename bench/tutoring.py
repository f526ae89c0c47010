"""Tutoring benchmark: every teaching policy side by side on simulated classrooms, simulation speed, hints.

    python bench/tutoring.py                       # arith recipe, 1,000 learners per population, 24 hints
    python bench/tutoring.py --gsm8k               # also the GSM8K curriculum
    python bench/tutoring.py --hints 0             # no hint measurement

Prints one table with every (population, policy) row: final mean mastery with its 95% CI, steps to reach the
expert sequence's final mean mastery (bootstrap 95% CI over learners), the share of steps saved, accuracy,
median steps for a learner to reach 50% / 80% mastery; then the per-profile finals, the targets (ZPDES >= 20%
fewer steps than the expert on the heterogeneous population, CIs separate from random), the simulation speed on
one core, and the hint figures (share rejected by each check, with Wilson 95% CIs, and the wait per hint).
Results are cached under --run-dir (content-addressed): rerunning only prints.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from banditarena.curriculum.classroom import format_table, run_classrooms
from banditarena.curriculum.learners import make_learners
from banditarena.curriculum.policies import make_policy
from banditarena.curriculum.sim import simulate
from banditarena.curriculum.spec import load_curriculum

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "src" / "banditarena" / "recipes"


def load() -> str:
    try:
        return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"
    except OSError:
        return "load unknown"


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def classrooms(recipe: Path, out: Path, learners: int | None, steps: int | None, workers: int | None) -> pd.DataFrame:
    res = run_classrooms(recipe, out, n_learners=learners, n_steps=steps, workers=workers, progress=True)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    print(f"\n== {recipe.name}: every policy side by side ({res.runs[0].n_learners} learners per population, "
          f"{res.runs[0].n_steps} steps; {res.seconds:.0f} s, {load()})")
    print(format_table(res.summary, "expert").to_string(index=False))
    piv = res.groups.pivot_table(index=["population", "profile"], columns="policy", values="final_mastery",
                                 sort=False).round(3)
    print("\nfinal mean mastery per learner profile:")
    print(piv.to_string())
    print(f"(tables and figures: {out})")
    return res.summary


def targets(summary: pd.DataFrame, name: str) -> None:
    print(f"\n== targets ({name})")
    for pop in dict.fromkeys(summary.population):
        s = summary[summary.population == pop].set_index("policy")
        if "zpdes" not in s.index or "expert" not in s.index:
            continue
        z = s.loc["zpdes"]
        saved = z["fewer_steps_vs_baseline"]
        r = s.loc["random"] if "random" in s.index else None
        sep = r is not None and z["final_ci_low"] > r["final_ci_high"]
        ok = np.isfinite(saved) and saved >= 0.20
        how = f"in {100 * saved:.0f}% fewer steps" if np.isfinite(saved) else "never (within the steps)"
        line = (f"  {pop:>18}: ZPDES reaches the expert's final mastery {z['baseline_final']:.3f} {how} -> "
                f"{'PASS' if ok else 'MISS'} (>= 20%)")
        if r is not None:
            line += (f"; beats random with separate CIs: {'PASS' if sep else 'MISS'} ({z['final_mastery']:.3f} "
                     f"[{z['final_ci_low']:.3f}, {z['final_ci_high']:.3f}] vs {r['final_mastery']:.3f} "
                     f"[{r['final_ci_low']:.3f}, {r['final_ci_high']:.3f}])")
        print(line)


def speed(learners: int, steps: int, repeats: int = 3) -> None:
    """Learner-steps per second of BKT learners taught by ZPDES, in this one process (one core)."""
    cur = load_curriculum("arith")
    mix = {"average": 0.4, "fast": 0.2, "slow": 0.2, "gaps": 0.2}
    best_sim, best_pol = 0.0, 0.0
    for rep in range(repeats):
        lr = make_learners("bkt", cur, learners, mix, np.random.default_rng(rep))
        pol = make_policy("zpdes", cur, learners, np.random.default_rng(rep + 100))
        run = simulate(lr, pol, steps, np.random.default_rng(rep + 200))
        best_sim = max(best_sim, learners * steps / run.seconds)
        pol = make_policy("zpdes", cur, learners, np.random.default_rng(rep + 100))
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        for _ in range(steps):
            a, _ = pol.select()
            pol.update(a, rng.random(learners) < 0.7)
        best_pol = max(best_pol, learners * steps / (time.perf_counter() - t0))
    print(f"\n== speed (one process, best of {repeats}; {load()})")
    print(f"  BKT learners + ZPDES, {learners} learners x {steps} steps: {best_sim:,.0f} learner-steps/s "
          f"(target >= 100,000) -> {'PASS' if best_sim >= 1e5 else 'MISS'}")
    print(f"  ZPDES decisions and updates alone: {best_pol:,.0f} learner-steps/s")


def hints(recipe: Path, n: int, batch: int) -> None:
    import torch

    from banditarena.curriculum.hints import STAGES, build_hint_service, hint_trial
    from banditarena.curriculum.recipe import load_recipe

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    rec, cur = load_recipe(recipe)
    service = build_hint_service(rec.hints, rec.base_dir)
    ep = rec.hints.endpoint
    service.hint(cur.item(0, np.random.default_rng(99)), cur.activities[0].hint, "1", 2)   # load the model
    service.counts = dict.fromkeys(service.counts, 0)
    t0 = time.perf_counter()
    one, items1 = hint_trial(cur, service, n, None, seed=1, batch=1)        # what a learner waits for
    t1 = time.perf_counter()
    service.timeout_s = 3600.0   # throughput when batched: no deadline, every batch is waited for
    many, _ = hint_trial(cur, service, n, None, seed=2, batch=batch)
    t2 = time.perf_counter()
    res = one + many
    N = len(res)
    print(f"\n== hints from {ep.backend}:{ep.model} ({N} hints on {cur.name}, reading grade of each activity, "
          f"max_tokens {rec.hints.max_tokens}, safety {service.scorer_name}; torch threads "
          f"{torch.get_num_threads()}; {load()})")
    stages = list(STAGES)
    shown = sum(r.source == "model" for r in res)
    lo, hi = wilson(shown, N)
    print(f"  shown from the model: {shown}/{N} = {shown / N:.0%} [{lo:.0%}, {hi:.0%}]")
    for st in stages:
        k = sum(r.stage == st for r in res)
        lo, hi = wilson(k, N)
        print(f"  rejected by {st:<11}: {k:>3}/{N} = {k / N:>4.0%} [{lo:.0%}, {hi:.0%}]")
    lat = np.array([r.latency_s for r in one])
    print(f"  wait for one hint (asked alone): median {np.median(lat):.2f} s, p90 {np.quantile(lat, 0.9):.2f} s, "
          f"max {lat.max():.2f} s ({t1 - t0:.0f} s for {len(one)})")
    print(f"  batched by {batch} (no deadline): {len(many) / (t2 - t1):.2f} hints/s")
    print(f"  (the learner-facing deadline is hints.timeout_s = {rec.hints.timeout_s:g} s: slower hints become "
          "templates, counted under backend)")
    print("  examples (shown -> text):")
    for r, it in list(zip(one, items1))[:10]:
        print(f"    [{it.activity}] {r.source:<8} {r.stage or '-':<11} {(r.generated or '')[:90]!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "bench-tutoring")
    ap.add_argument("--learners", type=int, default=None, help="learners per population (recipe: 1000)")
    ap.add_argument("--steps", type=int, default=None, help="steps per learner (recipe: 300)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--gsm8k", action="store_true", help="also the GSM8K curriculum (needs ../shared/data)")
    ap.add_argument("--hints", type=int, default=24, help="hints asked alone and again batched (0: skip)")
    ap.add_argument("--hint-batch", type=int, default=8)
    ap.add_argument("--speed-learners", type=int, default=1000)
    ap.add_argument("--only", default="classrooms,speed,hints",
                    help="parts to run, of classrooms,speed,hints (e.g. --only speed,hints to re-time)")
    a = ap.parse_args()
    only = {x.strip() for x in a.only.split(",") if x.strip()}
    if not only or only - {"classrooms", "speed", "hints"}:
        ap.error(f"--only: unknown part(s) {sorted(only - {'classrooms', 'speed', 'hints'}) or '(none)'}")
    recipe = RECIPES / "tutor-arith.yaml"
    if "classrooms" in only:
        s = classrooms(recipe, a.run_dir / "arith", a.learners, a.steps, a.workers)
        targets(s, "arith")
        if a.gsm8k:
            g = classrooms(RECIPES / "tutor-gsm8k.yaml", a.run_dir / "gsm8k", a.learners, a.steps, a.workers)
            targets(g, "gsm8k")
    if "speed" in only:
        speed(a.speed_learners, 300)
    if a.hints and "hints" in only:
        hints(recipe, a.hints, a.hint_batch)


if __name__ == "__main__":
    main()
