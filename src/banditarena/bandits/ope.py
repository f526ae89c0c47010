"""Off-policy evaluation from decision logs: IPS, self-normalised IPS and doubly robust, each with a normal CI."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from banditarena.bandits._common import BanditInputError, check_float


@dataclass(frozen=True)
class OPEEstimate:
    """Estimated value of the target policy with a two-sided confidence interval."""

    estimate: float
    ci_low: float
    ci_high: float
    std_error: float
    n: int
    method: str
    ess: float | None = None  # effective sample size of the importance weights, (sum w)^2 / sum w^2

    def as_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return {"estimate": self.estimate, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "std_error": self.std_error, "n": self.n, "method": self.method, "ess": self.ess}


def _check(arms: Any, rewards: Any, propensities: Any, target: Any) -> tuple[np.ndarray, ...]:
    a = np.asarray(arms).reshape(-1)
    r = np.asarray(rewards, dtype=float).reshape(-1)
    p = np.asarray(propensities, dtype=float).reshape(-1)
    t = np.asarray(target, dtype=float)
    n = a.shape[0]
    if n < 2:
        raise BanditInputError(f"off-policy evaluation needs at least 2 logged decisions, got {n}")
    if r.shape[0] != n or p.shape[0] != n or t.shape[0] != n:
        raise BanditInputError(f"arms, rewards, propensities and target must have the same length {n}")
    if a.dtype.kind not in "iu":
        raise BanditInputError(f"arms must be integer indices, got dtype {a.dtype}")
    if not np.isfinite(r).all():
        raise BanditInputError(f"rewards: entry {int(np.flatnonzero(~np.isfinite(r))[0])} is not finite")
    bad = ~(np.isfinite(p) & (p > 0) & (p <= 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise BanditInputError(f"propensities: entry {i} is {p[i]}, must lie in (0, 1]")
    if t.ndim == 2:
        if a.min() < 0 or a.max() >= t.shape[1]:
            raise BanditInputError(f"arms must lie in 0..{t.shape[1] - 1} (columns of target)")
        pt = t[np.arange(n), a]
    elif t.ndim == 1:
        pt = t
    else:
        raise BanditInputError(f"target must have shape (n,) or (n, n_arms), got {t.shape}")
    if not (np.isfinite(pt).all() and (pt >= 0).all() and (pt <= 1).all()):
        raise BanditInputError("target probabilities must lie in [0, 1]")
    return a, r, p, t, pt


def _weights(pt: np.ndarray, p: np.ndarray, clip: float | None) -> np.ndarray:
    w = pt / p
    if clip is not None:
        w = np.minimum(w, check_float("clip", clip, 0.0, low_open=True))
    return w


def _ess(w: np.ndarray) -> float:
    """Effective sample size of importance weights: n when the target is the logging policy, near 1 when a
    few logged decisions carry all the weight (the CI is then not to be trusted)."""
    sq = float((w * w).sum())
    return float(w.sum() ** 2 / sq) if sq > 0 else 0.0


def _result(values: np.ndarray, est: float, confidence: float, method: str, w: np.ndarray | None = None) -> OPEEstimate:
    conf = check_float("confidence", confidence, 0.0, 1.0, True, True)
    n = values.shape[0]
    se = float(values.std(ddof=1) / np.sqrt(n))
    z = NormalDist().inv_cdf(0.5 + conf / 2.0)
    return OPEEstimate(float(est), float(est - z * se), float(est + z * se), se, int(n), method,
                       None if w is None else _ess(w))


def ips(arms: Any, rewards: Any, propensities: Any, target: Any, *, confidence: float = 0.95,
        clip: float | None = None) -> OPEEstimate:
    """Inverse propensity scoring: mean of ``pi(a|x) / mu(a|x) * r``.

    Args:
        arms, rewards, propensities: the logged decisions (``propensities`` = logging probabilities).
        target: the target policy's probabilities, ``(n, n_arms)`` over all arms or ``(n,)`` for the logged arms.
        confidence: CI level (normal approximation).
        clip: optional cap on the importance weights (lower variance, some bias).
    """
    _, r, p, _, pt = _check(arms, rewards, propensities, target)
    w = _weights(pt, p, clip)
    v = w * r
    return _result(v, float(v.mean()), confidence, "ips", w)


def snips(arms: Any, rewards: Any, propensities: Any, target: Any, *, confidence: float = 0.95,
          clip: float | None = None) -> OPEEstimate:
    """Self-normalised IPS: ``sum(w r) / sum(w)``; CI by the delta method. Same arguments as :func:`ips`."""
    _, r, p, _, pt = _check(arms, rewards, propensities, target)
    w = _weights(pt, p, clip)
    if w.sum() <= 0:
        raise BanditInputError("snips: the target policy gives zero probability to every logged decision")
    est = float((w * r).sum() / w.sum())
    infl = w * (r - est) / w.mean()
    return _result(infl + est, est, confidence, "snips", w)


def _ridge_fit_predict(x_fit: np.ndarray, a_fit: np.ndarray, r_fit: np.ndarray, x_pred: np.ndarray, k: int,
                       l2: float) -> np.ndarray:
    """Per-arm ridge regression with intercept; predictions (n_pred, k)."""
    xf = np.hstack([x_fit, np.ones((x_fit.shape[0], 1))])
    xp = np.hstack([x_pred, np.ones((x_pred.shape[0], 1))])
    d = xf.shape[1]
    overall = float(r_fit.mean()) if r_fit.size else 0.0
    out = np.empty((xp.shape[0], k))
    for arm in range(k):
        rows = a_fit == arm
        if not rows.any():
            out[:, arm] = overall
            continue
        xa = xf[rows]
        ra = r_fit[rows] - overall
        coef = np.linalg.solve(xa.T @ xa + l2 * np.eye(d), xa.T @ ra)
        out[:, arm] = xp @ coef + overall
    return out


def doubly_robust(arms: Any, rewards: Any, propensities: Any, target: Any, contexts: Any = None, *,
                  l2: float = 1.0, n_folds: int = 2, confidence: float = 0.95, clip: float | None = None,
                  seed: int | None = 0) -> OPEEstimate:
    """Doubly robust estimate with a per-arm ridge reward model, cross-fitted over ``n_folds`` folds.

    value_i = sum_a pi(a|x_i) q(x_i, a) + pi(a_i|x_i) / mu(a_i|x_i) * (r_i - q(x_i, a_i)).

    Args:
        arms, rewards, propensities: the logged decisions.
        target: the target policy's probabilities over all arms, shape ``(n, n_arms)``.
        contexts: ``(n, dim)`` logged contexts, or ``None`` for context-free logs (the model is per-arm means).
        l2: ridge penalty of the reward model.
        n_folds: cross-fitting folds (1 = fit and predict on all data).
        confidence, clip: as for :func:`ips`.
        seed: fold assignment.
    """
    a, r, p, t, pt = _check(arms, rewards, propensities, target)
    if t.ndim != 2:
        raise BanditInputError("doubly_robust: target must give probabilities over all arms, shape (n, n_arms)")
    n, k = t.shape
    x = np.zeros((n, 0)) if contexts is None else np.asarray(contexts, dtype=float)
    if x.ndim != 2 or x.shape[0] != n:
        raise BanditInputError(f"doubly_robust: contexts must have shape ({n}, dim), got {x.shape}")
    if not np.isfinite(x).all():
        raise BanditInputError("doubly_robust: contexts contain NaN or infinite values")
    l2 = check_float("l2", l2, 0.0, low_open=True)
    if not isinstance(n_folds, int) or n_folds < 1 or n_folds > n:
        raise BanditInputError(f"doubly_robust: n_folds must be an integer in 1..{n}, got {n_folds!r}")
    q = np.empty((n, k))
    if n_folds == 1:
        q[:] = _ridge_fit_predict(x, a, r, x, k, l2)
    else:
        fold = np.random.default_rng(seed).permutation(n) % n_folds
        for f in range(n_folds):
            test = fold == f
            q[test] = _ridge_fit_predict(x[~test], a[~test], r[~test], x[test], k, l2)
    w = _weights(pt, p, clip)
    v = (t * q).sum(axis=1) + w * (r - q[np.arange(n), a])
    return _result(v, float(v.mean()), confidence, "doubly_robust", w)


def target_probabilities(policy: Any, contexts: Any = None, n: int | None = None) -> np.ndarray:
    """The ``(n, n_arms)`` probabilities a policy (anything with ``probabilities(context)``) gives each logged
    decision: per context row, or the same context-free distribution repeated ``n`` times."""
    if contexts is None:
        if n is None:
            raise BanditInputError("target_probabilities: give contexts or n")
        p = np.asarray(policy.probabilities(None), dtype=float)
        return np.broadcast_to(p, (n, p.shape[-1])).copy()
    x = np.asarray(contexts, dtype=float)
    return np.asarray(policy.probabilities(x), dtype=float).reshape(x.shape[0], -1)
