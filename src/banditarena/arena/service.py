"""From a recipe to stored battles and a leaderboard: what ``banditarena battle`` runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from banditarena.arena.runner import Arena, ArenaResult, schedule
from banditarena.config import ArenaRecipe, load_recipe, parse_anchor
from banditarena.errors import ConfigError, DataError
from banditarena.judges.base import Judge
from banditarena.paths import write_text_atomic
from banditarena.store import RunStore

if TYPE_CHECKING:
    import pandas as pd


def run_battles(
    recipe: ArenaRecipe | str | Path,
    run_dir: str | Path,
    *,
    progress: bool = True,
    backends: dict[str, Any] | None = None,
    judge: Judge | None = None,
) -> tuple[ArenaResult, RunStore]:
    """Run (or resume) a recipe's arena in ``run_dir``. Returns the result and the open store.

    Everything the user can get wrong (the prompts, the contestants' backends and API keys, the judge) is
    checked before anything is written: a failing command leaves the run directory as it was.
    """
    from banditarena.arena.runner import contestant_backends
    from banditarena.judges import judge_from_config
    from banditarena.progress import rich_progress
    from banditarena.prompts import load_pool

    if not isinstance(recipe, ArenaRecipe):
        recipe = load_recipe(recipe)
    prompts = load_pool(recipe.prompts, seed=recipe.seed, base_dir=recipe.base_dir)
    contestants = recipe.build_contestants()
    backends = contestant_backends(contestants, backends)
    check_alpaca_outputs(backends, recipe.prompts, recipe.base_dir)
    judge = judge or judge_from_config(recipe.judge, recipe.base_dir)
    matches = schedule(prompts, [c.name for c in contestants], pairs=recipe.battle.pairs, baseline=recipe.battle.baseline)
    store = RunStore(run_dir)  # the writer's lock: a second process on this run directory stops here
    write_config(run_dir, recipe.model_dump(mode="json", exclude_none=True))
    with rich_progress(progress) as prog:
        arena = Arena(store, contestants, judge, seed=recipe.seed, backends=backends,
                      max_in_flight=recipe.battle.max_in_flight, progress=prog, tag=recipe.name)
        result = arena.run(matches)
    store.set_meta("recipe_name", recipe.name)
    store.set_meta("judge", judge.name)
    if getattr(judge, "model", None):
        store.set_meta("judge_model", str(judge.model))
    import json

    store.set_meta("contestant_models", json.dumps({c.name: c.model for c in contestants}))
    return result, store


def check_alpaca_outputs(backends: dict[str, Any], cfg: Any, base_dir: Path | None) -> None:
    """Check every AlpacaEval outputs file of the replay contestants against the (whole, unselected) prompt
    source: answers are matched by instruction text, so an entry whose instruction is not there would never
    be used. Raises :class:`DataError` naming ``file[k]`` before anything is written."""
    from banditarena.paths import resolve_path
    from banditarena.prompts import load_prompts

    full = None
    for b in {id(b): b for b in backends.values()}.values():
        if not getattr(b, "by_instruction", False):
            continue
        if full is None:
            src = cfg.source
            is_path = src.startswith("data:") or src.endswith((".jsonl", ".json", ".parquet")) or "/" in src
            full = load_prompts(str(resolve_path(src, base_dir)) if is_path else src)
        b.check_prompts(full, f"prompts.source '{cfg.source}'")


def write_config(run_dir: str | Path, config: dict[str, Any]) -> None:
    """Write ``RUN_DIR/config.yaml`` atomically (a temporary file renamed over it): never half a file."""
    write_text_atomic(Path(run_dir) / "config.yaml", yaml.safe_dump(config, sort_keys=False))


def leaderboard(store: RunStore, *, tag: str | None = None, bootstrap: int = 100, seed: int = 0,
                anchor: str | None = None) -> pd.DataFrame:
    """Bradley-Terry leaderboard (Elo scale, 95% bootstrap CIs) of the valid battles in a run."""
    from banditarena.ratings import fit_bt

    battles = store.battles(tag, valid_only=True, columns=("model_a", "model_b", "winner"))
    if battles.empty:
        raise DataError(f"{store.path}: no valid battles to rate")
    anchor_arg: Any = parse_anchor(anchor)
    if anchor_arg is not None and anchor_arg[0] not in set(battles["model_a"]) | set(battles["model_b"]):
        raise ConfigError(f"--anchor '{anchor}': no model '{anchor_arg[0]}' in {store.path}")
    try:
        return fit_bt(battles, bootstrap=bootstrap, seed=seed, anchor=anchor_arg)
    except ValueError as exc:  # the ratings core's RatingsInputError: one line, names the row/model
        raise DataError(f"{store.path}: {exc}") from exc
