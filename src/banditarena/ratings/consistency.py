"""Consistency between two leaderboards (e.g. an offline arena vs a reference ranking).

Metrics follow Arena-Hard-Auto's definitions:

* :func:`spearman`, :func:`kendall`: rank correlations of the ratings over the common models.
* :func:`separability`: fraction of model pairs whose confidence intervals do not overlap.
* :func:`agreement_with_ci`: over the pairs the reference separates confidently, +1 when the
  leaderboard also separates them in the same order, -1 when it separates them in the opposite order,
  0 when it cannot separate them; averaged.
* :func:`pair_rank_brier`: Brier score of the leaderboard's probability that model i ranks above j
  (normal approximation from its CIs) against the reference's order.
* :func:`brier_score`: Brier score of the predicted pairwise battle outcomes against observed battles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from banditarena.ratings._data import RatingsInputError, aggregate

Leaderboard: TypeAlias = pd.DataFrame | pd.Series | Mapping[str, float]


def _ratings(lb: Leaderboard) -> pd.Series:
    if isinstance(lb, pd.DataFrame):
        if "rating" not in lb.columns:
            raise RatingsInputError("leaderboard DataFrame has no 'rating' column")
        return lb["rating"].astype(np.float64)
    return pd.Series(lb, dtype=np.float64)


def _intervals(lb: Leaderboard, name: str, *, allow_points: bool = False) -> pd.DataFrame:
    """rating, ci_low, ci_high; with ``allow_points`` plain ratings become zero-width intervals."""
    if isinstance(lb, pd.DataFrame) and {"ci_low", "ci_high", "rating"} <= set(lb.columns):
        return lb[["rating", "ci_low", "ci_high"]].astype(np.float64)
    if allow_points:
        r = _ratings(lb)
        return pd.DataFrame({"rating": r, "ci_low": r, "ci_high": r})
    raise RatingsInputError(f"{name} needs a leaderboard DataFrame with rating, ci_low and ci_high columns")


def _common(a: pd.Series | pd.DataFrame, b: pd.Series | pd.DataFrame) -> list[str]:
    common = [m for m in a.index if m in set(b.index)]
    if len(common) < 2:
        raise RatingsInputError(f"the leaderboards share {len(common)} model(s); need at least 2")
    return common


def spearman(lb: Leaderboard, reference: Leaderboard) -> float:
    """Spearman rank correlation of the ratings over the models both leaderboards contain."""
    from scipy.stats import spearmanr

    a, b = _ratings(lb), _ratings(reference)
    common = _common(a, b)
    return float(spearmanr(a[common].to_numpy(), b[common].to_numpy()).statistic)


def kendall(lb: Leaderboard, reference: Leaderboard) -> float:
    """Kendall tau-b of the ratings over the models both leaderboards contain."""
    from scipy.stats import kendalltau

    a, b = _ratings(lb), _ratings(reference)
    common = _common(a, b)
    return float(kendalltau(a[common].to_numpy(), b[common].to_numpy()).statistic)


def _separation(iv: pd.DataFrame) -> np.ndarray:
    """``S[i, j]`` = +1 if i is confidently above j, -1 if confidently below, 0 if the CIs overlap."""
    lo = iv["ci_low"].to_numpy()
    hi = iv["ci_high"].to_numpy()
    above = lo[:, None] > hi[None, :]
    return above.astype(np.int64) - above.T.astype(np.int64)


def separability(lb: pd.DataFrame) -> float:
    """Fraction of model pairs whose confidence intervals do not overlap (Arena-Hard's separability)."""
    iv = _intervals(lb, "separability")
    m = len(iv)
    if m < 2:
        raise RatingsInputError("separability needs at least 2 models")
    sep = _separation(iv)
    iu = np.triu_indices(m, 1)
    return float((sep[iu] != 0).mean())


def agreement_with_ci(lb: pd.DataFrame, reference: Leaderboard) -> float:
    """Arena-Hard's agreement with confidence intervals between ``lb`` and ``reference``.

    Over the pairs of common models that ``reference`` separates confidently: +1 when ``lb`` separates
    them in the same order, -1 in the opposite order, 0 when its CIs overlap; the mean of those scores
    (NaN when the reference separates no pair). A reference without ``ci_low``/``ci_high`` (e.g. a
    Series of scores) is taken as exact: every pair with different ratings counts as separated.
    """
    a = _intervals(lb, "agreement_with_ci")
    b = _intervals(reference, "agreement_with_ci", allow_points=True)
    common = _common(a, b)
    sa = _separation(a.loc[common])
    sb = _separation(b.loc[common])
    iu = np.triu_indices(len(common), 1)
    ref = sb[iu]
    mine = sa[iu]
    mask = ref != 0
    if not mask.any():
        return float("nan")
    return float((mine[mask] * ref[mask]).mean())


def pair_rank_brier(lb: pd.DataFrame, reference: Leaderboard, *, ci: float = 0.95) -> float:
    """Brier score of ``lb``'s probability that model i ranks above model j against ``reference``'s order.

    ``P(i above j) = Phi((R_i - R_j) / sqrt(se_i^2 + se_j^2))`` with ``se`` = CI width / (2 z_ci). Pairs
    with equal reference ratings are skipped. 0 is perfect; always answering 0.5 scores 0.25.
    """
    from scipy.stats import norm

    a = _intervals(lb, "pair_rank_brier")
    b = _ratings(reference)
    common = _common(a, b)
    a = a.loc[common]
    z = norm.ppf(0.5 + ci / 2)
    se = (a["ci_high"] - a["ci_low"]).to_numpy() / (2 * z)
    r = a["rating"].to_numpy()
    iu = np.triu_indices(len(common), 1)
    diff = (r[:, None] - r[None, :])[iu]
    sd = np.sqrt(se[:, None] ** 2 + se[None, :] ** 2)[iu]
    with np.errstate(divide="ignore", invalid="ignore"):
        prob = np.where(sd > 0, norm.cdf(diff / np.where(sd > 0, sd, 1.0)), (diff > 0) + 0.5 * (diff == 0))
    rb = b[common].to_numpy()
    rdiff = (rb[:, None] - rb[None, :])[iu]
    keep = rdiff != 0
    if not keep.any():
        return float("nan")
    truth = (rdiff[keep] > 0).astype(np.float64)
    return float(((prob[keep] - truth) ** 2).mean())


def brier_score(ratings: Leaderboard, battles: Any, *, scale: float = 400.0, base: float = 10.0) -> float:
    """Brier score of the ratings' predicted battle outcomes: mean of ``(P(a wins) - S_a)^2``.

    ``S_a`` is 1 / 0 / 0.5 for a win / loss / tie; battle weights are used when present. Battles
    involving a model the ratings do not contain raise :class:`RatingsInputError`.
    """
    r = _ratings(ratings)
    counts = aggregate(battles)
    missing = [m for m in counts.models if m not in r.index]
    if missing:
        raise RatingsInputError(f"ratings have no entry for model {missing[0]!r}")
    v = r.reindex(list(counts.models)).to_numpy()
    p = 1.0 / (1.0 + base ** ((v[counts.j] - v[counts.i]) / scale))
    w = counts.w
    err = w[:, 0] * (p - 1.0) ** 2 + w[:, 1] * p ** 2 + w[:, 2] * (p - 0.5) ** 2
    return float(err.sum() / w.sum())


def leaderboard_consistency(lb: pd.DataFrame, reference: pd.DataFrame | pd.Series, *, battles: Any = None,
                            ci: float = 0.95) -> dict[str, float]:
    """All consistency metrics of ``lb`` against ``reference`` in one dict.

    Keys: ``n_models`` (common), ``spearman``, ``kendall``, ``separability`` (of ``lb``),
    ``pair_rank_brier``, ``agreement_with_ci``; with a reference that has CIs also
    ``reference_separability``; with ``battles`` also ``brier`` (battle outcomes predicted by ``lb``).
    """
    common = _common(_ratings(lb), _ratings(reference))
    out: dict[str, float] = {
        "n_models": float(len(common)),
        "spearman": spearman(lb, reference),
        "kendall": kendall(lb, reference),
        "separability": separability(lb.loc[common]),
        "pair_rank_brier": pair_rank_brier(lb, reference, ci=ci),
    }
    out["agreement_with_ci"] = agreement_with_ci(lb, reference)
    if isinstance(reference, pd.DataFrame) and {"ci_low", "ci_high"} <= set(reference.columns):
        out["reference_separability"] = separability(reference.loc[common])
    if battles is not None:
        out["brier"] = brier_score(lb, battles)
    return out
