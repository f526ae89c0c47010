"""Bandit battle allocation vs uniform at the same battle budget: usable training examples per judge call.

Offline and real: the target (vicuna-33b-v1.3) and its 7 opponents replay their real answers to the 300
arena_bench_v1 prompts, and the judge replays GPT-4's real 1-10 scores of those answers. A battle yields
training data when the target loses by at least K points. Arms: prompt clusters (k-means over MiniLM
embeddings) and opponents. Each policy runs the same budget over several seeds.

    .venv/bin/python bench/flywheel_allocation.py [--budget 120] [--seeds 10] [--k 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from banditarena.flywheel.loop import Flywheel  # noqa: E402
from banditarena.flywheel.recipe import FlywheelRecipe  # noqa: E402
from banditarena.judges.recorded import RecordedJudge  # noqa: E402
from banditarena.paths import data_dir  # noqa: E402

TARGET = "vicuna-33b-v1.3"
OPPONENTS = ["gpt-3.5-turbo", "claude-2", "gpt-3.5-turbo-1106", "claude-instant-1", "claude-1", "Llama-2-70b-chat",
             "palm-2-chat-bison-001"]


def recipe(policy: str, budget: int, k: float, seed: int, clusters: int, batch: int = 4) -> FlywheelRecipe:
    d = "data:arena_bench_v1/model_answer/"
    return FlywheelRecipe.model_validate({
        "name": f"alloc-{policy}", "seed": seed,
        "target": {"name": TARGET, "backend": "replay", "path": f"{d}{TARGET}.jsonl"},
        "opponents": [{"name": o, "backend": "replay", "path": f"{d}{o}.jsonl"} for o in OPPONENTS],
        "pool": {"source": "arena_bench_v1"},
        "cluster_field": f"kmeans:{clusters}",
        "iterations": 1, "battles_per_iteration": budget,
        "bandit": {"reward": "yield", "batch": batch,
                   "clusters": {"policy": policy}, "opponents": {"policy": policy}, "strategies": {"policy": "uniform"}},
        "selection": {"sft_margin": k, "dpo_margin": k, "decontaminate": False, "dedup": False},
        "training": {"enabled": False},
        "eval": {"testset": {"source": "arena_bench_v1", "limit": 1}},
    })


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=int, default=120)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--k", type=float, default=3.0)
    ap.add_argument("--clusters", type=int, default=8)
    ap.add_argument("--batch", type=int, default=4, help="battles per bandit round (batched select)")
    ap.add_argument("--policies", default="uniform,thompson,ucb1,epsilon_greedy,exp3")
    args = ap.parse_args()
    jdir = data_dir() / "arena_bench_v1" / "model_judgment"
    judge = RecordedJudge(sorted(jdir.glob("*.jsonl")), name="gpt-4-recorded",
                          model_of=lambda n: TARGET if n.startswith(TARGET + "-it") else n)
    rows = []
    for policy in args.policies.split(","):
        per_call, yields, seconds = [], [], []
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                fw = Flywheel(recipe(policy, args.budget, args.k, seed, args.clusters, args.batch), Path(tmp), judge=judge,
                              evaluate=False)
                res = fw.run()
                s = res.iterations[0]
                seconds.append(time.perf_counter() - t0)
                yields.append(s.yielded)
                per_call.append(s.yielded / max(1, s.judge_calls))
        rows.append((policy, np.mean(yields), np.std(yields), np.mean(per_call), np.mean(seconds), np.array(per_call)))
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
    print(f"{'policy':<16}{'yielded (mean±sd)':>20}{'examples/judge call':>22}{'vs uniform':>12}{'95% CI':>16}{'s/run':>8}")
    for policy, m, sd, pc, sec, runs in rows:
        lo, hi = ratio_ci(runs)
        ci = f"{lo:.2f}-{hi:.2f}x"
        print(f"{policy:<16}{m:>13.1f} ± {sd:<4.1f}{pc:>22.3f}{pc / base:>11.2f}x{ci:>16}{sec:>8.1f}")


if __name__ == "__main__":
    main()
