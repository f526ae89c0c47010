"""Baseline policies with the bandit API: uniform random, one fixed arm, round-robin.

They make the baselines of every experiment (a uniform battle allocation, "always this reward model",
LASeR's random and sequential selectors) ordinary policies: the same ``select``/``update``, logged
propensities and JSON state as the learning ones, so a harness never special-cases them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from banditarena.bandits._common import BanditInputError
from banditarena.bandits.base import Policy


class _Stateless(Policy):
    """Ignores rewards; context-free."""

    def _update(self, arms: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None,
                propensities: np.ndarray | None) -> None:
        return None

    def _grow(self) -> None:
        return None

    def _get_state(self) -> dict[str, Any]:
        return {}

    def _set_state(self, state: dict[str, Any]) -> None:
        return None


class Uniform(_Stateless):
    """Every active arm with probability 1/k, independently for each decision (the allocation baseline)."""

    def _params(self) -> dict[str, Any]:
        return {}

    def _select(self, n: int, contexts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if not self._any_removed:
            return self.rng.integers(0, self._k, size=n).astype(np.int64), np.full(n, 1.0 / self._k)
        act = self.active_arms
        return act[self.rng.integers(0, act.shape[0], size=n)].astype(np.int64), np.full(n, 1.0 / act.shape[0])

    def _probabilities(self, contexts: np.ndarray | None) -> np.ndarray:
        return self._active / self._active.sum()


class Fixed(_Stateless):
    """Always ``arm`` (e.g. "always this reward model"); propensity 1."""

    def __init__(self, n_arms: int, arm: int = 0, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(n_arms, seed)
        if isinstance(arm, bool) or not isinstance(arm, (int, np.integer)) or not 0 <= int(arm) < self._k:
            raise BanditInputError(f"Fixed: arm {arm!r} is not one of 0..{self._k - 1}")
        self.arm = int(arm)

    def remove_arm(self, arm: int) -> None:
        if int(arm) == self.arm:
            raise BanditInputError(f"remove_arm: arm {arm} is the arm a Fixed policy always picks")
        super().remove_arm(arm)

    def _params(self) -> dict[str, Any]:
        return {"arm": self.arm}

    def _select(self, n: int, contexts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        return np.full(n, self.arm, dtype=np.int64), np.ones(n)

    def _probabilities(self, contexts: np.ndarray | None) -> np.ndarray:
        p = np.zeros(self._k)
        p[self.arm] = 1.0
        return p


class Sequential(_Stateless):
    """Round-robin over the active arms: decision t picks arm t mod k (propensity 1: it is deterministic)."""

    def __init__(self, n_arms: int, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(n_arms, seed)
        self.t = 0

    def _params(self) -> dict[str, Any]:
        return {}

    def _select(self, n: int, contexts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        act = self.active_arms
        arms = act[(self.t + np.arange(n)) % act.shape[0]].astype(np.int64)
        self.t += n
        return arms, np.ones(n)

    def _probabilities(self, contexts: np.ndarray | None) -> np.ndarray:
        act = self.active_arms
        p = np.zeros(self._k)
        p[act[self.t % act.shape[0]]] = 1.0
        return p

    def _get_state(self) -> dict[str, Any]:
        return {"t": self.t}

    def _set_state(self, state: dict[str, Any]) -> None:
        self.t = int(state["t"])
