"""Simulation harness: environments, a runner that measures regret, regret curves and their plot.

Environments hand out rounds: contexts (or None), the reward every arm would get, and every arm's expected
reward (for pseudo-regret). Adaptive environments also ``observe`` the arms played.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from banditarena.bandits._common import BanditInputError, check_float, check_positive_int, make_rng
from banditarena.bandits.base import Policy
from banditarena.bandits.decisions import DecisionLog


@dataclass
class Round:
    """A batch of rounds: ``contexts`` (n, dim) or None, realised ``rewards`` (n, K), expected ``means`` (n, K)."""

    contexts: np.ndarray | None
    rewards: np.ndarray
    means: np.ndarray


class Environment(ABC):
    """A bandit problem. ``sample(n)`` returns the next ``n`` rounds; ``observe(arms)`` tells adaptive
    environments what was played."""

    n_arms: int
    dim: int | None = None

    @abstractmethod
    def sample(self, n: int) -> Round:
        """The next ``n`` rounds."""

    def observe(self, arms: np.ndarray) -> None:
        """Arms the learner played in the last rounds (used by adaptive adversaries)."""
        return


def _means_arg(means: Any) -> np.ndarray:
    m = np.asarray(means, dtype=float)
    if m.ndim != 1 or m.shape[0] < 2 or not np.isfinite(m).all():
        raise BanditInputError(f"means must be a 1-d array of at least 2 finite values, got {means!r}")
    return m


class BernoulliEnv(Environment):
    """Stationary Bernoulli arms with success probabilities ``means``."""

    def __init__(self, means: Any, seed: int | np.random.Generator | None = None) -> None:
        self.means = _means_arg(means)
        if ((self.means < 0) | (self.means > 1)).any():
            raise BanditInputError("BernoulliEnv: means must lie in [0, 1]")
        self.n_arms = self.means.shape[0]
        self.rng = make_rng(seed)

    def sample(self, n: int) -> Round:
        mu = np.broadcast_to(self.means, (n, self.n_arms))
        return Round(None, (self.rng.random((n, self.n_arms)) < mu).astype(float), mu)


class GaussianEnv(Environment):
    """Stationary Gaussian arms: reward ~ N(means[a], sigma^2)."""

    def __init__(self, means: Any, sigma: float = 1.0, seed: int | np.random.Generator | None = None) -> None:
        self.means = _means_arg(means)
        self.sigma = check_float("sigma", sigma, 0.0)
        self.n_arms = self.means.shape[0]
        self.rng = make_rng(seed)

    def sample(self, n: int) -> Round:
        mu = np.broadcast_to(self.means, (n, self.n_arms))
        return Round(None, mu + self.sigma * self.rng.standard_normal((n, self.n_arms)), mu)


class _TimeVarying(Environment):
    noise: str
    sigma: float
    rng: np.random.Generator
    t: int  # rounds sampled so far

    @abstractmethod
    def _means_at(self, t: np.ndarray) -> np.ndarray:
        """Expected rewards (len(t), K) at rounds ``t``."""

    def _draw(self, mu: np.ndarray) -> np.ndarray:
        if self.noise == "bernoulli":
            return (self.rng.random(mu.shape) < mu).astype(float)
        return mu + self.sigma * self.rng.standard_normal(mu.shape)

    def sample(self, n: int) -> Round:
        t = self.t + np.arange(n)
        self.t += n
        mu = self._means_at(t)
        return Round(None, self._draw(mu), mu)


class PiecewiseStationaryEnv(_TimeVarying):
    """Abrupt changes: ``means[s]`` holds during segment ``s``; segments last ``segment_length`` rounds (the last
    one forever).

    Args:
        means: shape (n_segments, n_arms).
        segment_length: rounds per segment.
        noise: ``"bernoulli"`` or ``"gaussian"``.
        sigma: Gaussian noise sd.
    """

    def __init__(self, means: Any, segment_length: int, noise: str = "bernoulli", sigma: float = 1.0,
                 seed: int | np.random.Generator | None = None) -> None:
        m = np.asarray(means, dtype=float)
        if m.ndim != 2 or m.shape[1] < 2:
            raise BanditInputError("PiecewiseStationaryEnv: means must have shape (n_segments, n_arms)")
        if noise not in ("bernoulli", "gaussian"):
            raise BanditInputError(f"noise must be 'bernoulli' or 'gaussian', got {noise!r}")
        self.segments = m
        self.segment_length = check_positive_int("segment_length", segment_length)
        self.noise, self.sigma = noise, check_float("sigma", sigma, 0.0)
        self.n_arms = m.shape[1]
        self.rng = make_rng(seed)
        self.t = 0

    def _means_at(self, t: np.ndarray) -> np.ndarray:
        seg = np.minimum(t // self.segment_length, self.segments.shape[0] - 1)
        return self.segments[seg]


class DriftingEnv(_TimeVarying):
    """Smooth drift: ``mean_a(t) = center + amplitude * sin(2 pi t / period + phase_a)`` with evenly spread phases."""

    def __init__(self, n_arms: int, period: int = 2000, amplitude: float = 0.3, center: float = 0.5,
                 noise: str = "bernoulli", sigma: float = 1.0, seed: int | np.random.Generator | None = None) -> None:
        self.n_arms = check_positive_int("n_arms", n_arms, minimum=2)
        self.period = check_positive_int("period", period)
        self.amplitude = check_float("amplitude", amplitude, 0.0)
        self.center = check_float("center", center)
        if noise not in ("bernoulli", "gaussian"):
            raise BanditInputError(f"noise must be 'bernoulli' or 'gaussian', got {noise!r}")
        if noise == "bernoulli" and not (0 <= center - amplitude and center + amplitude <= 1):
            raise BanditInputError("DriftingEnv: center +- amplitude must stay in [0, 1] for Bernoulli noise")
        self.noise, self.sigma = noise, check_float("sigma", sigma, 0.0)
        self.phases = 2 * np.pi * np.arange(self.n_arms) / self.n_arms
        self.rng = make_rng(seed)
        self.t = 0

    def _means_at(self, t: np.ndarray) -> np.ndarray:
        return self.center + self.amplitude * np.sin(2 * np.pi * t[:, None] / self.period + self.phases)


class AdversarialEnv(Environment):
    """An adaptive opponent: each arm's win probability drops with the share of recent plays it received
    (``base - penalty * share`` over the last ``memory`` plays), so any arm the learner leans on gets worse.

    Regret is measured against the best fixed arm in hindsight (see :class:`SimulationResult`).
    """

    def __init__(self, base: Any, penalty: float = 0.6, memory: int = 200,
                 seed: int | np.random.Generator | None = None) -> None:
        self.base = _means_arg(base)
        self.penalty = check_float("penalty", penalty, 0.0)
        self.memory = check_positive_int("memory", memory)
        self.n_arms = self.base.shape[0]
        self.rng = make_rng(seed)
        self._recent = np.full(self.memory, -1, dtype=np.int64)
        self._pos = 0

    def sample(self, n: int) -> Round:
        played = self._recent[self._recent >= 0]
        share = np.bincount(played, minlength=self.n_arms) / max(played.size, 1)
        mu = np.clip(self.base - self.penalty * share, 0.0, 1.0)
        mu = np.broadcast_to(mu, (n, self.n_arms))
        return Round(None, (self.rng.random(mu.shape) < mu).astype(float), mu)

    def observe(self, arms: np.ndarray) -> None:
        for a in np.asarray(arms).reshape(-1)[-self.memory:]:
            self._recent[self._pos] = int(a)
            self._pos = (self._pos + 1) % self.memory


class LinearEnv(Environment):
    """Synthetic linear contextual problem: x ~ N(0, I / dim), reward = x . theta_a + N(0, noise^2), with
    ``theta_a ~ N(0, I)``."""

    dim: int

    def __init__(self, n_arms: int, dim: int, noise: float = 0.1, seed: int | np.random.Generator | None = None) -> None:
        self.n_arms = check_positive_int("n_arms", n_arms, minimum=2)
        self.dim = check_positive_int("dim", dim)
        self.noise = check_float("noise", noise, 0.0)
        self.rng = make_rng(seed)
        self.theta = self.rng.standard_normal((self.n_arms, self.dim))

    def sample(self, n: int) -> Round:
        x = self.rng.standard_normal((n, self.dim)) / np.sqrt(self.dim)
        mu = x @ self.theta.T
        return Round(x, mu + self.noise * self.rng.standard_normal(mu.shape), mu)


class SupervisedEnv(Environment):
    """Supervised-to-bandit conversion: each round shows one example's features; arms are the classes; the reward
    is 1 for the true class, 0 otherwise. Examples are visited in random order, reshuffled at every pass."""

    def __init__(self, features: Any, labels: Any, seed: int | np.random.Generator | None = None) -> None:
        x = np.asarray(features, dtype=float)
        y = np.asarray(labels).reshape(-1)
        if x.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise BanditInputError("SupervisedEnv: features must be (n, dim) with one label per row")
        self.classes, self.y = np.unique(y, return_inverse=True)
        self.x = x
        self.n_arms = self.classes.shape[0]
        self.dim = x.shape[1]
        self.rng = make_rng(seed)
        self._order = self.rng.permutation(x.shape[0])
        self._pos = 0

    @classmethod
    def digits(cls, seed: int | np.random.Generator | None = None) -> SupervisedEnv:
        """scikit-learn's bundled 8x8 digits (1797 images, 64 pixel features scaled to [0, 1], 10 arms)."""
        from sklearn.datasets import load_digits

        data = load_digits()
        return cls(data.data / 16.0, data.target, seed=seed)

    def sample(self, n: int) -> Round:
        idx = np.empty(n, dtype=np.int64)
        filled = 0
        while filled < n:
            take = min(n - filled, self._order.shape[0] - self._pos)
            idx[filled:filled + take] = self._order[self._pos:self._pos + take]
            filled += take
            self._pos += take
            if self._pos == self._order.shape[0]:
                self._order = self.rng.permutation(self._order.shape[0])
                self._pos = 0
        onehot = np.zeros((n, self.n_arms))
        onehot[np.arange(n), self.y[idx]] = 1.0
        return Round(self.x[idx], onehot, onehot)


