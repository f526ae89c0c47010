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
    store.set_meta("outcomes", recipe.leaderboard.outcomes)
    store.set_meta("judge", judge.name)
    if getattr(judge, "model", None):
        store.set_meta("judge_model", str(judge.model))
    import json

    store.set_meta("contestant_models", json.dumps({c.name: c.model for c in contestants}))
    return result, store


def recipe_leaderboard(store: RunStore, recipe: ArenaRecipe) -> pd.DataFrame:
    """The leaderboard `banditarena battle` prints after a run: raw and style-controlled, with the recipe's
    bootstrap, seed, anchor and outcome model (what `banditarena leaderboard RUN` gives for the same run)."""
    from banditarena.arena.style import leaderboard_with_style

    return leaderboard_with_style(store, bootstrap=recipe.leaderboard.bootstrap, seed=recipe.seed,
                                  anchor=recipe.leaderboard.anchor, outcomes=recipe.leaderboard.outcomes)


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


def rating_frame(battles: pd.DataFrame, outcomes: str = "auto", where: str = "run") -> pd.DataFrame:
    """The battles a leaderboard fits, with the outcome model applied.

    ``outcomes``: ``"auto"`` (graded where any battle has a graded outcome), ``"graded"`` (an error naming
    ``where`` when none has) or ``"winner"`` (win/loss/tie only). In a graded frame, battles without a graded
    outcome (a cascade's escalated pairs, battles stored before graded outcomes existed) enter as 1 / 0.5 /
    0 from their winner; ``df.attrs["graded_battles"]`` counts the graded ones.
    """
    from banditarena.ratings.graded import outcome_from_winner

    if outcomes not in ("auto", "graded", "winner"):
        raise ConfigError(f"outcomes must be auto, graded or winner, got '{outcomes}'")
    has = "outcome" in battles.columns and battles["outcome"].notna().any()
    if outcomes == "graded" and not has:
        raise DataError(f"{where}: outcomes 'graded' asked for, but no battle has a graded outcome (its judge gives "
                        "only scores or verdicts); use outcomes winner or auto")
    if outcomes == "winner" or not has:
        out = battles.drop(columns=[c for c in ("outcome",) if c in battles.columns])
        out.attrs["graded_battles"] = 0
        return out
    n_graded = int(battles["outcome"].notna().sum())
    filled = battles["outcome"].astype(float).where(battles["outcome"].notna(),
                                                    battles["winner"].map(outcome_from_winner).astype(float))
    out = battles.assign(outcome=filled)
    out.attrs["graded_battles"] = n_graded
    return out


def outcome_footer(lb: pd.DataFrame) -> str:
    """One line for under a leaderboard: which outcome model it was fitted with."""
    n = int(lb.attrs.get("n_battles", 0))
    graded = int(lb.attrs.get("graded_battles", 0))
    if lb.attrs.get("outcome_model") == "graded":
        extra = f" ({n - graded} of {n} from the winner only)" if graded < n else ""
        return (f"outcomes: graded, P(A beats B) from the judge's scores, soft-label Bradley-Terry{extra}; "
                f"95% CIs: {lb.attrs.get('ci_method', 'bootstrap')}")
    return f"outcomes: win/loss/tie (a tie is half a win); 95% CIs: {lb.attrs.get('ci_method', 'bootstrap')}"


def judge_filter(judge: str | None) -> dict[str, str]:
    """``store.battles`` keywords: one judge's battles, or (``None``) every battle but the human votes'."""
    from banditarena.store.sqlite import HUMAN_JUDGE

    return {"judge": judge} if judge is not None else {"exclude_judge": HUMAN_JUDGE}


def leaderboard(store: RunStore, *, tag: str | None = None, bootstrap: int = 100, seed: int = 0,
                anchor: str | None = None, outcomes: str | None = None, judge: str | None = None) -> pd.DataFrame:
    """Bradley-Terry leaderboard (Elo scale, 95% bootstrap CIs) of the valid battles in a run.

    ``outcomes`` (see :func:`rating_frame`; ``None``: what the run's recipe said, else ``auto``): graded
    outcomes are fitted as probabilities, with the bootstrap over prompts (battles on one prompt share answers).
    ``df.attrs["outcome_model"]`` says which model was used. ``judge``: only that judge's battles (``human``:
    the human votes); by default every AI judge's, never the human votes' (one fit never mixes them).
    """
    from banditarena.ratings import fit_bt

    battles = store.battles(tag, valid_only=True, columns=("prompt_id", "model_a", "model_b", "winner", "outcome"),
                            **judge_filter(judge))
    if battles.empty:
        raise DataError(f"{store.path}: no valid battles to rate" + (f" by judge '{judge}'" if judge else ""))
    anchor_arg: Any = parse_anchor(anchor)
    if anchor_arg is not None and anchor_arg[0] not in set(battles["model_a"]) | set(battles["model_b"]):
        raise ConfigError(f"--anchor '{anchor}': no model '{anchor_arg[0]}' in {store.path}")
    frame = rating_frame(battles, outcomes or store.get_meta("outcomes") or "auto", str(store.path))
    graded = "outcome" in frame.columns
    try:
        if graded:
            lb = fit_bt(frame[["prompt_id", "model_a", "model_b", "outcome"]], bootstrap=bootstrap, seed=seed,
                        anchor=anchor_arg, cluster="prompt_id")
        else:
            lb = fit_bt(frame[["model_a", "model_b", "winner"]], bootstrap=bootstrap, seed=seed, anchor=anchor_arg)
    except ValueError as exc:  # the ratings core's RatingsInputError: one line, names the row/model
        raise DataError(f"{store.path}: {exc}") from exc
    lb.attrs["graded_battles"] = frame.attrs["graded_battles"]
    return lb
