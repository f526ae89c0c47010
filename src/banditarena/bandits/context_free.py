"""Context-free policies: epsilon-greedy, UCB1, KL-UCB, UCB-V, Thompson sampling (Beta-Bernoulli, Gaussian), EXP3.

Every stochastic policy here accepts ``discount`` (exponential forgetting per reward received) or ``window``
(only the last ``window`` rewards count) for non-stationary problems; ``DiscountedUCB``, ``SlidingWindowUCB``,
``DiscountedThompsonSampling`` and ``SlidingWindowThompsonSampling`` are the named variants.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any

import numpy as np

from banditarena.bandits._common import BanditInputError, check_float, check_positive_int
from banditarena.bandits.base import Policy

_TINY = 1e-300
_ONE = np.ones(1)
_BLOCK = 32  # posterior samples drawn ahead per arm for one-at-a-time Thompson sampling


class _ArmStats:
    """Per-arm reward count, sum and sum of squares; cumulative, discounted or over a sliding window."""

    def __init__(self, k: int, discount: float | None, window: int | None) -> None:
        if discount is not None and window is not None:
            raise BanditInputError("give either discount or window, not both")
        self.discount = None if discount is None else check_float("discount", discount, 0.0, 1.0, True, True)
        self.window = None if window is None else check_positive_int("window", window)
        # float64 throughout; typed np.ndarray since numpy's stubs type a weighted np.bincount as intp
        self.n: np.ndarray = np.zeros(k)
        self.s: np.ndarray = np.zeros(k)
        self.ss: np.ndarray = np.zeros(k)
        self.t = 0  # rewards received so far
        if self.window is not None:
            self.buf_a = np.full(self.window, -1, dtype=np.int64)
            self.buf_r = np.zeros(self.window)
            self.pos = 0
            self._since_exact = 0

    def total(self) -> float:
        """Effective number of rewards behind the statistics (the 't' of the UCB bonus)."""
        if self.discount is not None:
            return float(self.n.sum())
        if self.window is not None:
            return float(min(self.t, self.window))
        return float(self.t)

    def add_one(self, a: int, r: float) -> None:
        g = self.discount
        if g is not None:
            self.n *= g
            self.s *= g
            self.ss *= g
        elif self.window is not None:
            old = int(self.buf_a[self.pos])
            if old >= 0:
                ro = float(self.buf_r[self.pos])
                self.n[old] -= 1.0
                self.s[old] -= ro
                self.ss[old] -= ro * ro
            self.buf_a[self.pos] = a
            self.buf_r[self.pos] = r
            self.pos = (self.pos + 1) % self.window
            self._since_exact += 1
            self.t += 1
            if self._since_exact >= self.window:   # exact sums now and then: no drift from add/subtract
                self._recompute()
                return
        self.n[a] += 1.0
        self.s[a] += r
        self.ss[a] += r * r
        if self.window is None:
            self.t += 1

    def add(self, a: np.ndarray, r: np.ndarray) -> None:
        k = self.n.shape[0]
        m = a.shape[0]
        g = self.discount
        if g is not None:
            w = g ** np.arange(m - 1, -1, -1, dtype=float)
            decay = g ** m
            self.n = self.n * decay + np.bincount(a, weights=w, minlength=k)
            self.s = self.s * decay + np.bincount(a, weights=w * r, minlength=k)
            self.ss = self.ss * decay + np.bincount(a, weights=w * r * r, minlength=k)
        elif self.window is not None:
            wdw = self.window
            if m >= wdw:
                self.buf_a[:] = a[m - wdw:]
                self.buf_r[:] = r[m - wdw:]
                self.pos = 0
            else:
                idx = (self.pos + np.arange(m)) % wdw
                self.buf_a[idx] = a
                self.buf_r[idx] = r
                self.pos = (self.pos + m) % wdw
            self.t += m
            self._recompute()
            return
        else:
            self.n += np.bincount(a, minlength=k)
            self.s += np.bincount(a, weights=r, minlength=k)
            self.ss += np.bincount(a, weights=r * r, minlength=k)
        self.t += m

    def _recompute(self) -> None:
        k = self.n.shape[0]
        ok = self.buf_a >= 0
        a, r = self.buf_a[ok], self.buf_r[ok]
        self.n = np.bincount(a, minlength=k).astype(float)
        self.s = np.bincount(a, weights=r, minlength=k)
        self.ss = np.bincount(a, weights=r * r, minlength=k)
        self._since_exact = 0

    def grow(self) -> None:
        self.n = np.append(self.n, 0.0)
        self.s = np.append(self.s, 0.0)
        self.ss = np.append(self.ss, 0.0)

    def get_state(self) -> dict[str, Any]:
        d: dict[str, Any] = {"n": self.n.tolist(), "s": self.s.tolist(), "ss": self.ss.tolist(), "t": self.t}
        if self.window is not None:
            d.update(buf_a=self.buf_a.tolist(), buf_r=self.buf_r.tolist(), pos=self.pos,
                     since_exact=self._since_exact)
        return d

    def set_state(self, d: dict[str, Any]) -> None:
        self.n = np.asarray(d["n"], dtype=float)
        self.s = np.asarray(d["s"], dtype=float)
        self.ss = np.asarray(d["ss"], dtype=float)
        self.t = int(d["t"])
        if self.window is not None:
            self.buf_a = np.asarray(d["buf_a"], dtype=np.int64)
            self.buf_r = np.asarray(d["buf_r"], dtype=float)
            self.pos = int(d["pos"])
            self._since_exact = int(d["since_exact"])


def _sample_from(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """Draw ``n`` arms from the distribution ``p`` (zero-probability arms are never drawn)."""
    cdf = np.cumsum(p)
    return np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right").astype(np.int64)


class _ContextFree(Policy):
    """Context-free policy over :class:`_ArmStats`."""

    def __init__(self, n_arms: int, seed: int | np.random.Generator | None = None,
                 discount: float | None = None, window: int | None = None) -> None:
        super().__init__(n_arms, seed)
        self._stats = _ArmStats(self._k, discount, window)

    @property
    def counts(self) -> np.ndarray:
        """Effective number of rewards per arm (discounted / windowed for the non-stationary variants)."""
        return self._stats.n.copy()

    @property
    def means(self) -> np.ndarray:
        """Empirical mean reward per arm (0 for arms without rewards)."""
        return self._stats.s / np.maximum(self._stats.n, _TINY)

    def _update(self, arms: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None,
                propensities: np.ndarray | None) -> None:
        st = self._stats
        if arms.shape[0] == 1:
            a = int(arms[0])
            st.add_one(a, float(rewards[0]))
            if st.discount is None and st.window is None:
                self._refresh_arm(a)
                return
        else:
            st.add(arms, rewards)
        self._rebuild()

    def _refresh_arm(self, a: int) -> None:
        """Refresh cached per-arm quantities after arm ``a`` (alone) got a reward (stationary statistics)."""
        self._rebuild()

    def _rebuild(self) -> None:
        """Recompute all cached per-arm quantities from the statistics."""

    def _grow(self) -> None:
        self._stats.grow()

    def add_arm(self) -> int:
        """Add a fresh arm (prior state) and return its index."""
        i = super().add_arm()
        self._rebuild()
        return i

    def remove_arm(self, arm: int) -> None:
        """Retire ``arm``: it is never selected again; late rewards for it are still accepted."""
        super().remove_arm(arm)
        self._rebuild()

    def _base_params(self) -> dict[str, Any]:
        return {"discount": self._stats.discount, "window": self._stats.window}

    def _get_state(self) -> dict[str, Any]:
        return {"stats": self._stats.get_state()}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._stats.set_state(state["stats"])
        self._rebuild()


class _IndexPolicy(_ContextFree):
    """Deterministic index policy: pick the arm with the highest index, ties broken uniformly at random."""

    @abstractmethod
    def _index(self) -> np.ndarray:
        """Index per arm (a fresh array); arms without rewards get +inf."""

    def _masked_index(self) -> np.ndarray:
        idx = self._index()
        if self._any_removed:
            idx[~self._active] = -np.inf
        return idx

    def _select(self, n: int, contexts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        idx = self._masked_index()
        best = int(idx.argmax())
        ties = np.flatnonzero(idx == idx[best])
        nt = ties.shape[0]
        if nt == 1:
            return np.full(n, best, dtype=np.int64), np.ones(n)
        return ties[self.rng.integers(nt, size=n)].astype(np.int64), np.full(n, 1.0 / nt)

    def _probabilities(self, contexts: np.ndarray | None) -> np.ndarray:
        idx = self._masked_index()
        ties = idx == idx.max()
        return ties / ties.sum()


class UCB1(_IndexPolicy):
    """UCB1 (Auer et al. 2002): mean + alpha * sqrt(2 ln t / n_a); unplayed arms first.

    Args:
        n_arms: number of arms.
        alpha: exploration multiplier (1.0 = classic UCB1, same index as MABWiser's ``UCB1(alpha)``).
        discount: forget old rewards geometrically (discounted UCB, Garivier & Moulines 2011).
        window: only the last ``window`` rewards count (sliding-window UCB).
        seed: int or ``numpy.random.Generator`` (tie breaking).
    """

    def __init__(self, n_arms: int, alpha: float = 1.0, discount: float | None = None,
                 window: int | None = None, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(n_arms, seed, discount, window)
        self.alpha = check_float("alpha", alpha, 0.0)
        self._stationary = discount is None and window is None
        self._rebuild()

    def _rebuild(self) -> None:
        st = self._stats
        ns = np.maximum(st.n, _TINY)
        self._mean = st.s / ns
        self._coef = self.alpha * np.sqrt(2.0 / ns)          # bonus = sqrt(ln t) * coef
        self._mean[~self._active] = -np.inf
        self._fast = bool(self._stationary and (st.n[self._active] > 0).all())

    def _refresh_arm(self, a: int) -> None:
        n = self._stats.n[a]
        self._mean[a] = self._stats.s[a] / n if self._active[a] else -np.inf
        self._coef[a] = self.alpha * math.sqrt(2.0 / n)
        if not self._fast:
            self._fast = bool((self._stats.n[self._active] > 0).all())

    def _index(self) -> np.ndarray:
        st = self._stats
        idx = self._mean + math.sqrt(math.log(max(st.total(), 1.0))) * self._coef
        if not self._fast:
            idx[(st.n <= 0) & self._active] = np.inf
        return idx

    def select(self, n: int = 1, context: Any = None) -> tuple[np.ndarray, np.ndarray]:
        if n == 1 and self._fast:                         # online fast path: every arm has rewards
            idx = self._mean + math.sqrt(math.log(self._stats.t)) * self._coef
            best = idx.argmax()
            if (idx == idx[best]).sum() == 1:
                return np.array([best], dtype=np.int64), _ONE.copy()
        return super().select(n, context)

    def _params(self) -> dict[str, Any]:
        return {"alpha": self.alpha, **self._base_params()}


class DiscountedUCB(UCB1):
    """Discounted UCB (Garivier & Moulines 2011): UCB1 over geometrically discounted counts and sums.

    Defaults (discount 0.995, alpha 0.5) were picked on abrupt-change simulations (tests/bandits).
    """

    def __init__(self, n_arms: int, discount: float = 0.995, alpha: float = 0.5,
                 seed: int | np.random.Generator | None = None) -> None:
        super().__init__(n_arms, alpha=alpha, discount=discount, seed=seed)

    def _params(self) -> dict[str, Any]:
        return {"discount": self._stats.discount, "alpha": self.alpha}


class SlidingWindowUCB(UCB1):
    """Sliding-window UCB (Garivier & Moulines 2011): UCB1 over the last ``window`` rewards.

    alpha 0.5 is close to the paper's sqrt(xi / 2) with xi = 0.6.
    """

    def __init__(self, n_arms: int, window: int = 500, alpha: float = 0.5,
                 seed: int | np.random.Generator | None = None) -> None:
        super().__init__(n_arms, alpha=alpha, window=window, seed=seed)

    def _params(self) -> dict[str, Any]:
        return {"window": self._stats.window, "alpha": self.alpha}


def _bernoulli_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    eps = 1e-15
    p = np.clip(p, eps, 1 - eps)
    q = np.clip(q, eps, 1 - eps)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


class KLUCB(_IndexPolicy):
    """KL-UCB for rewards in [0, 1] (Garivier & Cappé 2011): the largest q with n_a kl(mean_a, q) <= log t + c log log t.

    Args:
        n_arms: number of arms.
        c: weight of the ``log log t`` term (0 is the variant that works best in practice).
        discount / window: non-stationary variants, as for :class:`UCB1`.
        seed: int or Generator (tie breaking).
    """

    reward_range = (0.0, 1.0)

    def __init__(self, n_arms: int, c: float = 0.0, discount: float | None = None, window: int | None = None,
                 seed: int | np.random.Generator | None = None) -> None:
        super().__init__(n_arms, seed, discount, window)
        self.c = check_float("c", c, 0.0)

    def _index(self) -> np.ndarray:
        st = self._stats
        t = max(st.total(), 1.0)
        level = math.log(t) + (self.c * math.log(math.log(t)) if t > math.e else 0.0)
        played = st.n > 0
        idx = np.full(st.n.shape[0], np.inf)
        if not played.any():
            return idx
        n = st.n[played]
        mean = np.clip(st.s[played] / n, 0.0, 1.0)
        lo, hi = mean.copy(), np.ones_like(mean)
        bound = level / n
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            over = _bernoulli_kl(mean, mid) > bound
            hi = np.where(over, mid, hi)
            lo = np.where(over, lo, mid)
        idx[played] = lo
        return idx

    def _params(self) -> dict[str, Any]:
        return {"c": self.c, **self._base_params()}


class UCBV(_IndexPolicy):
    """UCB-V (Audibert, Munos & Szepesvári 2009): mean + sqrt(2 var zeta ln t / n) + 3 b zeta ln t / n.

    Args:
        n_arms: number of arms.
        b: width of the reward range.
        zeta: exploration constant (1.2 in the paper).
        discount / window: non-stationary variants, as for :class:`UCB1`.
        seed: int or Generator (tie breaking).
    """

    def __init__(self, n_arms: int, b: float = 1.0, zeta: float = 1.2, discount: float | None = None,
                 window: int | None = None, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(n_arms, seed, discount, window)
        self.b = check_float("b", b, 0.0, low_open=True)
        self.zeta = check_float("zeta", zeta, 0.0, low_open=True)

    def _index(self) -> np.ndarray:
        st = self._stats
        ns = np.maximum(st.n, _TINY)
        mean = st.s / ns
        var = np.maximum(st.ss / ns - mean * mean, 0.0)
        e = self.zeta * math.log(max(st.total(), 1.0))
        idx = mean + np.sqrt(2.0 * var * e / ns) + 3.0 * self.b * e / ns
        idx[st.n <= 0] = np.inf
        return idx

    def _params(self) -> dict[str, Any]:
        return {"b": self.b, "zeta": self.zeta, **self._base_params()}


class EpsilonGreedy(_ContextFree):
    """Epsilon-greedy with optional decay: explore uniformly with probability ``epsilon / (1 + decay * t)``.

    Args:
        n_arms: number of arms.
        epsilon: initial exploration probability.
        decay: ``epsilon_t = max(min_epsilon, epsilon / (1 + decay * t))`` with ``t`` rewards received.
        min_epsilon: floor of the decayed epsilon.
        initial_value: value of arms without rewards; ``None`` tries every arm first (value +inf).
        discount / window: non-stationary variants, as for :class:`UCB1`.
        seed: int or Generator.
    """

    def __init__(self, n_arms: int, epsilon: float = 0.1, decay: float = 0.0, min_epsilon: float = 0.0,
                 initial_value: float | None = None, discount: float | None = None, window: int | None = None,
                 seed: int | np.random.Generator | None = None) -> None:
        super().__init__(n_arms, seed, discount, window)
        self.epsilon = check_float("epsilon", epsilon, 0.0, 1.0)
        self.decay = check_float("decay", decay, 0.0)
        self.min_epsilon = check_float("min_epsilon", min_epsilon, 0.0, 1.0)
        self.initial_value = None if initial_value is None else check_float("initial_value", initial_value)

    @property
    def current_epsilon(self) -> float:
        """Exploration probability used by the next decision."""
        return max(self.min_epsilon, self.epsilon / (1.0 + self.decay * self._stats.t))

    def _probabilities(self, contexts: np.ndarray | None) -> np.ndarray:
        st = self._stats
        values = st.s / np.maximum(st.n, _TINY)
        values[st.n <= 0] = np.inf if self.initial_value is None else self.initial_value
        act = self._active
        if self._any_removed:
            values[~act] = -np.inf
        ties = values == values.max()
        eps = self.current_epsilon
        return (1.0 - eps) * ties / ties.sum() + eps * act / act.sum()

    def _select(self, n: int, contexts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        p = self._probabilities(None)
        arms = _sample_from(self.rng, p, n)
        return arms, p[arms]

    def _params(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "decay": self.decay, "min_epsilon": self.min_epsilon,
                "initial_value": self.initial_value, **self._base_params()}


class ThompsonSampling(_ContextFree):
    """Thompson sampling with a Beta-Bernoulli or a Gaussian model.

    ``likelihood="bernoulli"``: Beta(prior) posterior; rewards must lie in [0, 1] (fractional rewards update
    alpha += r, beta += 1 - r). ``likelihood="gaussian"``: N((prior_strength * prior_mean + sum) / (prior_strength
    + n), sigma^2 / (prior_strength + n)) posterior on each arm's mean, any finite reward.

    Propensities are Monte-Carlo estimates: for a batch, the share of ``n + propensity_samples`` posterior draws
    (the ``n`` decision draws included) in which the arm wins; for one decision at a time (stationary model),
    ``(1 + wins) / (1 + propensity_samples)`` over a set of ``propensity_samples`` posterior draws per arm that is
    kept across decisions and redrawn for an arm whenever its posterior changes (estimates of consecutive
    decisions share draws). ``propensity_samples=0`` skips the estimate (propensities are NaN) for maximum speed.

    Args:
        n_arms: number of arms.
        likelihood: ``"bernoulli"`` or ``"gaussian"``.
        prior: Beta prior ``(alpha, beta)`` (Bernoulli).
        sigma: reward noise standard deviation (Gaussian).
        prior_mean, prior_strength: Gaussian prior mean and its weight in pseudo-observations.
        propensity_samples: extra posterior draws per ``select`` used to estimate propensities.
        discount / window: discounted / sliding-window Thompson sampling.
        seed: int or Generator.
    """

    def __init__(self, n_arms: int, likelihood: str = "bernoulli", prior: tuple[float, float] = (1.0, 1.0),
                 sigma: float = 1.0, prior_mean: float = 0.0, prior_strength: float = 1.0,
                 propensity_samples: int = 100, discount: float | None = None, window: int | None = None,
                 seed: int | np.random.Generator | None = None) -> None:
        super().__init__(n_arms, seed, discount, window)
        if likelihood not in ("bernoulli", "gaussian"):
            raise BanditInputError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
        self.likelihood = likelihood
        if len(prior) != 2:
            raise BanditInputError(f"prior must be (alpha, beta), got {prior!r}")
        self.prior = (check_float("prior[0]", prior[0], 0.0, low_open=True),
                      check_float("prior[1]", prior[1], 0.0, low_open=True))
        self.sigma = check_float("sigma", sigma, 0.0, low_open=True)
        self.prior_mean = check_float("prior_mean", prior_mean)
        self.prior_strength = check_float("prior_strength", prior_strength, 0.0, low_open=True)
        self.propensity_samples = check_positive_int("propensity_samples", propensity_samples, minimum=0)
        self.reward_range = (0.0, 1.0) if likelihood == "bernoulli" else None
        self._rebuild()

    def _rebuild(self) -> None:
        st = self._stats
        if self.likelihood == "bernoulli":
            self._pa = self.prior[0] + st.s
            self._pb = self.prior[1] + np.maximum(st.n - st.s, 0.0)
        else:
            prec = self.prior_strength + st.n
            self._pm = (self.prior_strength * self.prior_mean + st.s) / prec
            self._psd = self.sigma / np.sqrt(prec)
        # pre-drawn posterior samples for one-at-a-time decisions: (K, _BLOCK), next column _ptr; an arm whose
        # posterior changed is redrawn (from column _ptr on) before its next use
        self._blk: np.ndarray | None = None
        self._ptr = 0
        self._dirty: set[int] = set()
        # Monte-Carlo propensity samples (K, propensity_samples) kept across one-at-a-time decisions; only the
        # rows of arms whose posterior changed are redrawn
        self._mc: np.ndarray | None = None
        self._mc_dirty: set[int] = set()

    def _refresh_arm(self, a: int) -> None:
        st = self._stats
        if self.likelihood == "bernoulli":
            self._pa[a] = self.prior[0] + st.s[a]
            self._pb[a] = self.prior[1] + max(st.n[a] - st.s[a], 0.0)
        else:
            prec = self.prior_strength + st.n[a]
            self._pm[a] = (self.prior_strength * self.prior_mean + st.s[a]) / prec
            self._psd[a] = self.sigma / math.sqrt(prec)
        if self._blk is not None:
            self._dirty.add(a)
        if self._mc is not None:
            self._mc_dirty.add(a)

    def _arm_samples(self, a: int, m: int) -> np.ndarray:
        if self.likelihood == "bernoulli":
            return self.rng.beta(float(self._pa[a]), float(self._pb[a]), size=m)
        return self._pm[a] + self._psd[a] * self.rng.standard_normal(m)

    def _mc_winners(self) -> np.ndarray:
        """Winning arm of each of the ``propensity_samples`` Monte-Carlo posterior draws (kept up to date)."""
        s = self.propensity_samples
        if self._mc is None:
            k = self._stats.n.shape[0]
            if self.likelihood == "bernoulli":
                self._mc = self.rng.beta(self._pa[:, None], self._pb[:, None], size=(k, s))
            else:
                self._mc = self._pm[:, None] + self._psd[:, None] * self.rng.standard_normal((k, s))
            self._mc_dirty.clear()
        elif self._mc_dirty:
            for a in sorted(self._mc_dirty):
                self._mc[a] = self._arm_samples(a, s)
            self._mc_dirty.clear()
        mc = self._mc
        if self._any_removed:
            mc = np.where(self._active[:, None], mc, -np.inf)
        return mc.argmax(axis=0)

    def _one_draw(self) -> np.ndarray:
        """One posterior sample per arm, served from pre-drawn blocks (same distribution as fresh draws: every
        sample is used once and was drawn from the arm's current posterior)."""
        blk, ptr = self._blk, self._ptr
        if blk is None or ptr >= _BLOCK:
            k = self._pa.shape[0] if self.likelihood == "bernoulli" else self._pm.shape[0]
            if self.likelihood == "bernoulli":
                blk = self.rng.beta(self._pa[:, None], self._pb[:, None], size=(k, _BLOCK))
            else:
                blk = self._pm[:, None] + self._psd[:, None] * self.rng.standard_normal((k, _BLOCK))
            self._blk, ptr = blk, 0
            self._dirty.clear()
        elif self._dirty:
            for a in sorted(self._dirty):
                blk[a, ptr:] = self._arm_samples(a, _BLOCK - ptr)
            self._dirty.clear()
        self._ptr = ptr + 1
        return blk[:, ptr]

    def _draw(self, m: int | None) -> np.ndarray:
        """Posterior draws, shape (m, K) (or (K,) when m is None); removed arms get -inf."""
        size = (self._pa.shape[0] if self.likelihood == "bernoulli" else self._pm.shape[0]) if m is None else (
            m, self._k)
        if self.likelihood == "bernoulli":
            x = self.rng.beta(self._pa, self._pb, size=size)
        else:
            x = self._pm + self._psd * self.rng.standard_normal(size)
        if self._any_removed:
            x[..., ~self._active] = -np.inf
        return x

    def _select(self, n: int, contexts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        s = self.propensity_samples
        if n == 1 and self._stats.discount is None and self._stats.window is None:
            x = self._one_draw()
            if self._any_removed:
                x = np.where(self._active, x, -np.inf)
            arm = int(x.argmax())
            if s == 0:
                return np.array([arm], dtype=np.int64), np.full(1, np.nan)
            wins = int((self._mc_winners() == arm).sum())
            return np.array([arm], dtype=np.int64), np.array([(wins + 1.0) / (s + 1.0)])
        if s == 0:
            if n == 1:
                return np.array([self._draw(None).argmax()], dtype=np.int64), np.full(1, np.nan)
            return self._draw(n).argmax(axis=1), np.full(n, np.nan)
        winners = self._draw(n + s).argmax(axis=1)
        arms = winners[:n]
        counts = np.bincount(winners, minlength=self._k)
        return arms, counts[arms] / float(n + s)

    def _probabilities(self, contexts: np.ndarray | None, n_samples: int = 20000) -> np.ndarray:
        winners = self._draw(n_samples).argmax(axis=1)
        return np.bincount(winners, minlength=self._k) / float(n_samples)

    def posterior_means(self) -> np.ndarray:
        """Posterior mean of every arm's expected reward."""
        st = self._stats
        if self.likelihood == "bernoulli":
            return (self.prior[0] + st.s) / (self.prior[0] + self.prior[1] + st.n)
        return (self.prior_strength * self.prior_mean + st.s) / (self.prior_strength + st.n)

    def _get_state(self) -> dict[str, Any]:
        d = super()._get_state()
        if self._blk is not None:
            d.update(block=self._blk.tolist(), ptr=self._ptr, dirty=sorted(self._dirty))
        if self._mc is not None:
            d.update(mc=self._mc.tolist(), mc_dirty=sorted(self._mc_dirty))
        return d

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        if "block" in state:
            self._blk = np.asarray(state["block"], dtype=float)
            self._ptr = int(state["ptr"])
            self._dirty = {int(a) for a in state["dirty"]}
        if "mc" in state:
            self._mc = np.asarray(state["mc"], dtype=float).reshape(-1, self.propensity_samples)
            self._mc_dirty = {int(a) for a in state["mc_dirty"]}

    def _params(self) -> dict[str, Any]:
        return {"likelihood": self.likelihood, "prior": list(self.prior), "sigma": self.sigma,
                "prior_mean": self.prior_mean, "prior_strength": self.prior_strength,
                "propensity_samples": self.propensity_samples, **self._base_params()}


class DiscountedThompsonSampling(ThompsonSampling):
    """Discounted Thompson sampling (Raj & Kalyani 2017): posterior statistics decay by ``discount`` per reward."""

    def __init__(self, n_arms: int, discount: float = 0.99, likelihood: str = "bernoulli",
                 prior: tuple[float, float] = (1.0, 1.0), sigma: float = 1.0, prior_mean: float = 0.0,
                 prior_strength: float = 1.0, propensity_samples: int = 100,
                 seed: int | np.random.Generator | None = None) -> None:
        super().__init__(n_arms, likelihood=likelihood, prior=prior, sigma=sigma, prior_mean=prior_mean,
                         prior_strength=prior_strength, propensity_samples=propensity_samples,
                         discount=discount, seed=seed)

    def _params(self) -> dict[str, Any]:
        d = super()._params()
        d.pop("window")
        return d


class SlidingWindowThompsonSampling(ThompsonSampling):
    """Sliding-window Thompson sampling: the posterior uses only the last ``window`` rewards."""

    def __init__(self, n_arms: int, window: int = 500, likelihood: str = "bernoulli",
                 prior: tuple[float, float] = (1.0, 1.0), sigma: float = 1.0, prior_mean: float = 0.0,
                 prior_strength: float = 1.0, propensity_samples: int = 100,
                 seed: int | np.random.Generator | None = None) -> None:
        super().__init__(n_arms, likelihood=likelihood, prior=prior, sigma=sigma, prior_mean=prior_mean,
                         prior_strength=prior_strength, propensity_samples=propensity_samples,
                         window=window, seed=seed)

    def _params(self) -> dict[str, Any]:
        d = super()._params()
        d.pop("discount")
        return d


class EXP3(Policy):
    """EXP3 (Auer et al. 2002) for adversarial rewards in [0, 1].

    p = (1 - gamma) * softmax(log_weights) + gamma / K; the chosen arm's log-weight grows by
    gamma * (reward / p_arm) / K. Pass the decision-time ``propensities`` to :meth:`update` for delayed rewards
    (otherwise the current probabilities are used, and rewards of removed arms are skipped).

    Args:
        n_arms: number of arms.
        gamma: exploration share in (0, 1].
        seed: int or Generator.
    """

    reward_range = (0.0, 1.0)

    def __init__(self, n_arms: int, gamma: float = 0.1, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(n_arms, seed)
        self.gamma = check_float("gamma", gamma, 0.0, 1.0, low_open=True)
        self._logw = np.zeros(self._k)

    def _probabilities(self, contexts: np.ndarray | None) -> np.ndarray:
        act = self._active
        lw = np.where(act, self._logw, -np.inf)
        w = np.exp(lw - lw.max())
        k = act.sum()
        return (1.0 - self.gamma) * w / w.sum() + self.gamma * act / k

    def _select(self, n: int, contexts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        p = self._probabilities(None)
        arms = _sample_from(self.rng, p, n)
        return arms, p[arms]

    def _update(self, arms: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None,
                propensities: np.ndarray | None) -> None:
        p = self._probabilities(None)[arms] if propensities is None else propensities
        k = max(int(self._active.sum()), 1)
        # a removed arm has probability 0 now: without its decision-time propensity the reward is skipped
        gain = np.divide(self.gamma * rewards, p * k, out=np.zeros_like(rewards), where=p > 0)
        self._logw += np.bincount(arms, weights=gain, minlength=self._k)
        self._logw -= self._logw[self._active].max()  # keep the numbers small; probabilities are unchanged

    def _grow(self) -> None:
        top = float(self._logw[self._active].max()) if self._active.any() else 0.0
        self._logw = np.append(self._logw, top)

    def _params(self) -> dict[str, Any]:
        return {"gamma": self.gamma}

    def _get_state(self) -> dict[str, Any]:
        return {"logw": self._logw.tolist()}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._logw = np.asarray(state["logw"], dtype=float)