@dataclass
class SimulationResult:
    """Outcome of :func:`simulate`.

    ``regret`` is the per-round pseudo-regret (best expected reward minus the chosen arm's);
    ``hindsight_regret`` the regret against the best fixed arm in hindsight (realised rewards);
    ``seconds`` the wall time spent inside ``select`` and ``update``.
    """

    arms: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray
    regret: np.ndarray
    hindsight_regret: float
    seconds: float

    @property
    def cumulative_regret(self) -> np.ndarray:
        """Cumulative pseudo-regret after each round."""
        return np.cumsum(self.regret)

    @property
    def decisions_per_second(self) -> float:
        """Throughput of select + update."""
        return self.arms.shape[0] / max(self.seconds, 1e-12)


def simulate(policy: Policy, env: Environment, horizon: int, batch_size: int = 1,
             log: DecisionLog | None = None) -> SimulationResult:
    """Run ``policy`` on ``env`` for ``horizon`` rounds, ``batch_size`` decisions per select/update call.

    Args:
        policy: any policy of this package.
        env: the environment.
        horizon: total number of decisions.
        batch_size: decisions per ``select`` call (rewards are fed back after each batch).
        log: optional :class:`DecisionLog` that receives every decision and its reward.
    """
    horizon = check_positive_int("horizon", horizon)
    batch_size = check_positive_int("batch_size", batch_size)
    if env.n_arms != policy.n_arms:
        raise BanditInputError(f"simulate: policy has {policy.n_arms} arms but the environment has {env.n_arms}")
    arms = np.empty(horizon, dtype=np.int64)
    props = np.empty(horizon)
    rewards = np.empty(horizon)
    regret = np.empty(horizon)
    table_sum = np.zeros(env.n_arms)
    spent = 0.0
    clock = time.perf_counter
    for lo in range(0, horizon, batch_size):
        n = min(batch_size, horizon - lo)
        rd = env.sample(n)
        t0 = clock()
        a, p = policy.select(n, rd.contexts)
        t1 = clock()
        rows = np.arange(n)
        r = rd.rewards[rows, a]
        t2 = clock()
        policy.update(a, r, rd.contexts)
        spent += (t1 - t0) + (clock() - t2)
        env.observe(a)
        sl = slice(lo, lo + n)
        arms[sl], props[sl], rewards[sl] = a, p, r
        regret[sl] = rd.means.max(axis=1) - rd.means[rows, a]
        table_sum += rd.rewards.sum(axis=0)
        if log is not None:
            steps = log.record(a, p, rd.contexts)
            log.set_rewards(steps, r)
    return SimulationResult(arms, rewards, props, regret, float(table_sum.max() - rewards.sum()), spent)


