"""Graded outcomes: Bradley-Terry on the probability that A beats B instead of win/loss/tie.

A pointwise judge (the learned judge) gives each answer a probability of beating a reference; the battle of
two answers then has a graded outcome ``p = P(A beats B)``. Thresholding it into a win, a loss or a tie
throws the size of the difference away: against one strong baseline that almost always scores higher,
every model's rating then rests on its handful of lucky wins. AlpacaEval's win rate averages preferences
for the same reason. With graded outcomes, battle ``k`` contributes ``p_k log s(R_a - R_b) + (1 - p_k)
log s(R_b - R_a)`` to the log-likelihood: a soft-label Bradley-Terry fit. A hard outcome is the special
case ``p`` in ``{1, 0.5, 0}``, so graded and hard battles mix in one fit.

Battles that share a prompt share answers, so they are not independent; the bootstrap resamples
**clusters** (the ``cluster`` column, e.g. ``prompt_id``; each battle its own cluster when none is given)
and refits every round, as :func:`banditarena.judges.pointwise.pointwise_leaderboard` resamples instructions.

Input: a DataFrame (or list of dicts) with ``model_a``, ``model_b``, ``outcome`` (``P(model_a beats
model_b)`` in [0, 1]), optional ``weight`` and the cluster column. A bad row raises
:class:`~banditarena.ratings.RatingsInputError` naming it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from banditarena.ratings._data import (
    BattleArrays,
    PairCounts,
    RatingsInputError,
    _records_frame,
    arrays_from_frame,
    counts_from_arrays,
)

OUTCOME_COLUMN = "outcome"
"""Column holding ``P(model_a beats model_b)`` in a graded battle table."""


@dataclass(frozen=True)
class GradedBattles:
    """Validated graded battles: hard-classified arrays (for counts), the probabilities and the clusters."""

    arrays: BattleArrays
    p: np.ndarray  # P(a beats b), per battle
    cluster: np.ndarray  # cluster index per battle (0..n_clusters-1)
    n_clusters: int


def has_graded_outcomes(battles: Any) -> bool:
    """True when ``battles`` is a table with an ``outcome`` column holding at least one finite value."""
    if isinstance(battles, pd.DataFrame):
        return OUTCOME_COLUMN in battles.columns and bool(pd.to_numeric(battles[OUTCOME_COLUMN],
                                                                        errors="coerce").notna().any())
    return False


def graded_arrays(battles: Any, *, cluster: str | None = None, drop_invalid: bool = False) -> GradedBattles:
    """Validate a graded battle table (see the module docstring) into :class:`GradedBattles`.

    A missing ``outcome`` (NaN/None) is an error naming the row unless ``drop_invalid``; an outcome outside
    [0, 1] or not a number is always an error naming the row.
    """
    if isinstance(battles, pd.DataFrame):
        df = battles
    elif isinstance(battles, Iterable) and not isinstance(battles, (str, bytes)):
        rows = list(battles)
        df = pd.DataFrame(rows) if rows and isinstance(rows[0], dict) else _records_frame(rows)
    else:
        raise RatingsInputError(f"graded outcomes need a DataFrame or a list of dicts, got {type(battles).__name__}")
    for c in ("model_a", "model_b", OUTCOME_COLUMN):
        if c not in df.columns:
            raise RatingsInputError(f"missing column {c}; have {list(df.columns)}")
    if cluster is not None and cluster not in df.columns:
        raise RatingsInputError(f"cluster column {cluster!r} not in the battles; have {list(df.columns)}")
    p = pd.to_numeric(df[OUTCOME_COLUMN], errors="coerce").to_numpy(dtype=np.float64)
    raw_bad = df[OUTCOME_COLUMN].notna().to_numpy() & np.isnan(p)
    if raw_bad.any():
        pos = int(np.flatnonzero(raw_bad)[0])
        raise RatingsInputError(f"row {pos}: outcome must be a number in [0, 1], got {df[OUTCOME_COLUMN].iloc[pos]!r}")
    out_of_range = np.isfinite(p) & ((p < 0) | (p > 1))
    if out_of_range.any() or np.isinf(p).any():
        pos = int(np.flatnonzero(out_of_range | np.isinf(p))[0])
        raise RatingsInputError(f"row {pos}: outcome must be in [0, 1], got {p[pos]!r}")
    missing = np.isnan(p)
    if missing.any():
        if not drop_invalid:
            pos = int(np.flatnonzero(missing)[0])
            raise RatingsInputError(f"row {pos}: outcome is missing (pass drop_invalid=True to skip)")
        df = df[~missing].reset_index(drop=True)
        p = p[~missing]
    if len(df) == 0:
        raise RatingsInputError("no battles to rate")
    # the names, weights and their errors as for any battle table; the winner is p's hard reading
    hard = df[[c for c in ("model_a", "model_b", "weight") if c in df.columns]].assign(
        winner=np.where(p > 0.5, "model_a", np.where(p < 0.5, "model_b", "tie")))
    arr = arrays_from_frame(hard)
    if cluster is None:
        cl = np.arange(len(df), dtype=np.int64)
        n_cl = len(df)
    else:
        codes, uniq = pd.factorize(df[cluster].astype(str), use_na_sentinel=False)
        cl, n_cl = codes.astype(np.int64), len(uniq)
    return GradedBattles(arr, p, cl, n_cl)


def graded_counts(g: GradedBattles) -> tuple[PairCounts, np.ndarray, np.ndarray]:
    """Pair counts of the hard-classified outcomes (for the battles/wins/losses/ties columns), and the soft
    scores ``(s_ij, s_ji)`` per pair: the weighted sums of ``p`` and ``1 - p`` from each side's view."""
    counts = counts_from_arrays(g.arrays)
    pos, s_lo, s_hi = _sides(g, counts)
    k = len(counts.i)
    return counts, np.bincount(pos, s_lo, k), np.bincount(pos, s_hi, k)


