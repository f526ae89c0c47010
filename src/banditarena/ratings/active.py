"""Active pair sampling: which model pair should battle next?

Chatbot Arena's variance-reduction rule (Chiang et al., 2024, section 5) samples pair ``a`` with
probability ``P(a) ∝ sqrt(Sigma_a / n_a) - sqrt(Sigma_a / (n_a + 1))``: the drop in the standard error of
that pair's estimate that one more battle would bring. Here ``Sigma_a / n_a`` is estimated by
``V_a = Var(theta_i - theta_j)`` from the inverse Fisher information of the current Bradley-Terry fit
(with a weak prior so unseen models and pairs have a finite, large variance), and ``n_a`` is smoothed to
``n_a + 1`` so that a pair with no battles gets a finite score:
``score_a = sqrt(V_a) * (1 - sqrt((n_a + 1) / (n_a + 2)))``.

``method="adjacent"`` is an extension aimed at ranking: it scores a pair by how much one more battle
(Fisher information ``w_a = p (1 - p)`` at the current ratings) would shrink the variances of the
rating differences ``d_k`` of neighbours in the current order, each weighted by
``1 / (d_k^2 + Var d_k)`` so that close, uncertain neighbours count most (Sherman-Morrison on the
inverse information ``C``): ``score_a = w_a * sum_k omega_k (D C e_a)_k^2 / (1 + w_a e_a' C e_a)``.
``method="uniform"`` is the baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from banditarena.ratings._data import PairCounts, RatingsInputError, aggregate
from banditarena.ratings.bt import AUTO_L2, fit_theta

METHODS = ("variance", "adjacent", "uniform")


def _expand(counts: PairCounts | None, models: Sequence[str] | None) -> PairCounts:
    """Counts re-indexed onto the union of their models and ``models``."""
    names = set(models or ())
    if counts is not None:
        names |= set(counts.models)
    if len(names) < 2:
        raise RatingsInputError("need at least two models to propose pairs")
    all_models = tuple(sorted(names))
    if counts is None:
        empty = np.zeros(0, dtype=np.int64)
        return PairCounts(all_models, empty, empty, np.zeros((0, 3), dtype=np.int64), np.zeros((0, 3)))
    pos = np.searchsorted(np.array(all_models, dtype=object), np.array(counts.models, dtype=object))
    return PairCounts(all_models, pos[counts.i], pos[counts.j], counts.n, counts.w)


def pair_sampling_weights(battles: Any = None, *, models: Sequence[str] | None = None, method: str = "variance",
                          l2: float = AUTO_L2, scale: float = 400.0, base: float = 10.0) -> pd.DataFrame:
    """Score and sampling probability of every model pair given the battles so far.

    ``battles``: any accepted battle input, :class:`PairCounts`, or ``None`` (no battles yet);
    ``models``: models to include even without battles (new contestants). Returns a DataFrame with
    ``model_a``, ``model_b``, ``battles``, ``variance`` (of the rating difference, Elo^2), ``score`` and
    ``prob`` (sums to 1), highest ``prob`` first.
    """
    if method not in METHODS:
        raise RatingsInputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not l2 > 0:
        raise RatingsInputError(f"l2 must be > 0 for active sampling, got {l2}")
    counts = None if battles is None else aggregate(battles)
    c = _expand(counts, models)
    m = c.n_models
    iu, ju = np.triu_indices(m, 1)
    n_pair = np.zeros((m, m), dtype=np.int64)
    n_pair[c.i, c.j] = c.n.sum(axis=1)
    n_a = n_pair[iu, ju]
    per_logit = scale / np.log(base)
    if c.i.size:
        theta = fit_theta(c, l2)
        tot = c.w.sum(axis=1)
        p = 0.5 * (1.0 + np.tanh(0.5 * (theta[c.i] - theta[c.j])))
        h = tot * p * (1 - p)
    else:
        h = np.zeros(0)
    info = np.zeros((m, m))
    info[c.i, c.j] = -h
    info[c.j, c.i] = -h
    info[np.arange(m), np.arange(m)] = np.bincount(c.i, h, m) + np.bincount(c.j, h, m) + l2
    cov = np.linalg.inv(info)
    var = (np.diag(cov)[iu] + np.diag(cov)[ju] - 2 * cov[iu, ju]) * per_logit ** 2
    var = np.maximum(var, 0.0)
    if method == "uniform":
        score = np.ones(iu.size)
    elif method == "variance":
        score = np.sqrt(var) * (1.0 - np.sqrt((n_a + 1.0) / (n_a + 2.0)))
    else:
        theta_all = fit_theta(c, l2) if c.i.size else np.zeros(m)
        pw = 0.5 * (1.0 + np.tanh(0.5 * (theta_all[iu] - theta_all[ju])))
        info_a = pw * (1.0 - pw)
        order = np.argsort(-theta_all, kind="mergesort")
        u = cov[:, iu] - cov[:, ju]  # C e_a for every pair, (m, P)
        du = u[order[:-1]] - u[order[1:]]  # adjacent differences
        hi_, lo_ = order[:-1], order[1:]
        gap = theta_all[hi_] - theta_all[lo_]
        var_adj = cov[hi_, hi_] + cov[lo_, lo_] - 2 * cov[hi_, lo_]
        omega = 1.0 / (gap * gap + var_adj)  # close, uncertain neighbours matter most
        v_logit = var / per_logit ** 2
        score = info_a * (omega[:, None] * du * du).sum(axis=0) / (1.0 + info_a * v_logit)
    total = score.sum()
    prob = score / total if total > 0 else np.full(score.size, 1.0 / score.size)
    names = np.array(c.models, dtype=object)
    out = pd.DataFrame({"model_a": names[iu], "model_b": names[ju], "battles": n_a, "variance": var,
                        "score": score, "prob": prob})
    return out.sort_values("prob", ascending=False, kind="mergesort").reset_index(drop=True)


def propose_pairs(battles: Any = None, n: int = 1, *, models: Sequence[str] | None = None,
                  method: str = "variance", greedy: bool = False, seed: int | np.random.Generator | None = 0,
                  l2: float = AUTO_L2, scale: float = 400.0, base: float = 10.0) -> list[tuple[str, str]]:
    """The next ``n`` model pairs to battle, as ``(model_a, model_b)`` tuples.

    ``method="variance"`` samples pairs from :func:`pair_sampling_weights` (Chatbot Arena's rule);
    ``method="adjacent"`` targets the CIs of neighbours in the ranking; ``method="uniform"`` samples
    pairs uniformly. ``greedy=True`` returns the ``n`` highest-scoring
    distinct pairs instead of sampling. Sides are randomised (each model is ``model_a`` half the time).
    """
    if int(n) < 0:
        raise RatingsInputError(f"n must be >= 0, got {n}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    weights = pair_sampling_weights(battles, models=models, method=method, l2=l2, scale=scale, base=base)
    if greedy:
        rows = np.arange(min(int(n), len(weights)))
    else:
        rows = rng.choice(len(weights), size=int(n), replace=True, p=weights["prob"].to_numpy())
    a = weights["model_a"].to_numpy()[rows]
    b = weights["model_b"].to_numpy()[rows]
    flip = rng.random(rows.size) < 0.5
    first = np.where(flip, b, a)
    second = np.where(flip, a, b)
    return list(zip(first.tolist(), second.tolist()))