@dataclass
class RegretCurve:
    """Mean cumulative regret over runs with a 95% normal band."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    final: np.ndarray  # final cumulative regret of each run

    @property
    def steps(self) -> np.ndarray:
        """Round numbers 1..horizon."""
        return np.arange(1, self.mean.shape[0] + 1)


def regret_curves(policies: dict[str, Callable[[int], Policy]], env_factory: Callable[[int], Environment],
                  horizon: int, n_runs: int = 5, batch_size: int = 1, seed: int = 0) -> dict[str, RegretCurve]:
    """Cumulative-regret curves: every policy factory (``seed -> Policy``) runs ``n_runs`` times on environments
    from ``env_factory(seed)``; run ``i`` of every policy sees the same environment seed."""
    n_runs = check_positive_int("n_runs", n_runs)
    out: dict[str, RegretCurve] = {}
    for name, make in policies.items():
        runs = np.array([simulate(make(seed + 1000 + i), env_factory(seed + i), horizon, batch_size)
                         .cumulative_regret for i in range(n_runs)])
        mean = runs.mean(axis=0)
        half = 1.96 * (runs.std(axis=0, ddof=1) / np.sqrt(n_runs) if n_runs > 1 else np.zeros_like(mean))
        out[name] = RegretCurve(mean, mean - half, mean + half, runs[:, -1])
    return out


def plot_regret(curves: dict[str, RegretCurve], path: str | None = None, title: str = "Cumulative regret",
                ax: Any = None) -> Any:
    """Plot regret curves (mean and band); saves to ``path`` when given. Returns the matplotlib Figure."""
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 4.0))
        ax = fig.subplots()
    else:
        fig = ax.figure
    for name, c in curves.items():
        line, = ax.plot(c.steps, c.mean, label=name)
        ax.fill_between(c.steps, c.low, c.high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("round")
    ax.set_ylabel("cumulative regret")
    ax.set_title(title)
    ax.legend()
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
