"""Style-controlled ratings of a run: the raw Bradley-Terry leaderboard beside one that controls for style.

A judge that prefers long, heavily formatted answers makes a model that only writes longer look better.
:func:`leaderboard_with_style` fits, on the same valid battles, the contextual Bradley-Terry model of
:func:`banditarena.ratings.fit_style_bt` (features: the normalised differences in answer length and in the
numbers of markdown headers, list items and bold spans) and adds its ratings as ``style_rating``,
``style_ci_low``, ``style_ci_high`` and ``style_rank`` columns. A gain that is only style shows as a raw
gain with no style-controlled one. The answers come from the run's stored generations (all assistant
turns of each answer, joined).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from banditarena.store import RunStore

if TYPE_CHECKING:
    import pandas as pd

STYLE_COLUMNS = ("style_rating", "style_ci_low", "style_ci_high", "style_rank")


def battles_with_texts(store: RunStore, tag: str | None = None, judge: str | None = None) -> pd.DataFrame:
    """Valid battles of a run with the two answers' texts (``response_a``/``response_b``); ``judge`` as in
    :func:`banditarena.arena.service.leaderboard`."""
    from banditarena.arena.service import judge_filter

    battles = store.battles(tag, valid_only=True,
                            columns=("prompt_id", "model_a", "model_b", "winner", "outcome", "gen_a", "gen_b"),
                            **judge_filter(judge))
    if battles.empty:
        return battles.assign(response_a=[], response_b=[])
    import pandas as pd

    keys = pd.concat([battles["gen_a"], battles["gen_b"]]).dropna().unique().tolist()
    gens = store.get_generations(keys)
    text = {k: "\n\n".join(g.turns) for k, g in gens.items()}
    out = battles.assign(response_a=battles["gen_a"].map(text), response_b=battles["gen_b"].map(text))
    return out[out["response_a"].notna() & out["response_b"].notna()].reset_index(drop=True)


def battles_with_style(store: RunStore, tag: str | None = None, judge: str | None = None,
                       battles: pd.DataFrame | None = None) -> pd.DataFrame:
    """Valid battles of a run with the two answers' style counts (``length_a``, ``length_b``, ``headers_a``,
    ...), each stored answer counted once. Lighter than :func:`battles_with_texts` on big runs: a million
    battles share about a tenth as many answers, and no text is copied into the frame. ``judge`` as in
    :func:`banditarena.arena.service.leaderboard`; ``battles``: these battles (with ``gen_a``/``gen_b``)
    instead of the store's."""
    import numpy as np
    import pandas as pd

    from banditarena.arena.service import judge_filter
    from banditarena.ratings import STYLE_FEATURES
    from banditarena.ratings.style import style_counts

    if battles is None:
        battles = store.battles(tag, valid_only=True,
                                columns=("prompt_id", "model_a", "model_b", "winner", "outcome", "gen_a", "gen_b"),
                                **judge_filter(judge))
    keys = pd.concat([battles["gen_a"], battles["gen_b"]]).dropna().unique().tolist()
    counts = {k: style_counts("\n\n".join(g.turns)) for k, g in store.get_generations(keys).items()}
    has = battles["gen_a"].isin(counts.keys()) & battles["gen_b"].isin(counts.keys())
    battles = battles[has].reset_index(drop=True)
    cols = {}
    for side in ("a", "b"):
        per = [counts[k] for k in battles[f"gen_{side}"].tolist()]
        for f in STYLE_FEATURES:
            cols[f"{f}_{side}"] = np.fromiter((c[f] for c in per), dtype=np.float64, count=len(per))
    return battles.assign(**cols)


def style_controlled(battles: pd.DataFrame, *, bootstrap: int = 100, seed: int = 0, anchor: Any = None,
                     outcomes: str = "auto") -> Any:
    """:func:`banditarena.ratings.fit_style_bt` on battles with texts (:func:`battles_with_texts`) or style
    counts (:func:`battles_with_style`), with the same outcome model as the raw leaderboard
    (:func:`banditarena.arena.service.rating_frame`; graded outcomes bootstrap over prompts); None when
    style cannot be fitted (no battles, or no style feature varies)."""
    import numpy as np

    from banditarena.arena.service import rating_frame
    from banditarena.ratings import STYLE_FEATURES, RatingsInputError, fit_style_bt
    from banditarena.ratings.style import style_feature_matrix

    if battles.empty:
        return None
    battles = rating_frame(battles, outcomes)
    graded = "outcome" in battles.columns and "prompt_id" in battles.columns
    keep = ["model_a", "model_b", "winner"] + (["outcome", "prompt_id"] if graded else [])
    if all(f"{f}_{s}" in battles.columns for f in STYLE_FEATURES for s in "ab"):
        keep += [f"{f}_{s}" for f in STYLE_FEATURES for s in "ab"]
    else:
        keep += ["response_a", "response_b"]
    battles = battles[keep]
    if not (style_feature_matrix(battles, STYLE_FEATURES).std(axis=0) > 1e-12).any():
        return None
    try:
        return fit_style_bt(battles, bootstrap=bootstrap, seed=seed, anchor=anchor,
                            cluster="prompt_id" if graded else None)
    except (RatingsInputError, np.linalg.LinAlgError):
        return None


def leaderboard_with_style(store: RunStore, *, tag: str | None = None, bootstrap: int = 100, seed: int = 0,
                           anchor: str | None = None, outcomes: str | None = None, judge: str | None = None
                           ) -> pd.DataFrame:
    """The run's raw leaderboard (:func:`banditarena.arena.service.leaderboard`) with the style-controlled
    columns added (NaN when style cannot be fitted). ``df.attrs["style_coefficients"]`` holds the style
    coefficients (feature -> logit effect of one standard deviation, with CI). ``judge``: one judge's battles
    (``human``: the human votes), by default every AI judge's."""
    from banditarena.arena.service import leaderboard
    from banditarena.config import parse_anchor

    outcomes = outcomes or store.get_meta("outcomes") or "auto"
    lb = leaderboard(store, tag=tag, bootstrap=bootstrap, seed=seed, anchor=anchor, outcomes=outcomes, judge=judge)
    res = style_controlled(battles_with_style(store, tag, judge), bootstrap=bootstrap, seed=seed, anchor=parse_anchor(anchor),
                           outcomes=outcomes)
    return add_style_columns(lb, res)


def add_style_columns(lb: pd.DataFrame, res: Any) -> pd.DataFrame:
    """``lb`` with :data:`STYLE_COLUMNS` from a :class:`~banditarena.ratings.StyleControlResult` (or NaN)."""
    import numpy as np

    out = lb.copy()
    if res is None:
        for c in STYLE_COLUMNS:
            out[c] = np.nan
        out.attrs["style_coefficients"] = {}
        return out
    s = res.leaderboard
    for c, src in zip(STYLE_COLUMNS, ("rating", "ci_low", "ci_high", "rank")):
        out[c] = s[src].reindex(out.index)
    out.attrs["style_coefficients"] = json.loads(res.coefficients.to_json(orient="index"))
    return out



