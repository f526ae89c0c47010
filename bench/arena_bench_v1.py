"""Real-data check of the offline arena: 8 models' real answers on the 300 arena_bench_v1 prompts.

Every pair battles on every prompt, judged offline (MiniLM cosine of each answer to GPT-4's reference
answer, both orders). The Bradley-Terry leaderboard is compared with the reference ranking made by a judge
no one here wrote: the mean of GPT-4's real 1-10 single-answer scores in arena_bench_v1/model_judgment.
As a control, the same arena judged by GPT-4's recorded scores (pairwise from single scores) is shown too.

    .venv/bin/python bench/arena_bench_v1.py [--prompts 300] [--run-dir runs/bench-arena-bench-v1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from banditarena.arena.service import leaderboard, run_battles
from banditarena.config import ArenaRecipe
from banditarena.judges.recorded import RecordedJudge
from banditarena.paths import data_dir
from banditarena.ratings import agreement_with_ci, kendall, separability, spearman
from banditarena.text import iter_jsonl

MODELS = ["gpt-3.5-turbo", "claude-2", "gpt-3.5-turbo-1106", "claude-instant-1", "claude-1", "vicuna-33b-v1.3",
          "Llama-2-70b-chat", "palm-2-chat-bison-001"]


def reference_ranking() -> pd.Series:
    means = {}
    for m in MODELS:
        scores = [r.get("score") for _, r in iter_jsonl(data_dir() / "arena_bench_v1" / "model_judgment" / f"{m}.jsonl")]
        means[m] = float(np.mean([s for s in scores if isinstance(s, (int, float)) and s >= 0]))
    return pd.Series(means).sort_values(ascending=False)


def recipe(n: int, name: str) -> ArenaRecipe:
    return ArenaRecipe.model_validate({
        "name": name, "seed": 0, "prompts": {"source": "arena_bench_v1", "limit": n},
        "contestants": [{"name": m, "backend": "replay", "path": f"data:arena_bench_v1/model_answer/{m}.jsonl"} for m in MODELS],
        "judge": {"kind": "similarity"}, "battle": {"pairs": "all"},
    })


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=300)
    ap.add_argument("--run-dir", default="runs/bench-arena-bench-v1")
    args = ap.parse_args()
    ref = reference_ranking()
    ref_lb = pd.DataFrame({"rating": ref})
    rows = []
    jdir = data_dir() / "arena_bench_v1" / "model_judgment"
    for label, judge in (("MiniLM similarity to GPT-4 reference (offline)", None),
                         ("GPT-4 recorded scores (control)", RecordedJudge(sorted(jdir.glob("*.jsonl"))))):
        t0 = time.perf_counter()
        res, store = run_battles(recipe(args.prompts, "sim" if judge is None else "recorded"),
                                 Path(args.run_dir) / ("similarity" if judge is None else "recorded"),
                                 progress=False, judge=judge)
        lb = leaderboard(store, bootstrap=100, seed=0)
        rows.append((label, lb, time.perf_counter() - t0, res))
    print(f"\nOffline arena over {len(MODELS)} models x {args.prompts} arena_bench_v1 prompts, all pairs, both orders")
    print("reference ranking: mean GPT-4 single-answer score (arena_bench_v1/model_judgment)\n")
    print(f"{'model':<24}{'GPT-4 mean':>11}" + "".join(f"{'rank(' + str(i + 1) + ')':>10}" for i in range(len(rows))))
    for m in ref.index:
        print(f"{m:<24}{ref[m]:>11.3f}" + "".join(f"{int(lb.loc[m, 'rank']):>10}" for _, lb, _, _ in rows))
    print()
    print(f"{'judge':<48}{'Spearman':>9}{'Kendall':>9}{'agree-CI':>9}{'separab.':>9}{'battles':>9}{'invalid':>8}{'s':>7}")
    for label, lb, sec, res in rows:
        print(f"{label:<48}{spearman(lb, ref_lb):>9.3f}{kendall(lb, ref_lb):>9.3f}{agreement_with_ci(lb, ref_lb):>9.3f}"
              f"{separability(lb):>9.3f}{len(res.battles):>9}{res.n_invalid:>8}{sec:>7.1f}")


if __name__ == "__main__":
    main()
