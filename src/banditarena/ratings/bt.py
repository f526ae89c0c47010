"""Bradley-Terry maximum likelihood with ties, fitted on aggregated pair counts, with bootstrap CIs.

Model: ``P(i beats j) = 1 / (1 + base ** ((R_j - R_i) / scale))``. A tie counts as half a win for each
side (Chatbot Arena's convention); ``tie (bothbad)`` is a tie. The likelihood only depends on the
outcome counts per model pair, so :func:`~banditarena.ratings.aggregate` makes one O(battles) pass and
every fit (and every bootstrap round) afterwards costs O(pairs) per Newton step plus one dense
``models x models`` solve. The bootstrap resamples the pair counts from a multinomial (equivalent to
resampling battles with replacement) and fits all rounds at once with a batched Newton method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from banditarena.ratings._data import PairCounts, RatingsInputError, aggregate
from banditarena.ratings.graded import (
    GradedBattles,
    cluster_scores,
    graded_arrays,
    graded_counts,
    has_graded_outcomes,
    soft_counts,
)

AUTO_L2 = 0.1
"""L2 strength used when the unregularised MLE does not exist (a model with only wins or only losses,
or a comparison graph that is not strongly connected). On the logit scale it is a Gaussian prior with
standard deviation ``1/sqrt(0.1)`` = 3.16, i.e. about 550 Elo points."""



@dataclass(frozen=True)
class _Anchor:
    model: str | None
    value: float


def _parse_anchor(anchor: Any, models: tuple[str, ...], init: float) -> _Anchor:
    if anchor is None:
        return _Anchor(None, float(init))
    if isinstance(anchor, (int, float)) and not isinstance(anchor, bool):
        return _Anchor(None, float(anchor))
    if isinstance(anchor, str):
        name, value = anchor, float(init)
    elif isinstance(anchor, dict) and len(anchor) == 1:
        (name, value), = anchor.items()
    elif isinstance(anchor, (tuple, list)) and len(anchor) == 2:
        name, value = anchor
    else:
        raise RatingsInputError(f"anchor must be None, a number, a model name or (model, rating), got {anchor!r}")
    if name not in models:
        raise RatingsInputError(f"anchor model {name!r} has no battles")
    return _Anchor(str(name), float(value))


def strongly_connected(i: np.ndarray, j: np.ndarray, s_ij: np.ndarray, s_ji: np.ndarray, m: int) -> bool:
    """True when the 'i scored against j' graph is strongly connected, i.e. the MLE exists and is finite."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if m <= 1:
        return True
    fwd = s_ij > 0
    bwd = s_ji > 0
    rows = np.concatenate([i[fwd], j[bwd]])
    cols = np.concatenate([j[fwd], i[bwd]])
    g = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(m, m)).tocsr()
    n_comp, _ = connected_components(g, directed=True, connection="strong")
    return n_comp == 1


def _objective(theta: np.ndarray, i: np.ndarray, j: np.ndarray, sij: np.ndarray, sji: np.ndarray,
               l2: np.ndarray) -> np.ndarray:
    """Negative penalised log-likelihood per replicate. theta: (B, m); sij/sji: (B, P); l2: (B,)."""
    d = theta[:, i] - theta[:, j]
    # log sigma(d) = -log1p(exp(-d)), computed stably
    ll = -(sij * np.logaddexp(0.0, -d) + sji * np.logaddexp(0.0, d)).sum(axis=1)
    return -ll + 0.5 * l2 * (theta * theta).sum(axis=1)


