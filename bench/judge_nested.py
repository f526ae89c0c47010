"""Nested validation of a learned-judge recipe, with the 5x labels, the adversarial and twin checks.

What produced the nested figures in docs/judging.md ("This round"): ``banditarena.judges.nested.prepare``
+ ``nested_cross_validate`` (what ``banditarena judge eval`` runs), then the adversarial checks and the twins
for the variant the inner procedure picks on all the data and for the shipped one (orthogonal, no band).

    .venv/bin/python bench/judge_nested.py src/banditarena/recipes/judge-learned-fast.yaml [--more] [--offtopic 0.1]

``--more`` adds ``annotations_gpt4_turbo_more`` to the recipe's AlpacaEval labels. MiniLM embeddings come
from the on-disk cache (the first MiniLM run embeds ~40k texts: about half an hour on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from banditarena.judges import nested as N
from banditarena.judges.training import load_train_recipe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe")
    ap.add_argument("--more", action="store_true", help="also train on annotations_gpt4_turbo_more")
    ap.add_argument("--offtopic", type=float, default=0.0, help="labels.offtopic share")
    args = ap.parse_args()
    rec = load_train_recipe(args.recipe)
    if args.more:
        rec.labels.alpaca_eval = [*rec.labels.alpaca_eval, "data:alpaca_eval/annotations_gpt4_turbo_more"]
    rec.labels.offtopic = args.offtopic
    t0 = time.time()
    prep = N.prepare(rec, progress=False, adversarial=rec.resolve("data:alpaca_eval/adversarial"))
    print("prepared", prep.X_lab.shape, f"{time.time() - t0:.0f}s", flush=True)
    res = N.nested_cross_validate(prep, progress=lambda i, n: print(f"cell {i}/{n} {time.time() - t0:.0f}s", flush=True))
    print(res.choices[["group", "fold", "chosen", "inner_spearman"]].to_string())
    print({k: round(v, 3) for k, v in res.metrics.items()})
    print("final", res.final.name, {k: round(v, 3) for k, v in res.final_grades.items()})
    for v in dict.fromkeys((res.final, N.DEFAULT_GRID[0])):
        print(v.name, N.adversarial_checks(prep, v, res.scores))
        print(N.twin_gaps(prep, v, rec.resolve("data:alpaca_eval/annotations_gpt4_turbo_more")).to_string())
    print(f"total {time.time() - t0:.0f}s fits {res.fits}")


if __name__ == "__main__":
    main()
