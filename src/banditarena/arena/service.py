"""From a recipe to stored battles and a leaderboard: what ``banditarena battle`` runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from banditarena.arena.runner import Arena, ArenaResult, schedule
from banditarena.config import ArenaRecipe, JudgeConfig, PromptsConfig, load_recipe, parse_anchor
from banditarena.errors import ConfigError, DataError
from banditarena.judges.base import Judge
from banditarena.store import RunStore
from banditarena.types import Prompt

if TYPE_CHECKING:
    import pandas as pd


def load_pool(cfg: PromptsConfig, *, seed: int = 0, base_dir: Path | None = None) -> list[Prompt]:
    """The recipe's prompts: load, select (ids / first / random), attach references."""
    import numpy as np

    from banditarena.paths import resolve_path
    from banditarena.prompts import load_prompts

    src = cfg.source
    is_path = src.startswith("data:") or src.endswith((".jsonl", ".json", ".parquet")) or "/" in src
    prompts = load_prompts(str(resolve_path(src, base_dir)) if is_path else src)
    if cfg.ids:
        by_id = {p.id: p for p in prompts}
        missing = [i for i in cfg.ids if i not in by_id]
        if missing:
            raise ConfigError(f"prompts.ids: {len(missing)} id(s) not in {src}, e.g. '{missing[0]}'")
        prompts = [by_id[i] for i in cfg.ids]
    if cfg.max_chars is not None:
        n0 = len(prompts)
        prompts = [p for p in prompts if sum(len(t) for t in p.user_turns) <= cfg.max_chars]
        if not prompts:
            raise DataError(f"prompts.max_chars {cfg.max_chars}: none of the {n0} prompts of '{src}' is that short")
    if cfg.limit is not None and cfg.limit < len(prompts):
        if cfg.sample == "random":
            idx = np.sort(np.random.default_rng(seed).choice(len(prompts), cfg.limit, replace=False))
            prompts = [prompts[i] for i in idx]
        else:
            prompts = prompts[: cfg.limit]
    if not prompts:
        raise DataError(f"prompts.source '{src}': the prompt pool is empty")
    if cfg.reference_from:
        prompts = attach_references(prompts, str(resolve_path(cfg.reference_from, base_dir)))
    return prompts


def attach_references(prompts: list[Prompt], answer_file: str) -> list[Prompt]:
    """Set each prompt's ``reference`` to the last-turn answer of a replay file (e.g. gpt-4-0613's)."""
    from banditarena.models.base import ChatRequest
    from banditarena.models.replay import ReplayBackend
    from banditarena.types import Strategy

    rb = ReplayBackend("reference", answer_file)
    reqs = [ChatRequest(p.id, len(p.user_turns) - 1, list(p.messages)) for p in prompts]
    comps = asyncio.run(rb.acomplete(reqs, Strategy()))
    missing = [p.id for p, c in zip(prompts, comps, strict=True) if not c.ok]
    if missing:
        raise DataError(f"{answer_file}: no reference answer for {len(missing)} prompt(s), e.g. '{missing[0]}'")
    for p, c in zip(prompts, comps, strict=True):
        p.reference = c.text
    return prompts


def build_judge(cfg: JudgeConfig, base_dir: Path | None = None) -> Judge:
    from banditarena.judges import make_judge
    from banditarena.models import make_backend

    if cfg.kind == "llm":
        assert cfg.endpoint is not None
        backend = make_backend(cfg.endpoint.backend, cfg.endpoint.model, **cfg.endpoint.options(base_dir))
        return make_judge("llm", backend=backend, name=cfg.name, verdict=cfg.verdict,
                          temperature=cfg.temperature, max_tokens=cfg.max_tokens)
    return make_judge(cfg.kind, name=cfg.name) if cfg.name else make_judge(cfg.kind)


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
    from banditarena.arena.progress import rich_progress
    from banditarena.arena.runner import contestant_backends

    if not isinstance(recipe, ArenaRecipe):
        recipe = load_recipe(recipe)
    prompts = load_pool(recipe.prompts, seed=recipe.seed, base_dir=recipe.base_dir)
    contestants = recipe.build_contestants()
    backends = contestant_backends(contestants, backends)
    judge = judge or build_judge(recipe.judge, recipe.base_dir)
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


def write_config(run_dir: str | Path, config: dict[str, Any]) -> None:
    """Write ``RUN_DIR/config.yaml`` atomically (a temporary file renamed over it): never half a file."""
    path = Path(run_dir) / "config.yaml"
    tmp = path.with_name(".config.yaml.tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    tmp.replace(path)


def leaderboard(store: RunStore, *, tag: str | None = None, bootstrap: int = 100, seed: int = 0,
                anchor: str | None = None) -> pd.DataFrame:
    """Bradley-Terry leaderboard (Elo scale, 95% bootstrap CIs) of the valid battles in a run."""
    from banditarena.ratings import fit_bt

    battles = store.battles(tag, valid_only=True)
    if battles.empty:
        raise DataError(f"{store.path}: no valid battles to rate")
    anchor_arg: Any = parse_anchor(anchor)
    if anchor_arg is not None and anchor_arg[0] not in set(battles["model_a"]) | set(battles["model_b"]):
        raise ConfigError(f"--anchor '{anchor}': no model '{anchor_arg[0]}' in {store.path}")
    try:
        return fit_bt(battles[["model_a", "model_b", "winner"]], bootstrap=bootstrap, seed=seed, anchor=anchor_arg)
    except ValueError as exc:  # the ratings core's RatingsInputError: one line, names the row/model
        raise DataError(f"{store.path}: {exc}") from exc