def newton_bt(
    i: np.ndarray,
    j: np.ndarray,
    sij: np.ndarray,
    sji: np.ndarray,
    m: int,
    l2: np.ndarray | float = 0.0,
    theta0: np.ndarray | None = None,
    tol: float = 1e-8,
    max_iter: int = 100,
) -> tuple[np.ndarray, int]:
    """Fit B Bradley-Terry problems sharing the pair list at once (logit scale, mean-zero strengths).

    ``sij[b, k]`` is the score (wins + ties/2, weighted) of ``i[k]`` over ``j[k]`` in problem ``b``.
    Returns ``(theta (B, m), iterations)``. Stops when a step is below ``tol`` (the error left after
    it is then of order ``tol**2``). Newton steps with the exact Hessian (a weighted graph
    Laplacian) and step halving where the objective would increase; when ``l2 == 0`` the sum-zero
    constraint is imposed by adding ``1 1^T`` to the Laplacian.
    """
    sij = np.atleast_2d(sij).astype(np.float64, copy=False)
    sji = np.atleast_2d(sji).astype(np.float64, copy=False)
    nb = sij.shape[0]
    l2v = np.broadcast_to(np.asarray(l2, dtype=np.float64), (nb,)).copy()
    tot = sij + sji
    theta = np.zeros((nb, m)) if theta0 is None else np.array(np.broadcast_to(theta0, (nb, m)), dtype=np.float64)
    theta -= theta.mean(axis=1, keepdims=True)
    flat_ij = i * m + j  # positions in one m x m matrix
    flat_ji = j * m + i
    flat_dd = np.arange(m) * (m + 1)
    active = np.arange(nb)
    it = 0
    for it in range(1, max_iter + 1):
        k = active.size
        th, s_ij, s_ji, tt, lv = theta[active], sij[active], sji[active], tot[active], l2v[active]
        d = th[:, i] - th[:, j]
        p = 0.5 * (1.0 + np.tanh(0.5 * d))  # sigma(d), overflow-free
        r = s_ij - tt * p  # d loglik / d d
        h = tt * p * (1.0 - p)
        offs = (np.arange(k) * m)[:, None]
        fi = (offs + i).ravel()
        fj = (offs + j).ravel()
        grad = (np.bincount(fi, r.ravel(), k * m) - np.bincount(fj, r.ravel(), k * m)).reshape(k, m)
        grad -= lv[:, None] * th
        deg = (np.bincount(fi, h.ravel(), k * m) + np.bincount(fj, h.ravel(), k * m)).reshape(k, m)
        # Hessian of the negative log-likelihood: weighted graph Laplacian (+ l2, or + 1/m for sum-zero)
        hess: npt.NDArray[np.float64] = np.zeros((k, m * m))  # reshaped to (k, m, m) below
        hess[:, flat_ij] = -h
        hess[:, flat_ji] = -h
        hess[:, flat_dd] = deg + lv[:, None]
        hess = hess.reshape(k, m, m)
        hess[lv == 0] += 1.0 / m
        try:
            step = np.linalg.solve(hess, grad[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.stack([np.linalg.lstsq(hk, gk, rcond=None)[0] for hk, gk in zip(hess, grad)])
        # damped step: far from the optimum, halve until the objective does not increase (per replicate)
        t = np.ones(k)
        new = th + step
        big = np.flatnonzero(np.abs(step).max(axis=1) > 0.5)
        if big.size:
            f_cur = _objective(th[big], i, j, s_ij[big], s_ji[big], lv[big])
            f_new = _objective(new[big], i, j, s_ij[big], s_ji[big], lv[big])
            for _ in range(30):
                worse = f_new > f_cur + 1e-12 * np.abs(f_cur) + 1e-12
                if not worse.any():
                    break
                rows = big[worse]
                t[rows] *= 0.5
                new[rows] = th[rows] + t[rows, None] * step[rows]
                f_new[worse] = _objective(new[rows], i, j, s_ij[rows], s_ji[rows], lv[rows])
        new -= new.mean(axis=1, keepdims=True)
        theta[active] = new
        done = np.abs(t[:, None] * step).max(axis=1) < tol
        active = active[~done]
        if active.size == 0:
            break
    return theta, it


def _lbfgs_bt(i: np.ndarray, j: np.ndarray, sij: np.ndarray, sji: np.ndarray, m: int, l2: float,
              theta0: np.ndarray | None) -> np.ndarray:
    """Aggregated L-BFGS fit for very many models (dense Newton would cost O(models^3) per step)."""
    from scipy.optimize import minimize

    tot = sij + sji

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        d = theta[i] - theta[j]
        f = (sij * np.logaddexp(0.0, -d) + sji * np.logaddexp(0.0, d)).sum() + 0.5 * l2 * theta @ theta
        r = sij - tot * (0.5 * (1.0 + np.tanh(0.5 * d)))
        g = -(np.bincount(i, r, m) - np.bincount(j, r, m)) + l2 * theta
        mean = theta.mean()  # keep the free direction pinned when l2 == 0
        return f + 0.5 * mean * mean * m, g + mean

    x0 = np.zeros(m) if theta0 is None else theta0
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", options={"maxiter": 10_000, "gtol": 1e-9, "ftol": 1e-15})
    return res.x - res.x.mean()


def multinomial_resample(rng: np.random.Generator, counts: np.ndarray, size: int) -> np.ndarray:
    """``size`` draws of Multinomial(counts.sum(), counts / counts.sum()): a bootstrap of the battles.

    Exact and faster than ``Generator.multinomial`` for many cells: draw independent Poisson counts
    (which, given their total S, are multinomial with S trials), then add S' = N - S extra battles drawn
    from ``counts`` or remove S - N battles chosen uniformly at random among the S drawn ones.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = round(counts.sum())
    k = counts.size
    out = rng.poisson(counts, size=(size, k))
    cdf = np.cumsum(counts)
    for r in range(size):
        row = out[r]
        diff = total - int(row.sum())
        if diff > 0:
            extra = np.searchsorted(cdf, rng.random(diff) * cdf[-1], side="right")
            row += np.bincount(np.minimum(extra, k - 1), minlength=k)
        elif diff < 0:
            s = int(row.sum())
            drop_pos = rng.choice(s, size=-diff, replace=False)
            cells = np.searchsorted(np.cumsum(row), drop_pos, side="right")
            row -= np.bincount(cells, minlength=k)
    return out


DENSE_LIMIT = 1500
"""Above this many models the fit switches from dense batched Newton to aggregated L-BFGS."""


def fit_theta(counts: PairCounts, l2: float, w: np.ndarray | None = None,
              theta0: np.ndarray | None = None) -> np.ndarray:
    """Logit-scale strengths (mean zero) for one set of (possibly resampled) weighted counts ``w`` (P, 3)."""
    w = counts.w if w is None else w
    sij = w[:, 0] + 0.5 * w[:, 2]
    sji = w[:, 1] + 0.5 * w[:, 2]
    if counts.n_models > DENSE_LIMIT:
        return _lbfgs_bt(counts.i, counts.j, sij, sji, counts.n_models, l2, theta0)
    theta, _ = newton_bt(counts.i, counts.j, sij[None], sji[None], counts.n_models, l2, theta0)
    return theta[0]


def _fisher_cov(counts: PairCounts, theta: np.ndarray, l2: float) -> np.ndarray:
    """Covariance of the strengths from the inverse observed information (sum-zero constrained)."""
    m = counts.n_models
    w = counts.w
    tot = w.sum(axis=1)
    p = 0.5 * (1.0 + np.tanh(0.5 * (theta[counts.i] - theta[counts.j])))
    h = tot * p * (1 - p)
    lap = np.zeros((m, m))
    lap[counts.i, counts.j] = -h
    lap[counts.j, counts.i] = -h
    lap[np.arange(m), np.arange(m)] = np.bincount(counts.i, h, m) + np.bincount(counts.j, h, m) + l2
    if l2 == 0:
        # pseudo-inverse on the sum-zero subspace
        inv = np.linalg.inv(lap + 1.0 / m)
        return inv - 1.0 / m
    return np.linalg.inv(lap)


def leaderboard_frame(models: tuple[str, ...], rating: np.ndarray, lo: np.ndarray, hi: np.ndarray, med: np.ndarray,
                      per_model: pd.DataFrame, flagged: np.ndarray, attrs: dict[str, Any]) -> pd.DataFrame:
    """The leaderboard DataFrame shared by every rating system, best first.

    ``rank`` = 1 + the number of models whose lower bound is above this model's upper bound.
    """
    rank = 1 + (lo[None, :] > hi[:, None]).sum(axis=1)
    df = pd.DataFrame(
        {"rating": rating, "ci_low": lo, "ci_high": hi, "median": med, "rank": rank.astype(np.int64),
         "battles": per_model["battles"].to_numpy(), "wins": per_model["wins"].to_numpy(),
         "losses": per_model["losses"].to_numpy(), "ties": per_model["ties"].to_numpy(),
         "flagged": np.asarray(flagged, dtype=bool)},
        index=pd.Index(list(models), name="model"),
    )
    df = df.sort_values("rating", ascending=False, kind="mergesort")
    df.attrs.update(attrs)
    return df


class BradleyTerry:
    """Bradley-Terry ratings with ties on the Elo scale, sklearn style.

    Parameters
    ----------
    scale, base:
        Elo scale: ``P(i beats j) = 1 / (1 + base ** ((R_j - R_i) / scale))`` (defaults 400 and 10).
    init:
        Mean rating when no named anchor is given (default 1000).
    anchor:
        ``None`` (mean rating = ``init``), a number (mean rating = that number), a model name (that
        model = ``init``), ``(model, rating)`` or ``{model: rating}``.
    l2:
        L2 penalty on the logit-scale strengths (a Gaussian prior N(0, 1/l2)). ``None`` (default) is 0
        when the MLE exists and :data:`AUTO_L2` when it does not (some model has only wins or only
        losses); such models get a finite rating through the prior and are ``flagged``.
    bootstrap:
        Rounds of multinomial bootstrap over the pair counts for the percentile CIs (exactly like
        resampling the battles with replacement; with weights, a resampled battle carries the mean
        weight of its (pair, outcome) cell). ``0`` gives Wald CIs from the observed information instead.
    ci:
        Confidence level of the intervals (default 0.95).
    seed:
        Seed (int) or ``numpy.random.Generator`` for the bootstrap; same seed, same numbers.
    cluster:
        For graded battles (a DataFrame with an ``outcome`` column, ``P(model_a beats model_b)``; see
        :mod:`banditarena.ratings.graded`): the column whose values are resampled by the bootstrap (e.g.
        ``prompt_id``: battles on one prompt share answers). ``None``: each battle is resampled on its own.

    Graded battles are fitted on their probabilities (soft-label Bradley-Terry) instead of win/loss/tie;
    ``leaderboard().attrs["outcome_model"]`` says which (``"graded"`` or ``"win/loss/tie"``).

    After :meth:`fit`: ``models_``, ``theta_`` (logit scale, mean zero), ``ratings_`` (Series),
    ``bootstrap_`` (DataFrame rounds x models, or ``None``), ``counts_``, ``l2_``, ``mle_exists_``,
    ``bootstrap_prior_rounds_`` (rounds whose resample had no finite MLE and got the ``AUTO_L2`` prior).
    """

    def __init__(self, *, scale: float = 400.0, base: float = 10.0, init: float = 1000.0, anchor: Any = None,
                 l2: float | None = None, bootstrap: int = 100, ci: float = 0.95,
                 seed: int | np.random.Generator | None = 0, cluster: str | None = None) -> None:
        if not scale > 0 or not base > 1:
            raise RatingsInputError(f"scale must be > 0 and base > 1, got scale={scale}, base={base}")
        if l2 is not None and not l2 >= 0:
            raise RatingsInputError(f"l2 must be >= 0, got {l2}")
        if int(bootstrap) < 0:
            raise RatingsInputError(f"bootstrap must be >= 0, got {bootstrap}")
        if not 0 < ci < 1:
            raise RatingsInputError(f"ci must be in (0, 1), got {ci}")
        self.scale = float(scale)
        self.base = float(base)
        self.init = float(init)
        self.anchor = anchor
        self.l2 = l2
        self.bootstrap = int(bootstrap)
        self.ci = float(ci)
        self.seed = seed
        self.cluster = cluster

    # -- helpers ---------------------------------------------------------------------------------------
    @property
    def elo_per_logit(self) -> float:
        """Rating points per unit of logit-scale strength (scale / ln(base))."""
        return self.scale / math.log(self.base)

    def _to_rating(self, theta: np.ndarray, anchor: _Anchor, models: tuple[str, ...]) -> np.ndarray:
        r = np.asarray(theta) * self.elo_per_logit
        if anchor.model is None:
            return r - r.mean(axis=-1, keepdims=True) + anchor.value
        k = models.index(anchor.model)
        return r - r[..., k:k + 1] + anchor.value

    # -- fitting ---------------------------------------------------------------------------------------
    def fit(self, battles: Any, *, drop_invalid: bool = False) -> BradleyTerry:
        """Fit on any accepted battle input (DataFrame, list of dicts, Parquet/JSONL path, PairCounts); a
        DataFrame with an ``outcome`` column is fitted on its graded outcomes."""
        self.graded_: GradedBattles | None = None
        if has_graded_outcomes(battles):
            self.graded_ = graded_arrays(battles, cluster=self.cluster, drop_invalid=drop_invalid)
            hard, s_ij, s_ji = graded_counts(self.graded_)
            counts = soft_counts(hard, s_ij, s_ji)
        else:
            counts = aggregate(battles, drop_invalid=drop_invalid)
        if counts.n_battles == 0 or counts.n_models < 2:
            raise RatingsInputError("need battles between at least two models")
        models = counts.models
        m = counts.n_models
        anchor = _parse_anchor(self.anchor, models, self.init)
        sij = counts.w[:, 0] + 0.5 * counts.w[:, 2]
        sji = counts.w[:, 1] + 0.5 * counts.w[:, 2]
        exists = strongly_connected(counts.i, counts.j, sij, sji, m)
        l2 = (0.0 if exists else AUTO_L2) if self.l2 is None else float(self.l2)
        if l2 == 0 and not exists:
            raise RatingsInputError(
                "the unregularised MLE does not exist (a model has only wins or only losses, or the battle "
                "graph is disconnected); use l2 > 0 or l2=None"
            )
        theta = fit_theta(counts, l2)
        score_for = np.bincount(counts.i, sij, m) + np.bincount(counts.j, sji, m)
        score_against = np.bincount(counts.i, sji, m) + np.bincount(counts.j, sij, m)
        self.flagged_ = (score_for == 0) | (score_against == 0)
        self.counts_ = counts
        self.models_ = models
        self.l2_ = l2
        self.mle_exists_ = exists
        self.anchor_ = anchor
        self.theta_ = theta
        self.ratings_ = pd.Series(self._to_rating(theta, anchor, models), index=pd.Index(models, name="model"),
                                  name="rating")
        self.bootstrap_ = None
        self.bootstrap_prior_rounds_ = 0
        if self.bootstrap > 0:
            self.bootstrap_ = pd.DataFrame(self._bootstrap(counts, theta, l2), columns=pd.Index(models, name="model"))
        return self

    def _prior_rounds(self, counts: PairCounts, sij: np.ndarray, sji: np.ndarray, l2: float) -> np.ndarray:
        """Per-round l2: rounds whose resample has no finite MLE (e.g. a model with only wins) get the prior."""
        nb = sij.shape[0]
        l2v = np.full(nb, l2)
        if l2 == 0:
            bad = np.zeros(nb, dtype=bool)
            for b in range(nb):
                if ((sij[b] == 0) | (sji[b] == 0)).any() and not strongly_connected(
                        counts.i, counts.j, sij[b], sji[b], counts.n_models):
                    bad[b] = True
            l2v[bad] = AUTO_L2
            self.bootstrap_prior_rounds_ += int(bad.sum())
        return l2v

    def _refit_rounds(self, counts: PairCounts, sij: np.ndarray, sji: np.ndarray, l2: float,
                      theta: np.ndarray) -> np.ndarray:
        """Ratings of resampled rounds (rows of ``sij``/``sji``), warm-started at the fitted ``theta``."""
        m = counts.n_models
        l2v = self._prior_rounds(counts, sij, sji, l2)
        if m > DENSE_LIMIT:
            th = np.stack([_lbfgs_bt(counts.i, counts.j, sij[b], sji[b], m, l2v[b], theta) for b in range(len(sij))])
        else:
            th, _ = newton_bt(counts.i, counts.j, sij, sji, m, l2v, theta0=theta, tol=1e-4)
        return self._to_rating(th, self.anchor_, counts.models)

    def _cluster_bootstrap(self, counts: PairCounts, theta: np.ndarray, l2: float) -> np.ndarray:
        """Graded battles: resample clusters (multinomially, as many as there are) and refit every round."""
        assert self.graded_ is not None
        rng = self.seed if isinstance(self.seed, np.random.Generator) else np.random.default_rng(self.seed)
        m = counts.n_models
        c_ij, c_ji = cluster_scores(self.graded_, counts)
        nc = self.graded_.n_clusters
        out = np.empty((self.bootstrap, m))
        self.bootstrap_prior_rounds_ = 0
        batch = max(1, min(self.bootstrap, 16_000_000 // max(m * m, nc, 1)))
        for start in range(0, self.bootstrap, batch):
            nb = min(batch, self.bootstrap - start)
            draws = rng.multinomial(nc, np.full(nc, 1.0 / nc), size=nb).astype(np.float64).T  # (nc, nb)
            sij = np.asarray(c_ij.T @ draws).T
            sji = np.asarray(c_ji.T @ draws).T
            out[start:start + nb] = self._refit_rounds(counts, sij, sji, l2, theta)
        return out

    def _bootstrap(self, counts: PairCounts, theta: np.ndarray, l2: float) -> np.ndarray:
        if self.graded_ is not None:
            return self._cluster_bootstrap(counts, theta, l2)
        rng = self.seed if isinstance(self.seed, np.random.Generator) else np.random.default_rng(self.seed)
        m = counts.n_models
        n_flat = counts.n.ravel().astype(np.float64)
        nz = np.flatnonzero(n_flat)
        mean_w = np.zeros_like(n_flat)
        mean_w[nz] = counts.w.ravel()[nz] / n_flat[nz]
        out = np.empty((self.bootstrap, m))
        self.bootstrap_prior_rounds_ = 0
        # batch so that the B x m x m Hessians stay below ~16M floats (128 MB)
        batch = max(1, min(self.bootstrap, 16_000_000 // max(m * m, 1)))
        for start in range(0, self.bootstrap, batch):
            nb = min(batch, self.bootstrap - start)
            draws = multinomial_resample(rng, n_flat[nz], nb)
            w: npt.NDArray[np.float64] = np.zeros((nb, n_flat.size))  # reshaped to (nb, pairs, 3) below
            w[:, nz] = draws * mean_w[nz]
            w = w.reshape(nb, -1, 3)
            sij = w[:, :, 0] + 0.5 * w[:, :, 2]
            sji = w[:, :, 1] + 0.5 * w[:, :, 2]
            out[start:start + nb] = self._refit_rounds(counts, sij, sji, l2, theta)
        return out

    # -- outputs ---------------------------------------------------------------------------------------
    def leaderboard(self) -> pd.DataFrame:
        """DataFrame indexed by model, best first: rating, ci_low, ci_high, median, rank, battles, wins,
        losses, ties, flagged. ``rank`` = 1 + number of models whose ``ci_low`` exceeds this ``ci_high``."""
        self._check_fitted()
        rating = self.ratings_.to_numpy()
        alpha = (1 - self.ci) / 2
        if self.bootstrap_ is not None:
            boot = self.bootstrap_.to_numpy()
            lo, med, hi = np.percentile(boot, [100 * alpha, 50, 100 * (1 - alpha)], axis=0)
        else:
            from scipy.stats import norm

            cov = _fisher_cov(self.counts_, self.theta_, self.l2_) * self.elo_per_logit ** 2
            m = len(self.models_)
            if self.anchor_.model is not None:  # variance of R_i - R_anchor
                k = self.models_.index(self.anchor_.model)
                e = np.eye(m) - np.eye(m)[k]
                var = np.einsum("ij,jk,ik->i", e, cov, e)
            else:
                var = np.diag(cov)
            half = norm.ppf(1 - alpha) * np.sqrt(np.maximum(var, 0))
            lo, med, hi = rating - half, rating.copy(), rating + half
        attrs = {
            "n_battles": self.counts_.n_battles, "n_models": len(self.models_), "l2": self.l2_,
            "mle_exists": bool(self.mle_exists_), "bootstrap": self.bootstrap, "ci": self.ci,
            "scale": self.scale, "base": self.base, "anchor": self.anchor_.model, "anchor_value": self.anchor_.value,
            "ci_method": "bootstrap-percentile" if self.bootstrap_ is not None else "wald",
            "bootstrap_prior_rounds": getattr(self, "bootstrap_prior_rounds_", 0),
            "outcome_model": "graded" if self.graded_ is not None else "win/loss/tie",
        }
        if self.graded_ is not None and self.bootstrap_ is not None:
            attrs["ci_method"] = "bootstrap-percentile over " + (self.cluster or "battles")
        return leaderboard_frame(self.models_, rating, lo, hi, med, self.counts_.per_model(), self.flagged_, attrs)

    def predict_proba(self, model_a: str, model_b: str) -> float:
        """Probability that ``model_a`` beats ``model_b`` (a tie counted as half) under the fitted ratings."""
        self._check_fitted()
        for name in (model_a, model_b):
            if name not in self.ratings_.index:
                raise RatingsInputError(f"unknown model {name!r}")
        diff = self.ratings_[model_a] - self.ratings_[model_b]
        return float(1.0 / (1.0 + self.base ** (-diff / self.scale)))

    def _check_fitted(self) -> None:
        if not hasattr(self, "ratings_"):
            raise RatingsInputError("BradleyTerry is not fitted yet; call fit(battles) first")


def fit_bt(battles: Any, *, bootstrap: int = 100, seed: int | np.random.Generator | None = 0, anchor: Any = None,
           l2: float | None = None, scale: float = 400.0, base: float = 10.0, init: float = 1000.0,
           ci: float = 0.95, drop_invalid: bool = False, cluster: str | None = None) -> pd.DataFrame:
    """Bradley-Terry leaderboard with ties and bootstrap CIs (see :class:`BradleyTerry` for parameters).
    A DataFrame with an ``outcome`` column (``P(model_a beats model_b)``) is fitted on those graded
    outcomes, with the bootstrap over ``cluster`` (e.g. ``"prompt_id"``).

    Returns a DataFrame indexed by model (best first) with columns ``rating``, ``ci_low``, ``ci_high``,
    ``median``, ``rank``, ``battles``, ``wins``, ``losses``, ``ties``, ``flagged``; fit details are in
    ``df.attrs``. The same seed gives the same numbers. An optional ``weight`` column weights battles.
    """
    model = BradleyTerry(scale=scale, base=base, init=init, anchor=anchor, l2=l2, bootstrap=bootstrap, ci=ci,
                         seed=seed, cluster=cluster)
    return model.fit(battles, drop_invalid=drop_invalid).leaderboard()
