"""Reward helpers: running-quantile normalisation (LASeR) and learning progress (curricula)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from banditarena.bandits._common import BanditInputError, check_float, check_positive_int


class QuantileNormalizer:
    """Map rewards to [0, 1] by the running ``low``..``high`` quantiles of the rewards seen so far.

    ``(x - q_low) / (q_high - q_low)`` clipped to [0, 1] (LASeR uses the 20th and 80th percentiles). When the two
    quantiles coincide, values above map to 1, below to 0 and equal to 0.5; with no history everything is 0.5.

    Args:
        low, high: quantile levels, ``0 <= low < high <= 1``.
        window: keep only the last ``window`` rewards (``None`` keeps all).
    """

    def __init__(self, low: float = 0.2, high: float = 0.8, window: int | None = None) -> None:
        self.low = check_float("low", low, 0.0, 1.0)
        self.high = check_float("high", high, 0.0, 1.0)
        if not self.low < self.high:
            raise BanditInputError(f"low ({low}) must be smaller than high ({high})")
        self.window = None if window is None else check_positive_int("window", window)
        self._buf = np.zeros(self.window or 64)
        self._count = 0  # values seen so far
        self._cache: tuple[float, float] | None = None

    def __len__(self) -> int:
        return self._count if self.window is None else min(self._count, self.window)

    def _values(self) -> np.ndarray:
        return self._buf[: len(self)]

    @staticmethod
    def _as_array(values: Any) -> np.ndarray:
        v = np.asarray(values, dtype=float).reshape(-1)
        if not np.isfinite(v).all():
            raise BanditInputError(f"QuantileNormalizer: value {v[~np.isfinite(v)][0]} is not finite")
        return v

    def update(self, values: Any) -> QuantileNormalizer:
        """Add rewards to the history."""
        v = self._as_array(values)
        if self.window is None:
            need = self._count + v.shape[0]
            if need > self._buf.shape[0]:
                grown = np.zeros(max(need, 2 * self._buf.shape[0]))
                grown[: self._count] = self._buf[: self._count]
                self._buf = grown
            self._buf[self._count:need] = v
        else:
            for start in range(0, v.shape[0], self.window):
                chunk = v[start:start + self.window]
                idx = (self._count + start + np.arange(chunk.shape[0])) % self.window
                self._buf[idx] = chunk
        self._count += v.shape[0]
        self._cache = None
        return self

    def quantiles(self) -> tuple[float, float]:
        """Current (q_low, q_high); NaNs when no reward was seen."""
        if self._cache is None:
            vals = self._values()
            if vals.size == 0:
                return (math.nan, math.nan)
            ql, qh = np.quantile(vals, [self.low, self.high])
            self._cache = (float(ql), float(qh))
        return self._cache

    def transform(self, values: Any) -> np.ndarray:
        """Normalise without updating the history."""
        v = self._as_array(values)
        ql, qh = self.quantiles()
        if math.isnan(ql):
            return np.full(v.shape, 0.5)
        if qh - ql <= 1e-12 * max(1.0, abs(ql)):
            return np.where(v > qh, 1.0, np.where(v < ql, 0.0, 0.5))
        return np.clip((v - ql) / (qh - ql), 0.0, 1.0)

    def __call__(self, values: Any) -> np.ndarray:
        """Add ``values`` to the history, then normalise them (the LASeR order)."""
        return self.update(values).transform(values)

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot."""
        return {"low": self.low, "high": self.high, "window": self.window, "count": self._count,
                "buffer": self._buf[: len(self) if self.window is None else self.window].tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.__init__(state["low"], state["high"], state["window"])  # type: ignore[misc]
        buf = np.asarray(state["buffer"], dtype=float)
        if self.window is None:
            self._buf = np.concatenate([buf, np.zeros(max(64, buf.shape[0]))])
        else:
            self._buf[: buf.shape[0]] = buf
        self._count = int(state["count"])


class LearningProgress:
    """Learning progress per arm: success rate over the last ``window`` outcomes minus the rate over the
    ``window`` outcomes before them (with fewer outcomes, the history is split in two halves).

    Feed it (arm, outcome) pairs; use ``progress()`` (absolute value by default) as the bandit reward that steers
    a curriculum toward the tasks where the learner is changing fastest.

    Args:
        n_arms: number of arms (tasks).
        window: outcomes per half.
        absolute: report ``|change|`` (forgetting counts as progress too), else the signed change.
    """

    def __init__(self, n_arms: int, window: int = 20, absolute: bool = True) -> None:
        self._k = check_positive_int("n_arms", n_arms)
        self.window = check_positive_int("window", window)
        self.absolute = bool(absolute)
        self._buf = np.zeros((self._k, 2 * self.window))
        self._count = np.zeros(self._k, dtype=np.int64)

    @property
    def n_arms(self) -> int:
        """Number of arms tracked."""
        return self._k

    def add_arm(self) -> int:
        """Track a new arm; returns its index."""
        self._buf = np.vstack([self._buf, np.zeros((1, 2 * self.window))])
        self._count = np.append(self._count, 0)
        self._k += 1
        return self._k - 1

    def update(self, arms: Any, outcomes: Any) -> np.ndarray:
        """Record outcomes (success in [0, 1]) and return each row's arm progress right after it was added."""
        a = np.asarray(arms).reshape(-1)
        o = np.asarray(outcomes, dtype=float).reshape(-1)
        if a.shape != o.shape:
            raise BanditInputError(f"LearningProgress.update: {a.shape[0]} arms but {o.shape[0]} outcomes")
        if a.size and (a.dtype.kind not in "iu" or a.min() < 0 or a.max() >= self._k):
            raise BanditInputError(f"LearningProgress.update: arms must be integers in 0..{self._k - 1}")
        bad = ~(np.isfinite(o) & (o >= 0) & (o <= 1))
        if bad.any():
            raise BanditInputError(
                f"LearningProgress.update: outcome {o[bad][0]} at index {int(np.flatnonzero(bad)[0])} is not in [0, 1]")
        cap = 2 * self.window
        out = np.empty(a.shape[0])
        for i in range(a.shape[0]):
            arm = int(a[i])
            self._buf[arm, self._count[arm] % cap] = o[i]
            self._count[arm] += 1
            out[i] = self._arm_progress(arm)
        return out

    def _arm_progress(self, arm: int) -> float:
        cap = 2 * self.window
        c = int(self._count[arm])
        m = min(c, cap)
        if m < 2:
            return 0.0
        order = (c - m + np.arange(m)) % cap                   # oldest .. newest
        hist = self._buf[arm, order]
        recent_n = min(self.window, m - m // 2)
        change = float(hist[m - recent_n:].mean() - hist[: m - recent_n][-self.window:].mean())
        return abs(change) if self.absolute else change

    def progress(self) -> np.ndarray:
        """Current progress of every arm, shape ``(n_arms,)``."""
        return np.array([self._arm_progress(i) for i in range(self._k)])

    def success_rate(self) -> np.ndarray:
        """Success rate of every arm over its last ``window`` outcomes (NaN before any outcome)."""
        out = np.full(self._k, np.nan)
        cap = 2 * self.window
        for arm in range(self._k):
            c = int(self._count[arm])
            if c:
                m = min(c, self.window)
                out[arm] = self._buf[arm, (c - m + np.arange(m)) % cap].mean()
        return out

    def state_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot."""
        return {"n_arms": self._k, "window": self.window, "absolute": self.absolute,
                "buffer": self._buf.tolist(), "count": self._count.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.__init__(state["n_arms"], state["window"], state["absolute"])  # type: ignore[misc]
        self._buf = np.asarray(state["buffer"], dtype=float).reshape(self._k, 2 * self.window)
        self._count = np.asarray(state["count"], dtype=np.int64)
