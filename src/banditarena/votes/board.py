"""The human leaderboard beside each AI judge's on the same battles.

``banditarena leaderboard RUN --judge human``: the Bradley-Terry leaderboard of the human votes (95% bootstrap
CIs, the style-controlled rating beside the raw one), then, for every AI judge with battles in the same run,
that judge's leaderboard fitted on the battles of the *same matchups* (prompt and model pair) the people
voted on, so the two differ only by who judged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from banditarena.errors import DataError
from banditarena.store import RunStore
from banditarena.store.sqlite import HUMAN_JUDGE

if TYPE_CHECKING:
    import pandas as pd

BATTLE_COLS = ("prompt_id", "model_a", "model_b", "winner", "outcome", "gen_a", "gen_b", "judge")


def matchup_keys(df: pd.DataFrame) -> pd.Series:
    """(prompt, unordered model pair) of each battle, as one string."""
    lo = df[["model_a", "model_b"]].min(axis=1)
    hi = df[["model_a", "model_b"]].max(axis=1)
    return df["prompt_id"].astype(str) + "\x1f" + lo + "\x1f" + hi


def frame_leaderboard(store: RunStore, battles: pd.DataFrame, *, bootstrap: int = 100, seed: int = 0,
                      anchor: str | None = None, outcomes: str = "auto", where: str = "") -> pd.DataFrame:
    """Raw and style-controlled Bradley-Terry leaderboard of a frame of the store's battles."""
    from banditarena.arena.service import rating_frame
    from banditarena.arena.style import add_style_columns, battles_with_style, style_controlled
    from banditarena.config import parse_anchor
    from banditarena.ratings import fit_bt

    anchor_arg: Any = parse_anchor(anchor)
    frame = rating_frame(battles, outcomes, where or str(store.path))
    try:
        if "outcome" in frame.columns:
            lb = fit_bt(frame[["prompt_id", "model_a", "model_b", "outcome"]], bootstrap=bootstrap, seed=seed,
                        anchor=anchor_arg, cluster="prompt_id")
        else:
            lb = fit_bt(frame[["model_a", "model_b", "winner"]], bootstrap=bootstrap, seed=seed, anchor=anchor_arg)
    except ValueError as exc:
        raise DataError(f"{store.path}: {where}: {exc}") from exc
    lb.attrs["graded_battles"] = frame.attrs["graded_battles"]
    style = style_controlled(battles_with_style(store, battles=battles.reset_index(drop=True)), bootstrap=bootstrap,
                             seed=seed, anchor=anchor_arg, outcomes=outcomes)
    out = add_style_columns(lb, style)
    out.attrs.update(lb.attrs)
    return out


def human_and_judges(store: RunStore, *, bootstrap: int = 100, seed: int = 0, anchor: str | None = None
                     ) -> list[tuple[str, pd.DataFrame, str]]:
    """``[(judge, leaderboard, note)]``: the human votes' first, then each AI judge's on the same matchups."""
    battles = store.battles(valid_only=True, columns=BATTLE_COLS)
    human = battles[battles["judge"] == HUMAN_JUDGE]
    if human.empty:
        raise DataError(f"{store.path}: no human votes (import a FastChat log with 'banditarena vote import', "
                        "or collect votes with 'banditarena vote serve')")
    out = [(HUMAN_JUDGE, frame_leaderboard(store, human.drop(columns="judge"), bootstrap=bootstrap, seed=seed,
                                           anchor=anchor, outcomes="winner", where="human votes"),
            f"{len(human)} human votes")]
    keys = set(matchup_keys(human))
    ai = battles[battles["judge"] != HUMAN_JUDGE]
    for judge, group in ai.groupby("judge", sort=True):
        same = group[matchup_keys(group).isin(keys)]
        if same.empty:
            continue
        covered = len(keys & set(matchup_keys(same)))
        try:
            lb = frame_leaderboard(store, same.drop(columns="judge"), bootstrap=bootstrap, seed=seed, anchor=anchor,
                                   outcomes=store.get_meta("outcomes") or "auto", where=f"judge {judge}")
        except DataError:
            continue
        out.append((str(judge), lb, f"{len(same)} battles on {covered} of the {len(keys)} matchups people voted on"))
    return out
