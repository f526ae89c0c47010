"""Linear contextual policies with one ridge model per arm ("disjoint" models): LinUCB and linear Thompson sampling.

Each arm keeps ``A = l2 * I + sum x x^T`` and ``b = sum r x``; ``theta = A^-1 b``. With ``discount`` set, every
reward received multiplies all arms' data by ``discount`` (D-LinUCB, Russac et al. 2019) while the ridge term
stays ``l2 * I``; the discounted models are kept as eigendecompositions so forgetting costs nothing until an arm
is updated again.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np

from banditarena.bandits._common import check_float, check_positive_int
from banditarena.bandits.base import Policy

_CHUNK = 2048          # rows per block in batched scoring (bounds the (rows, K, dim) temporaries)
_BLOCK = 32            # column block of the triangular roots in batched scoring
_REFRESH_EVERY = 256    # exact re-inversion of A after this many rank-one (Sherman-Morrison) updates of an arm
_ONE = np.ones(1)

#: ``(blocks32, roots64, theta32)`` of :meth:`_LinearPolicy._batch_view`
_BatchView: TypeAlias = tuple[list[tuple[int, np.ndarray]], np.ndarray, np.ndarray]


class _LinearPolicy(Policy):
    """Shared ridge-per-arm machinery of LinUCB and LinTS."""

    dim: int  # always set: these policies are contextual

    def __init__(self, n_arms: int, dim: int, alpha: float, l2: float, discount: float | None,
                 seed: int | np.random.Generator | None) -> None:
        super().__init__(n_arms, seed)
        self.dim = check_positive_int("dim", dim)
        self.alpha = check_float("alpha", alpha, 0.0)
        self.l2 = check_float("l2", l2, 0.0, low_open=True)
        self.discount = None if discount is None else check_float("discount", discount, 0.0, 1.0, True, True)
        k, d = self._k, self.dim
        eye = np.eye(d)
        self._batch_cache: _BatchView | None = None
        self._workspace: tuple[np.ndarray, np.ndarray] | None = None   # scratch buffers of the batched scorer
        if self.discount is None:
            self._A = np.tile(eye * self.l2, (k, 1, 1))
            self._b = np.zeros((k, d))
            self._pack(np.tile(eye / self.l2, (k, 1, 1)), np.zeros((k, d)))
            self._sm_count = [0] * k
            self._pending: list[list[tuple[np.ndarray, float]]] = [[] for _ in range(k)]  # (x, r) not yet in A, b
            self._roots = np.tile(eye / np.sqrt(self.l2), (k, 1, 1))        # cholesky(A^-1), per arm
            self._root_dirty = np.zeros(k, dtype=bool)
        else:
            self._G = np.zeros((k, d, d))
            self._bd = np.zeros((k, d))
            self._U = np.tile(eye, (k, 1, 1))
            self._e = np.zeros((k, d))
            self._last = np.zeros(k, dtype=np.int64)
            self._time = 0
            self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def _pack(self, ainv: np.ndarray, theta: np.ndarray) -> None:
        """Keep A^-1 (K, d, d) and theta (K, d) as views of one (K*d + K, d) buffer: one gemv scores a context."""
        k, d = ainv.shape[0], self.dim
        buf = np.empty((k * d + k, d))
        buf[:k * d] = ainv.reshape(k * d, d)
        buf[k * d:] = theta
        self._stack = buf
        self._Ainv = buf[:k * d].reshape(k, d, d)
        self._theta = buf[k * d:]

    # ------------------------------------------------------------ model view
    @property
    def theta(self) -> np.ndarray:
        """Ridge coefficients per arm, shape ``(n_arms, dim)``."""
        if self.discount is None:
            return self._theta.copy()
        return self._discounted_view()[0].copy()

    def _discounted_view(self) -> tuple[np.ndarray, np.ndarray]:
        """(theta (K, d), M (K, d, d)) with ``A(t)^-1 = M M^T`` at the current time."""
        if self._cache is None:
            assert self.discount is not None  # only the discounted model keeps a cache
            c = self.discount ** (self._time - self._last).astype(float)          # (K,)
            inv = 1.0 / (c[:, None] * self._e + self.l2)                           # (K, d)
            ub = np.matmul((c[:, None] * self._bd)[:, None, :], self._U)[:, 0, :]  # (U^T c b)^T
            theta = np.matmul(self._U, (inv * ub)[:, :, None])[:, :, 0]
            m = self._U * np.sqrt(inv)[:, None, :]
            self._cache = (theta, m)
        return self._cache

    def _flush(self, a: int) -> None:
        """Add the pending rank-one rows ``(x, r)`` of arm ``a`` to ``A`` and ``b``."""
        rows = self._pending[a]
        if rows:
            x = np.array([row[0] for row in rows])
            r = np.array([row[1] for row in rows])
            self._A[a] += x.T @ x
            self._b[a] += x.T @ r
            rows.clear()

    def _refresh(self, a: int) -> None:
        """Exact re-inversion of arm ``a`` (removes the rounding of many rank-one updates)."""
        self._flush(a)
        self._Ainv[a] = np.linalg.inv(self._A[a])
        self._theta[a] = self._Ainv[a] @ self._b[a]
        self._sm_count[a] = 0

    def _batch_view(self) -> _BatchView:
        """Stacked square roots ``A_k^-1 = R_k R_k^T`` of all arms for one GEMM per block.

        Returns ``(blocks32, roots64, theta32)``: ``blocks32`` is a list of ``(row_start, W)`` float32 matrices;
        block ``j`` holds columns ``j*B:(j+1)*B`` of every arm's root restricted to rows ``row_start:`` (the roots
        are lower triangular Cholesky factors in the undiscounted model, so rows above the block are zero and
        skipped). ``roots64`` is the full ``(d, K*d)`` float64 stack, ``theta32`` the ``(d, K)`` coefficients.
        """
        if self._batch_cache is None:
            k, d = self._k, self.dim
            if self.discount is None:
                for a in np.flatnonzero(self._root_dirty):
                    try:
                        self._roots[a] = np.linalg.cholesky(self._Ainv[a])
                    except np.linalg.LinAlgError:
                        self._refresh(int(a))
                        self._roots[a] = np.linalg.cholesky(self._Ainv[a])
                self._root_dirty[:] = False
                theta, roots = self._theta, self._roots
                bs = min(d, _BLOCK)
            else:
                theta, roots = self._discounted_view()
                bs = d
            blocks = []
            for j in range(0, d, bs):
                r0 = j if self.discount is None else 0
                w = roots[:, r0:, j:j + bs].transpose(1, 0, 2).reshape(d - r0, -1)
                blocks.append((r0, np.ascontiguousarray(w, dtype=np.float32)))
            flat = np.ascontiguousarray(roots.transpose(1, 0, 2).reshape(d, k * d))
            self._batch_cache = (blocks, flat, np.ascontiguousarray(theta.T, dtype=np.float32))
        return self._batch_cache

    def _mean_var(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact (float64) predicted mean and ``x^T A^-1 x`` for rows ``x`` (n, d): two (n, K) arrays."""
        n, d = x.shape
        k = self._k
        if self.discount is None:
            if n == 1:
                out = self._stack @ x[0]                     # one gemv: A_k^-1 x for every arm, then theta x
                return out[None, k * d:], (out[:k * d].reshape(k, d) @ x[0])[None, :]
            mean = x @ self._theta.T
            flat = self._batch_view()[1]
        else:
            theta, mats = self._discounted_view()
            mean = x @ theta.T
            if n == 1:
                v = np.matmul(x[0], mats)                  # M^T x per arm, (K, d)
                return mean, np.einsum("kd,kd->k", v, v)[None, :]
            flat = self._batch_view()[1]
        var = np.empty((n, k))
        for lo in range(0, n, _CHUNK):
            y = (x[lo:lo + _CHUNK] @ flat).reshape(-1, k, d)
            var[lo:lo + _CHUNK] = np.einsum("nkd,nkd->nk", y, y)
        return mean, var

    def _mean_var32(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fast float32 version of :meth:`_mean_var` for large batches (about 1e-6 relative error).

        Works chunk by chunk in reused buffers: fresh multi-megabyte temporaries would be page-faulted in on every
        call and cost more than the GEMMs.
        """
        blocks, _, theta32 = self._batch_view()
        n, k, d = x.shape[0], self._k, self.dim
        rows = min(n, _CHUNK)
        width = max(w.shape[1] for _, w in blocks)
        ws = self._workspace
        if ws is None or ws[0].shape[0] < rows or ws[1].shape[0] < rows * width:
            ws = self._workspace = (np.empty((rows, d), dtype=np.float32), np.empty(rows * width, dtype=np.float32))
        xbuf, ybuf = ws
        mean = np.empty((n, k), dtype=np.float32)
        var = np.empty((n, k), dtype=np.float32)
        for lo in range(0, n, _CHUNK):
            m = min(_CHUNK, n - lo)
            xs = xbuf[:m]
            xs[...] = x[lo:lo + m]
            np.matmul(xs, theta32, out=mean[lo:lo + m])
            acc = var[lo:lo + m]
            for i, (r0, w) in enumerate(blocks):
                y = ybuf[:m * w.shape[1]].reshape(m, w.shape[1])
                np.matmul(xs[:, r0:] if r0 else xs, w, out=y)
                y3 = y.reshape(m, k, -1)
                if i == 0:
                    np.einsum("nkd,nkd->nk", y3, y3, out=acc)
                else:
                    acc += np.einsum("nkd,nkd->nk", y3, y3)
        return mean, var

    # ----------------------------------------------------------------- update
    def _update(self, arms: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None,
                propensities: np.ndarray | None) -> None:
        self._batch_cache = None
        assert contexts is not None  # Policy.update requires contexts when dim is set
        if self.discount is None:
            self._update_plain(arms, rewards, contexts)
        else:
            self._update_discounted(arms, rewards, contexts)

    def _update_plain(self, arms: np.ndarray, rewards: np.ndarray, x: np.ndarray) -> None:
        if arms.shape[0] == 1:
            self._rank_one(int(arms[0]), x[0], float(rewards[0]))
            return
        for a in np.unique(arms):
            rows = arms == a
            xa, ra = x[rows], rewards[rows]
            a = int(a)
            if xa.shape[0] <= 4:
                for i in range(xa.shape[0]):
                    self._rank_one(a, xa[i], float(ra[i]))
                continue
            self._flush(a)
            self._A[a] += xa.T @ xa
            self._b[a] += xa.T @ ra
            self._refresh(a)
            self._root_dirty[a] = True

    def _rank_one(self, a: int, x: np.ndarray, r: float) -> None:
        """Sherman-Morrison update of A^-1 and the recursive-least-squares update of theta."""
        ainv = self._Ainv[a]
        theta = self._theta[a]
        u = ainv @ x
        w = u * (1.0 / (1.0 + x @ u))
        err = r - x @ theta
        ainv -= np.multiply.outer(u, w)
        theta += err * w
        self._pending[a].append((x.copy(), r))      # A and b catch up in _flush
        self._root_dirty[a] = True
        cnt = self._sm_count
        cnt[a] += 1
        if cnt[a] >= _REFRESH_EVERY:
            self._refresh(a)

    def _update_discounted(self, arms: np.ndarray, rewards: np.ndarray, x: np.ndarray) -> None:
        g = self.discount
        assert g is not None  # only called when discount is set
        m = arms.shape[0]
        t_now = self._time + m
        w = g ** np.arange(m - 1, -1, -1, dtype=float)      # weight of each row at time t_now
        for a in np.unique(arms):
            rows = arms == a
            a = int(a)
            xa, ra, wa = x[rows], rewards[rows], w[rows]
            c = g ** float(t_now - self._last[a])
            self._G[a] = c * self._G[a] + (xa * wa[:, None]).T @ xa
            self._bd[a] = c * self._bd[a] + xa.T @ (wa * ra)
            self._last[a] = t_now
            e, u = np.linalg.eigh(self._G[a])
            self._e[a] = np.maximum(e, 0.0)
            self._U[a] = u
        self._time = t_now
        self._cache = None

    # ------------------------------------------------------------------- arms
    def _grow(self) -> None:
        d = self.dim
        eye = np.eye(d)[None]
        self._batch_cache = None
        if self.discount is None:
            self._A = np.concatenate([self._A, eye * self.l2])
            self._b = np.concatenate([self._b, np.zeros((1, d))])
            self._pack(np.concatenate([self._Ainv, eye / self.l2]), np.concatenate([self._theta, np.zeros((1, d))]))
            self._sm_count.append(0)
            self._pending.append([])
            self._roots = np.concatenate([self._roots, eye / np.sqrt(self.l2)])
            self._root_dirty = np.append(self._root_dirty, False)
        else:
            self._G = np.concatenate([self._G, np.zeros((1, d, d))])
            self._bd = np.concatenate([self._bd, np.zeros((1, d))])
            self._U = np.concatenate([self._U, eye])
            self._e = np.concatenate([self._e, np.zeros((1, d))])
            self._last = np.append(self._last, self._time)
            self._cache = None

    def _mask(self, scores: np.ndarray) -> np.ndarray:
        if self._any_removed:
            scores[:, ~self._active] = -np.inf
        return scores

    # ------------------------------------------------------------------ state
    def _base_params(self) -> dict[str, Any]:
        return {"dim": self.dim, "alpha": self.alpha, "l2": self.l2, "discount": self.discount}

    def _get_state(self) -> dict[str, Any]:
        if self.discount is None:
            for a in range(self._k):
                self._flush(a)
            return {"A": self._A.tolist(), "Ainv": self._Ainv.tolist(), "b": self._b.tolist(),
                    "theta": self._theta.tolist(), "sm_count": list(self._sm_count)}
        return {"G": self._G.tolist(), "bd": self._bd.tolist(), "U": self._U.tolist(), "e": self._e.tolist(),
                "last": self._last.tolist(), "time": self._time}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._batch_cache = None
        if self.discount is None:
            self._A = np.asarray(state["A"], dtype=float)
            self._b = np.asarray(state["b"], dtype=float)
            self._pack(np.asarray(state["Ainv"], dtype=float), np.asarray(state["theta"], dtype=float))
            self._sm_count = [int(c) for c in state["sm_count"]]
            k = self._A.shape[0]
            self._pending = [[] for _ in range(k)]
            self._roots = np.zeros_like(self._Ainv)
            self._root_dirty = np.ones(k, dtype=bool)
        else:
            self._G = np.asarray(state["G"], dtype=float)
            self._bd = np.asarray(state["bd"], dtype=float)
            self._U = np.asarray(state["U"], dtype=float)
            self._e = np.asarray(state["e"], dtype=float)
            self._last = np.asarray(state["last"], dtype=np.int64)
            self._time = int(state["time"])
            self._cache = None


def _argmax_ties(scores: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise argmax with uniformly random tie breaking; returns (arms, 1 / number of tied arms)."""
    best = scores.argmax(axis=1)
    top = scores[np.arange(scores.shape[0]), best]
    tied = scores == top[:, None]
    nt = tied.sum(axis=1)
    multi = np.flatnonzero(nt > 1)
    if multi.size:
        u = rng.random(multi.size)
        pick = np.floor(u * nt[multi]).astype(np.int64)           # which of the tied arms
        cum = np.cumsum(tied[multi], axis=1)
        best[multi] = (cum <= pick[:, None]).sum(axis=1)
    return best.astype(np.int64), 1.0 / nt


class LinUCB(_LinearPolicy):
    """LinUCB with disjoint ridge models (Li et al. 2010): score = x.theta_a + alpha * sqrt(x^T A_a^-1 x).

    Same index as MABWiser's ``LearningPolicy.LinUCB(alpha, l2_lambda)``; ties are broken uniformly at random.
    Large batches are scored in float32 with one GEMM; rows whose best two arms are within 1e-4 (relative) are
    re-scored exactly in float64, so the chosen arms equal the float64 choice.

    Args:
        n_arms: number of arms.
        dim: context dimension.
        alpha: width of the confidence bound.
        l2: ridge regularisation (A starts at ``l2 * I``).
        discount: forget old data geometrically (per reward received), for drifting problems.
        seed: int or Generator (tie breaking).
    """

    #: batches at least this large use the float32 scorer
    fast_batch_min = 64

    def __init__(self, n_arms: int, dim: int, alpha: float = 1.0, l2: float = 1.0, discount: float | None = None,
                 seed: int | np.random.Generator | None = None) -> None:
        super().__init__(n_arms, dim, alpha, l2, discount, seed)

    def scores(self, context: Any) -> np.ndarray:
        """Upper confidence bounds (float64), shape ``(n, n_arms)`` (``(n_arms,)`` for one ``(dim,)`` context)."""
        x = self._check_context(context, None)
        s = self._scores(x)
        return s[0] if np.ndim(context) == 1 else s

    def _scores(self, x: np.ndarray) -> np.ndarray:
        mean, var = self._mean_var(x)
        np.maximum(var, 0.0, out=var)
        return self._mask(mean + self.alpha * np.sqrt(var))

    def _select(self, n: int, contexts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        assert contexts is not None  # Policy.select passes contexts to contextual policies
        rows = contexts.shape[0]
        if rows == 1:
            if self.discount is None:                     # online fast path: one gemv for every arm
                x = contexts[0]
                kd = self._k * self.dim
                out = self._stack @ x
                var = out[:kd].reshape(self._k, self.dim) @ x
                s = out[kd:] + self.alpha * np.sqrt(np.maximum(var, 0.0))
                if self._any_removed:
                    s[~self._active] = -np.inf
            else:
                s = self._scores(contexts)[0]
            best = int(s.argmax())
            nt = int((s == s[best]).sum())
            if nt == 1:
                if n == 1:
                    return np.array([best], dtype=np.int64), _ONE.copy()
                return np.full(n, best, dtype=np.int64), np.ones(n)
            ties = np.flatnonzero(s == s[best])
            return ties[self.rng.integers(nt, size=n)].astype(np.int64), np.full(n, 1.0 / nt)
        if rows < self.fast_batch_min or int(self._active.sum()) < 2:
            return _argmax_ties(self._scores(contexts), self.rng)
        mean, var = self._mean_var32(contexts)
        np.maximum(var, 0.0, out=var)
        s = self._mask(mean + np.float32(self.alpha) * np.sqrt(var))
        k = s.shape[1]
        top2 = np.partition(s, k - 2, axis=1)[:, k - 2:]
        top = top2[:, 1]
        near = np.flatnonzero(top - top2[:, 0] <= 1e-4 * (1.0 + np.abs(top)))
        arms = s.argmax(axis=1).astype(np.int64)
        prop = np.ones(rows)
        if near.size:
            arms[near], prop[near] = _argmax_ties(self._scores(contexts[near]), self.rng)
        return arms, prop

    def _probabilities(self, contexts: np.ndarray | None) -> np.ndarray:
        assert contexts is not None  # Policy.probabilities passes contexts to contextual policies
        s = self._scores(contexts)
        tied = s == s.max(axis=1, keepdims=True)
        return tied / tied.sum(axis=1, keepdims=True)

    def _params(self) -> dict[str, Any]:
        return self._base_params()


class LinTS(_LinearPolicy):
    """Linear Thompson sampling (Agrawal & Goyal 2013) with disjoint ridge models: theta_a ~ N(theta_hat_a,
    alpha^2 A_a^-1).

    For one decision the sampled score of arm a is exactly N(x.theta_hat_a, alpha^2 x^T A_a^-1 x), independent
    across arms, so sampling costs the same as LinUCB. Propensities are Monte-Carlo estimates from
    ``propensity_samples`` extra draws per decision (the decision's own draw included; NaN when 0).

    Args:
        n_arms: number of arms.
        dim: context dimension.
        alpha: posterior scale.
        l2: ridge regularisation.
        discount: forget old data geometrically (per reward received).
        propensity_samples: extra posterior draws per decision for the propensity estimate.
        seed: int or Generator.
    """

    def __init__(self, n_arms: int, dim: int, alpha: float = 1.0, l2: float = 1.0, discount: float | None = None,
                 propensity_samples: int = 100, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(n_arms, dim, alpha, l2, discount, seed)
        self.propensity_samples = check_positive_int("propensity_samples", propensity_samples, minimum=0)

    def _mean_sd(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if x.shape[0] >= 64:
            mean, var = self._mean_var32(x)
            mean, var = mean.astype(np.float64), var.astype(np.float64)
        else:
            mean, var = self._mean_var(x)
        np.maximum(var, 0.0, out=var)
        sd = self.alpha * np.sqrt(var)
        if self._any_removed:
            mean[:, ~self._active] = -np.inf
            sd[:, ~self._active] = 0.0
        return mean, sd

    def _select(self, n: int, contexts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        assert contexts is not None  # Policy.select passes contexts to contextual policies
        mean, sd = self._mean_sd(contexts)
        k = self._k
        s = self.propensity_samples
        rng = self.rng
        if mean.shape[0] == 1:                       # one shared context: n + s i.i.d. draws, pooled estimate
            winners = (mean + sd * rng.standard_normal((n + s, k))).argmax(axis=1)
            arms = winners[:n].astype(np.int64)
            if s == 0:
                return arms, np.full(n, np.nan)
            return arms, np.bincount(winners, minlength=k)[arms] / float(n + s)
        arms = (mean + sd * rng.standard_normal((n, k))).argmax(axis=1).astype(np.int64)
        if s == 0:
            return arms, np.full(n, np.nan)
        wins = np.ones(n)
        step = max(1, _CHUNK * 64 // (s * k))
        for lo in range(0, n, step):
            sl = slice(lo, lo + step)
            z = rng.standard_normal((mean[sl].shape[0], s, k))
            w = (mean[sl, None, :] + sd[sl, None, :] * z).argmax(axis=2)
            wins[sl] += (w == arms[sl, None]).sum(axis=1)
        return arms, wins / float(s + 1)

    def _probabilities(self, contexts: np.ndarray | None, n_samples: int = 4000) -> np.ndarray:
        assert contexts is not None  # Policy.probabilities passes contexts to contextual policies
        mean, sd = self._mean_sd(contexts)
        n, k = mean.shape
        out = np.empty((n, k))
        step = max(1, _CHUNK * 64 // (n_samples * k))
        for lo in range(0, n, step):
            sl = slice(lo, lo + step)
            z = self.rng.standard_normal((mean[sl].shape[0], n_samples, k))
            w = (mean[sl, None, :] + sd[sl, None, :] * z).argmax(axis=2)
            out[sl] = (w[:, :, None] == np.arange(k)).mean(axis=1)
        return out

    def _params(self) -> dict[str, Any]:
        return {**self._base_params(), "propensity_samples": self.propensity_samples}
