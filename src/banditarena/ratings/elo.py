"""Online Elo and the win-rate matrices (observed, and expected from ratings)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from banditarena.ratings._data import WINNER_CODES, PairCounts, RatingsInputError, aggregate, to_arrays


class OnlineElo:
    """Sequential Elo: after each battle, ``R_a += K * w * (S_a - E_a)`` and the same for ``b``.

    ``S_a`` is 1 / 0 / 0.5 for a win / loss / tie, ``E_a = 1 / (1 + base ** ((R_b - R_a) / scale))`` and
    ``w`` the battle weight (1 by default). Models start at ``init`` when first seen. Use :meth:`update`
    in a live arena or :meth:`fit` on a whole battle table (processed in input order).
    """

    def __init__(self, *, k: float = 4.0, base: float = 10.0, scale: float = 400.0, init: float = 1000.0) -> None:
        if not k > 0 or not base > 1 or not scale > 0:
            raise RatingsInputError(f"need k > 0, base > 1, scale > 0; got k={k}, base={base}, scale={scale}")
        self.k = float(k)
        self.base = float(base)
        self.scale = float(scale)
        self.init = float(init)
        self._ratings: dict[str, float] = {}
        self._battles: dict[str, int] = {}

    def update(self, model_a: str, model_b: str, winner: str, weight: float = 1.0) -> tuple[float, float]:
        """Apply one battle; returns the new ``(R_a, R_b)``."""
        if winner not in WINNER_CODES:
            raise RatingsInputError(f"winner {winner!r} is not one of: {', '.join(sorted(WINNER_CODES))}")
        if model_a == model_b:
            raise RatingsInputError(f"model_a and model_b are the same ({model_a!r})")
        ra = self._ratings.get(model_a, self.init)
        rb = self._ratings.get(model_b, self.init)
        ea = 1.0 / (1.0 + self.base ** ((rb - ra) / self.scale))
        sa = (1.0, 0.0, 0.5)[WINNER_CODES[winner]]
        delta = self.k * weight * (sa - ea)
        self._ratings[model_a] = ra + delta
        self._ratings[model_b] = rb - delta
        self._battles[model_a] = self._battles.get(model_a, 0) + 1
        self._battles[model_b] = self._battles.get(model_b, 0) + 1
        return ra + delta, rb - delta

    def fit(self, battles: Any, *, drop_invalid: bool = False) -> OnlineElo:
        """Reset and run every battle of ``battles`` (any accepted input) in order."""
        arr = to_arrays(battles, drop_invalid=drop_invalid)
        m = len(arr.models)
        r = [self.init] * m
        k, base, scale = self.k, self.base, self.scale
        score = (1.0, 0.0, 0.5)
        weights = arr.weight.tolist() if arr.weight is not None else None
        for t, (a, b, o) in enumerate(zip(arr.a.tolist(), arr.b.tolist(), arr.outcome.tolist())):
            ra, rb = r[a], r[b]
            ea = 1.0 / (1.0 + base ** ((rb - ra) / scale))
            delta = k * (score[o] - ea) * (weights[t] if weights is not None else 1.0)
            r[a] = ra + delta
            r[b] = rb - delta
        names = arr.models.tolist()
        self._ratings = dict(zip(names, r))
        counts = np.bincount(arr.a, minlength=m) + np.bincount(arr.b, minlength=m)
        self._battles = dict(zip(names, counts.tolist()))
        return self

    @property
    def ratings(self) -> pd.Series:
        """Current ratings, best first."""
        s = pd.Series(self._ratings, name="rating", dtype=np.float64)
        s.index.name = "model"
        return s.sort_values(ascending=False, kind="mergesort")

    def leaderboard(self) -> pd.DataFrame:
        """DataFrame indexed by model (best first) with ``rating`` and ``battles``."""
        r = self.ratings
        return pd.DataFrame({"rating": r, "battles": pd.Series(self._battles).reindex(r.index).astype(np.int64)})


def online_elo(battles: Any, *, k: float = 4.0, base: float = 10.0, scale: float = 400.0, init: float = 1000.0,
               drop_invalid: bool = False) -> pd.Series:
    """Online Elo ratings after processing ``battles`` in order (a Series indexed by model, best first)."""
    return OnlineElo(k=k, base=base, scale=scale, init=init).fit(battles, drop_invalid=drop_invalid).ratings


def battle_count_matrix(battles: Any) -> pd.DataFrame:
    """Symmetric matrix of the number of battles between each pair of models."""
    counts = aggregate(battles)
    m = counts.n_models
    tot = counts.n.sum(axis=1)
    mat = np.zeros((m, m), dtype=np.int64)
    mat[counts.i, counts.j] = tot
    mat[counts.j, counts.i] = tot
    idx = pd.Index(list(counts.models), name="model")
    return pd.DataFrame(mat, index=idx, columns=idx.rename("opponent"))


def win_rate_matrix(battles: Any, *, weighted: bool = True) -> pd.DataFrame:
    """Observed win rate of the row model against the column model (ties count half).

    NaN where two models never met and on the diagonal. Battle weights are used when present
    (``weighted=False`` ignores them).
    """
    counts: PairCounts = aggregate(battles)
    score = counts.score_matrix(weighted=weighted)
    tot = score + score.T
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(tot > 0, score / tot, np.nan)
    idx = pd.Index(list(counts.models), name="model")
    return pd.DataFrame(rate, index=idx, columns=idx.rename("opponent"))


def expected_win_matrix(ratings: pd.Series | pd.DataFrame | Mapping[str, float], *, scale: float = 400.0,
                        base: float = 10.0) -> pd.DataFrame:
    """Win probability of the row model against the column model implied by Elo-scale ratings.

    ``ratings`` is a Series/mapping of model -> rating or a leaderboard DataFrame with a ``rating``
    column. The diagonal is 0.5.
    """
    if isinstance(ratings, pd.DataFrame):
        if "rating" not in ratings.columns:
            raise RatingsInputError("leaderboard DataFrame has no 'rating' column")
        ratings = ratings["rating"]
    r = pd.Series(ratings, dtype=np.float64)
    v = r.to_numpy()
    prob = 1.0 / (1.0 + base ** ((v[None, :] - v[:, None]) / scale))
    idx = pd.Index(r.index, name="model")
    return pd.DataFrame(prob, index=idx, columns=idx.rename("opponent"))
