"""Bandit battle allocation vs uniform at the same battle budget: usable training examples per judge call.

Offline and real: the target (vicuna-33b-v1.3) and its 7 opponents replay their real answers to the 300
arena_bench_v1 prompts, and the judge replays GPT-4's real 1-10 scores of those answers. A battle yields
training data when the target loses by at least K points. Arms: prompt clusters (k-means over MiniLM
embeddings) and opponents, then a prompt inside the cluster. Each policy runs the same budget over several seeds.

A policy is ``NAME`` (the dimension policy; prompts picked by Thompson sampling) or ``NAME:PROMPTS`` (prompts
picked by ``uniform`` or ``thompson``); ``uniform`` alone is the all-uniform baseline.

    .venv/bin/python bench/flywheel_allocation.py [--budget 300] [--seeds 20] [--k 3]
    .venv/bin/python bench/flywheel_allocation.py --oracle   # the full yield table and the allocation ceiling
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from banditarena.flywheel.loop import Flywheel
from banditarena.flywheel.recipe import FlywheelRecipe
from banditarena.judges.recorded import RecordedJudge
from banditarena.paths import data_dir

TARGET = "vicuna-33b-v1.3"
OPPONENTS = ["gpt-3.5-turbo", "claude-2", "gpt-3.5-turbo-1106", "claude-instant-1", "claude-1", "Llama-2-70b-chat",
             "palm-2-chat-bison-001"]


def recipe(policy: str, budget: int, k: float, seed: int, clusters: int, batch: int = 4,
           prompts: str = "thompson", prior_strength: float = 1.0) -> FlywheelRecipe:
    d = "data:arena_bench_v1/model_answer/"
    return FlywheelRecipe.model_validate({
        "name": f"alloc-{policy}", "seed": seed,
        "target": {"name": TARGET, "backend": "replay", "path": f"{d}{TARGET}.jsonl"},
        "opponents": [{"name": o, "backend": "replay", "path": f"{d}{o}.jsonl"} for o in OPPONENTS],
        "pool": {"source": "arena_bench_v1"},
        "cluster_field": f"kmeans:{clusters}",
        "iterations": 1, "battles_per_iteration": budget,
        "bandit": {"reward": "yield", "batch": batch,
                   "clusters": {"policy": policy}, "opponents": {"policy": policy}, "strategies": {"policy": "uniform"},
                   "prompts": {"policy": prompts, "prior_strength": prior_strength}},
        "selection": {"sft_margin": k, "dpo_margin": k, "decontaminate": False, "dedup": False},
        "training": {"enabled": False},
        "eval": {"testset": {"source": "arena_bench_v1", "limit": 1}},
    })


def oracle(judge: RecordedJudge, args: argparse.Namespace) -> None:
    """Every (prompt, opponent) battle once: the yield table behind the allocation problem, the ceiling of a
    policy that knew each cluster x opponent cell's yield, and how much a prompt's record predicts."""
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        fw = Flywheel(recipe("uniform", 10_000, args.k, 0, args.clusters, 64, "uniform"), Path(tmp), judge=judge,
                      evaluate=False)
        res = fw.run()
    d = res.decisions
    w = d[d["dimension"] == "opponents"][["step", "arm", "meta"]].rename(columns={"arm": "opponent"})
    w["cluster"] = d[d["dimension"] == "clusters"].set_index("step").loc[w["step"], "arm"].to_numpy()
    meta = w["meta"].map(json.loads)
    w["prompt"], w["y"] = meta.map(lambda m: m["prompt_id"]), meta.map(lambda m: m["yield"])
    rate = w["y"].mean()
    print(f"\nall {len(w)} battles once: yield {rate:.3f}")
    print(w.pivot_table(index="cluster", columns="opponent", values="y", aggfunc="mean").round(2).to_string())
    cells = w.groupby(["cluster", "opponent"])["y"].agg(["mean", "size"]).sort_values("mean", ascending=False)
    left, got = args.budget, 0.0
    for m, n in zip(cells["mean"], cells["size"], strict=True):
        t = min(left, n)
        got, left = got + m * t, left - t
        if left <= 0:
            break
    print(f"ceiling of cell allocation at budget {args.budget}: {got / args.budget:.3f} = "
          f"{got / args.budget / rate:.2f}x the all-battle yield")
    m = w.pivot_table(index="prompt", columns="opponent", values="y")
    lost, not_lost = [], []
    for a in m.columns:
        for b in m.columns:
            if a != b:
                lost.append(m.loc[m[a] == 1, b].dropna())
                not_lost.append(m.loc[m[a] == 0, b].dropna())
    print(f"P(yield vs opponent B | target lost the prompt to opponent A by >= K) = {pd.concat(lost).mean():.2f}; "
          f"| did not = {pd.concat(not_lost).mean():.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--k", type=float, default=3.0)
    ap.add_argument("--clusters", type=int, default=8)
    ap.add_argument("--prompt-prior", type=float, default=1.0, help="prior_strength of Thompson prompt picking")
    ap.add_argument("--batch", type=int, default=4, help="battles per bandit round (batched select)")
    ap.add_argument("--policies", default="uniform,thompson:uniform,thompson,klucb,epsilon_greedy,ucb1")
    ap.add_argument("--oracle", action="store_true", help="print the full yield table and the allocation ceiling")
    args = ap.parse_args()
    jdir = data_dir() / "arena_bench_v1" / "model_judgment"
    judge = RecordedJudge(sorted(jdir.glob("*.jsonl")), name="gpt-4-recorded",
                          model_of=lambda n: TARGET if n.startswith(TARGET + "-it") else n)
    if args.oracle:
        oracle(judge, args)
        return
    rows = []
    for label in args.policies.split(","):
        policy, _, prompts = label.partition(":")
        prompts = prompts or ("uniform" if policy == "uniform" else "thompson")
        label = policy if policy == "uniform" and prompts == "uniform" else f"{policy}:{prompts}"
        per_call, yields, seconds, distinct = [], [], [], []
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                rec = recipe(policy, args.budget, args.k, seed, args.clusters, args.batch, prompts, args.prompt_prior)
                fw = Flywheel(rec, Path(tmp), judge=judge, evaluate=False)
                res = fw.run()
                s = res.iterations[0]
                seconds.append(time.perf_counter() - t0)
                yields.append(s.yielded)
                per_call.append(s.yielded / max(1, s.judge_calls))
                meta = res.decisions.loc[res.decisions["dimension"] == "clusters", "meta"].map(json.loads)
                distinct.append(len({m["prompt_id"] for m in meta if m["yield"]}))
        rows.append((label, np.mean(yields), np.std(yields), np.mean(per_call), np.mean(seconds), np.array(per_call),
                     np.mean(distinct)))
    base = next(r for r in rows if r[0] == "uniform")[3]
    base_runs = next(r for r in rows if r[0] == "uniform")[5]
    rng = np.random.default_rng(0)

    def ratio_ci(runs: np.ndarray) -> tuple[float, float]:
        # 95% bootstrap CI of mean(policy) / mean(uniform), seeds resampled independently per policy
        a = rng.choice(runs, size=(4000, len(runs))).mean(1)
        b = rng.choice(base_runs, size=(4000, len(base_runs))).mean(1)
        lo, hi = np.percentile(a / b, [2.5, 97.5])
        return float(lo), float(hi)

    print(f"\nArena Learning battle allocation: target {TARGET} vs {len(OPPONENTS)} opponents, arena_bench_v1 (300 prompts),")
    print(f"judge = GPT-4's recorded scores, yield = target lost by >= {args.k:g}; budget {args.budget} battles, "
          f"{args.seeds} seeds, {args.clusters} k-means clusters, {args.batch} battles per bandit round\n")
    print("policy = dimension policy:prompt policy; 'prompts w/ data' = distinct prompts with at least one yield\n")
    print(f"{'policy':<24}{'yielded (mean±sd)':>20}{'prompts w/ data':>17}{'examples/judge call':>22}{'vs uniform':>12}"
          f"{'95% CI':>16}{'s/run':>8}")
    for label, m, sd, pc, sec, runs, dist in rows:
        lo, hi = ratio_ci(runs)
        ci = f"{lo:.2f}-{hi:.2f}x"
        print(f"{label:<24}{m:>13.1f} ± {sd:<4.1f}{dist:>17.1f}{pc:>22.3f}{pc / base:>11.2f}x{ci:>16}{sec:>8.1f}")


if __name__ == "__main__":
    main()
