"""Bandit battle allocation: one policy per dimension (prompt clusters, opponents, strategies).

Each battle pulls one arm in every dimension; its reward (data yield or learning progress) updates all of
them (a factored bandit: cheap, and each dimension's arms are compared on equal footing). Every decision is
logged with its propensity (the product over dimensions is the joint propensity), so allocations can be
compared off-policy afterwards. ``uniform`` is the baseline policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from banditarena.errors import ConfigError

POLICIES = ("uniform", "epsilon_greedy", "ucb1", "klucb", "ucbv", "thompson", "exp3", "sw_ucb", "discounted_thompson")


class Uniform:
    """Uniform random allocation (the baseline), with the bandit API."""

    def __init__(self, n_arms: int, seed: int | np.random.Generator | None = 0) -> None:
        self._n = int(n_arms)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    @property
    def n_arms(self) -> int:
        return self._n

    def select(self, n: int = 1, context: Any = None) -> tuple[np.ndarray, np.ndarray]:
        return self.rng.integers(0, self._n, size=n).astype(np.int64), np.full(n, 1.0 / self._n)

    def update(self, arms: Any, rewards: Any, contexts: Any = None) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"n_arms": self._n, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        self._n = int(d["n_arms"])
        self.rng.bit_generator.state = d["rng"]


def make_policy(name: str, n_arms: int, *, seed: int = 0, **params: Any) -> Any:
    """A context-free policy from the bandit core by name (see :data:`POLICIES`)."""
    from banditarena import bandits

    classes = {
        "uniform": Uniform,
        "epsilon_greedy": bandits.EpsilonGreedy,
        "ucb1": bandits.UCB1,
        "klucb": bandits.KLUCB,
        "ucbv": bandits.UCBV,
        "sw_ucb": bandits.SlidingWindowUCB,
        "discounted_thompson": bandits.DiscountedThompsonSampling,
        "thompson": bandits.ThompsonSampling,
        "exp3": bandits.EXP3,
    }
    if name not in classes:
        raise ConfigError(f"unknown bandit policy '{name}' (known: {', '.join(POLICIES)})")
    try:
        return classes[name](n_arms=n_arms, seed=seed, **params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bandit policy '{name}': bad parameters {sorted(params)} ({exc})") from exc


class BattleAllocator:
    """Chooses (cluster, opponent, strategy) for each battle; one policy per dimension."""

    def __init__(self, arms: Mapping[str, Sequence[str]], policies: Mapping[str, Mapping[str, Any] | str], *, seed: int = 0) -> None:
        self.arms = {d: list(a) for d, a in arms.items()}
        self.policy_names: dict[str, str] = {}
        self.policies: dict[str, Any] = {}
        for i, (dim, names) in enumerate(self.arms.items()):
            if not names:
                raise ConfigError(f"bandit dimension '{dim}' has no arms")
            spec = policies.get(dim, "uniform")
            spec = {"policy": spec} if isinstance(spec, str) else dict(spec)
            name = spec.pop("policy", "uniform")
            self.policy_names[dim] = name
            self.policies[dim] = make_policy(name, len(names), seed=seed * 1009 + i, **spec)

    def select(self, n: int, available: Mapping[str, set[str]] | None = None) -> list[dict[str, tuple[str, float]]]:
        """n joint choices: per dimension (arm name, propensity)."""
        out: list[dict[str, tuple[str, float]]] = [{} for _ in range(n)]
        for dim, pol in self.policies.items():
            arms, props = pol.select(n=n)
            for i in range(n):
                out[i][dim] = (self.arms[dim][int(arms[i])], float(props[i]))
        return out

    def update(self, choices: Sequence[Mapping[str, tuple[str, float]]], rewards: Sequence[float]) -> None:
        r = np.asarray(rewards, dtype=float)
        for dim, pol in self.policies.items():
            idx = np.array([self.arms[dim].index(c[dim][0]) for c in choices], dtype=np.int64)
            if len(idx):
                pol.update(idx, r)

    def state_dict(self) -> dict[str, Any]:
        return {"arms": self.arms, "policies": {d: p.state_dict() for d, p in self.policies.items()}}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        if d["arms"] != self.arms:
            raise ConfigError("saved bandit state has different arms than the recipe; use a new run dir")
        for dim, sd in d["policies"].items():
            self.policies[dim].load_state_dict(sd)