def _sides(g: GradedBattles, counts: PairCounts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per battle: its pair's row in ``counts``, and the weighted soft score of the pair's lower- and
    higher-index model."""
    arr = g.arrays
    m = len(arr.models)
    a = arr.a.astype(np.int64)
    b = arr.b.astype(np.int64)
    p_lo = np.where(a < b, g.p, 1.0 - g.p)
    w = np.ones(len(a)) if arr.weight is None else arr.weight
    pos = np.searchsorted(counts.i * m + counts.j, np.minimum(a, b) * m + np.maximum(a, b))
    return pos, w * p_lo, w * (1.0 - p_lo)


def cluster_scores(g: GradedBattles, counts: PairCounts) -> tuple[Any, Any]:
    """Sparse (clusters x pairs) matrices of the soft scores, for resampling clusters."""
    from scipy.sparse import csr_matrix

    pos, s_lo, s_hi = _sides(g, counts)
    shape = (g.n_clusters, len(counts.i))
    return csr_matrix((s_lo, (g.cluster, pos)), shape=shape), csr_matrix((s_hi, (g.cluster, pos)), shape=shape)


def soft_counts(counts: PairCounts, sij: np.ndarray, sji: np.ndarray) -> PairCounts:
    """``counts`` with its weighted cells replaced by the soft scores (cell 0: ``s_ij``, cell 1: ``s_ji``, no
    ties), so that every fit that reads ``w`` (including Wald CIs) sees the graded outcomes."""
    w = np.zeros_like(counts.w)
    w[:, 0], w[:, 1] = sij, sji
    return PairCounts(counts.models, counts.i, counts.j, counts.n, w)


def outcome_from_winner(winner: Any) -> float | None:
    """The graded outcome of a hard result: 1 (model_a won), 0 (model_b won), 0.5 (a tie), None (invalid)."""
    return {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}.get(winner) if winner else None
