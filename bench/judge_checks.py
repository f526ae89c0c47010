"""The judge through the user's path: the shipped WizardArena recipes, the adversarial answers and the known
gap, each run exactly as `banditarena battle RECIPE` + `banditarena leaderboard RUN` run it.

Every leaderboard here comes from :func:`banditarena.arena.service.run_battles` and
:func:`banditarena.arena.service.recipe_leaderboard`, the two functions `banditarena battle` calls (a test
checks that they rank a small case exactly as `banditarena leaderboard --json` does). Run directories live in ``bench/out/judge_checks``:
a rerun reads the stored battles back and pays nothing.

Tables:

1. **Shipped recipes vs human votes**: ``wizardarena-alpaca.yaml`` (every model against the baseline) and
   ``wizardarena-alpaca-all.yaml`` (all pairs), each with the default and the fast artifact: Spearman and
   Kendall of the raw and style-controlled leaderboards with Chatbot Arena Elo over the 26 non-baseline
   models and over all 27, the outcome model, and the baseline's share of decided battles.
2. **Adversarial**: the 27 models plus ``NullModel`` and ``gpt4_gamed`` (replayed from their annotation
   files) against the baseline: their ranks.
3. **Known gap**: ``bench/recipes/known-gap-smollm2.yaml``: SmolLM2-135M-Instruct (generated once by the
   embedded model, cached in the run directory) against gpt-4-0314 on the flywheel demo's prompts; share of
   decided battles GPT-4 wins. SmolLM2's answers are written to ``tests/data/smollm2-arena-hard.jsonl`` (the
   test fixture) with ``--write-fixture``.

    .venv/bin/python bench/judge_checks.py [--only recipes|adversarial|gap] [--fast-only] [--write-fixture]

MiniLM embeddings are cached on disk; the first run embeds about 22k answers (15-25 min on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from banditarena.arena.service import recipe_leaderboard, run_battles
from banditarena.config import ArenaRecipe, load_recipe
from banditarena.judges.training import arena_elo
from banditarena.paths import data_dir
from banditarena.ratings import kendall, spearman

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "src" / "banditarena" / "recipes"
OUT = ROOT / "bench" / "out" / "judge_checks"
BASELINE = "gpt4_1106_preview"
FIXTURE = ROOT / "tests" / "data" / "smollm2-arena-hard.jsonl"


def cli_leaderboard(recipe: ArenaRecipe, run_dir: Path) -> tuple[pd.DataFrame, Any]:
    """What `banditarena battle` prints for ``recipe`` (the same two functions)."""
    _, store = run_battles(recipe, run_dir, progress=False)
    return recipe_leaderboard(store, recipe), store


def with_artifact(recipe: ArenaRecipe, artifact: str | None) -> ArenaRecipe:
    if artifact is None:
        return recipe
    judge = recipe.judge.model_copy(update={"artifact": artifact})
    return recipe.model_copy(update={"judge": judge, "name": f"{recipe.name}-{artifact}"})


def versus_elo(lb: pd.DataFrame, elo: pd.Series, column: str = "rating") -> dict[str, float]:
    ref = pd.DataFrame({"rating": elo})
    view = pd.DataFrame({"rating": lb[column]})
    without = view.drop(index=[BASELINE], errors="ignore")
    return {"spearman_26": spearman(without, ref), "kendall_26": kendall(without, ref),
            "spearman_27": spearman(view, ref)}


def recipes_table(elo: pd.Series, fast_only: bool) -> pd.DataFrame:
    rows = []
    for name in ("wizardarena-alpaca.yaml", "wizardarena-alpaca-all.yaml"):
        base = load_recipe(RECIPES / name)
        for artifact in (("judge-learned-fast",) if fast_only else (None, "judge-learned-fast")):
            rec = with_artifact(base, artifact)
            t0 = time.perf_counter()
            lb, store = cli_leaderboard(rec, OUT / rec.name)
            raw, sty = versus_elo(lb, elo), versus_elo(lb, elo, "style_rating")
            b = store.battles(valid_only=True, columns=("model_a", "model_b", "winner"))
            vs = b[(b["model_a"] == BASELINE) | (b["model_b"] == BASELINE)]
            won = ((vs["model_a"] == BASELINE) & (vs["winner"] == "model_a")) | \
                  ((vs["model_b"] == BASELINE) & (vs["winner"] == "model_b"))
            decided = vs["winner"] != "tie"
            rows.append({"recipe": name, "artifact": artifact or "judge-learned", "battles": len(b),
                         "outcomes": lb.attrs.get("outcome_model"), "spearman raw (26)": raw["spearman_26"],
                         "kendall raw (26)": raw["kendall_26"], "spearman raw (27)": raw["spearman_27"],
                         "spearman style (26)": sty["spearman_26"],
                         "baseline wins (decided)": f"{int(won.sum())}/{int(decided.sum())}",
                         "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows)


def adversarial_table(elo: pd.Series, fast_only: bool) -> pd.DataFrame:
    base = load_recipe(RECIPES / "wizardarena-alpaca.yaml")
    adv = data_dir() / "alpaca_eval" / "adversarial"
    contestants = [*base.contestants, *(base.contestants[0].model_copy(update={"name": m, "path": str(adv / f"{m}.json.gz")})
                                        for m in ("NullModel", "gpt4_gamed"))]
    rec = base.model_copy(update={"contestants": contestants, "name": "wizardarena-alpaca-adversarial"})
    rows = []
    for artifact in (("judge-learned-fast",) if fast_only else (None, "judge-learned-fast")):
        r = with_artifact(rec, artifact)
        lb, _ = cli_leaderboard(r, OUT / r.name)
        order = list(lb.sort_values("rating", ascending=False).index)
        sorder = list(lb.sort_values("style_rating", ascending=False).index)
        real = [m for m in order if m not in ("NullModel", "gpt4_gamed")]
        rows.append({"artifact": artifact or "judge-learned", "models": len(order),
                     "NullModel rank": order.index("NullModel") + 1,
                     "NullModel last": order.index("NullModel") > max(order.index(m) for m in real),
                     "gpt4_gamed rank": order.index("gpt4_gamed") + 1, "gpt4_0613 rank": order.index("gpt4_0613") + 1,
                     "gamed below gpt4_0613": order.index("gpt4_gamed") > order.index("gpt4_0613"),
                     "style: NullModel / gpt4_gamed rank": f"{sorder.index('NullModel') + 1} / "
                                                           f"{sorder.index('gpt4_gamed') + 1}",
                     "spearman raw (26 real)": versus_elo(lb.loc[real], elo)["spearman_26"]})
    return pd.DataFrame(rows)


def gap_table(fast_only: bool, write_fixture: bool) -> pd.DataFrame:
    base = load_recipe(ROOT / "bench" / "recipes" / "known-gap-smollm2.yaml")
    rows = []
    for artifact in (("judge-learned-fast",) if fast_only else (None, "judge-learned-fast")):
        rec = with_artifact(base, artifact)
        run = OUT / rec.name
        _, store = run_battles(rec, run, progress=True)
        b = store.battles(valid_only=True, columns=("model_a", "model_b", "winner", "outcome"))
        gpt_a = b["model_a"] == "gpt-4-0314"
        gpt_wins = (gpt_a & (b["winner"] == "model_a")) | (~gpt_a & (b["winner"] == "model_b"))
        decided = b["winner"] != "tie"
        p_gpt = b["outcome"].where(gpt_a, 1 - b["outcome"])
        rows.append({"artifact": artifact or "judge-learned", "battles": len(b), "decided": int(decided.sum()),
                     "gpt-4-0314 wins (share of decided)": float(gpt_wins[decided].mean()),
                     "mean P(gpt-4-0314 beats SmolLM2)": float(p_gpt.mean())})
        if write_fixture and artifact is None:
            gens = store.generations()
            prompts = {p.id: p for p in store.prompts()}
            FIXTURE.parent.mkdir(parents=True, exist_ok=True)
            with FIXTURE.open("w", encoding="utf-8") as fh:
                for g in gens[gens["contestant"] == "smollm2"].sort_values("prompt_id").itertuples():
                    p = prompts[g.prompt_id]
                    fh.write(json.dumps({"uid": g.prompt_id, "model": "smollm2-135m-instruct",
                                         "messages": [{"role": "user", "content": p.text},
                                                      {"role": "assistant", "content": {"answer": g.text}}]},
                                        ensure_ascii=False) + "\n")
            print(f"wrote {FIXTURE}")
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=("recipes", "adversarial", "gap"))
    ap.add_argument("--fast-only", action="store_true", help="only the fast artifact (no MiniLM)")
    ap.add_argument("--write-fixture", action="store_true")
    args = ap.parse_args()
    elo = arena_elo(data_dir() / "alpaca_eval" / "benchmarks.csv")
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    if args.only in (None, "recipes"):
        print("\n== Shipped recipes through the CLI's code, vs Chatbot Arena Elo ==")
        print(recipes_table(elo, args.fast_only).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.only in (None, "adversarial"):
        print("\n== Adversarial answers among the 27 models (against the baseline, graded) ==")
        print(adversarial_table(elo, args.fast_only).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.only in (None, "gap"):
        print("\n== Known gap: gpt-4-0314 vs SmolLM2-135M-Instruct on the flywheel demo's prompts ==")
        print(gap_table(args.fast_only, args.write_fixture).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
