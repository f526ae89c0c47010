"""Which reward model scores each prompt: bandit-core policies behind one small adapter.

* ``laser`` - :class:`~banditarena.bandits.LinUCB` on the prompts' context vectors, after a round-robin
  warm start (``loop.warmup`` decisions per RM, in order; see :class:`RMSelector`);
* ``single:<rm>`` - :class:`~banditarena.bandits.Fixed`;
* ``random`` - :class:`~banditarena.bandits.Uniform`;
* ``sequential`` - :class:`~banditarena.bandits.Sequential` (round-robin);
* ``router`` - the classifier router: each category goes to the RM that agreed best with the verifier on
  that category's dev problems (:class:`CategoryRouter`, fitted once before training).

:class:`RMSelector` takes one decision per batch (``mode="batch"``: the batch's mean context, the same RM for
every prompt) or one per prompt (``mode="instance"``), and feeds rewards back the same way. The ensembles use
every RM and have no selector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from banditarena import bandits
from banditarena.errors import ConfigError
from banditarena.types import Prompt

__all__ = ["CategoryRouter", "Choice", "RMSelector", "batch_context", "make_selector"]


@dataclass
class Choice:
    """The RM (index into the recipe's reward models) chosen for each prompt of a batch; -1 = all of them."""

    arms: np.ndarray
    propensities: np.ndarray

    @classmethod
    def everyone(cls, n: int) -> Choice:
        return cls(np.full(n, -1, dtype=np.int64), np.ones(n))


def batch_context(contexts: np.ndarray) -> np.ndarray:
    """The batch's context: the mean of its prompts' contexts, unit norm."""
    c = np.asarray(contexts, dtype=float).mean(axis=0)
    return c / max(float(np.linalg.norm(c)), 1e-12)


class RMSelector:
    """A bandit-core policy choosing among reward models, one decision per batch or per prompt.

    ``warmup``: the first ``warmup * n_arms`` batches go to the RMs in turn (every prompt of a batch to one
    RM, in both modes) and only then does the policy choose; their rewards update it as usual. Without it
    LinUCB never tries most RMs when rewards sit above its prior's optimism: with rewards in [0, 1] (the
    agreement reward is 0.8-1.0 for every RM here) and ``alpha`` 1, the first RM's upper bound after one
    batch of 8 dev rewards, about ``0.89 r + 0.33``, beats an untried RM's 1.0 whenever ``r > 0.75``, so the
    bandit keeps the first RM it happened to pick (docs/laser.md, "Why LASeR locked on").
    """

    def __init__(self, policy: bandits.Policy, mode: str = "batch", warmup: int = 0) -> None:
        if mode not in ("batch", "instance"):
            raise ConfigError(f"loop.mode: '{mode}' is not batch or instance")
        if warmup < 0:
            raise ConfigError(f"loop.warmup: {warmup} is negative")
        self.policy, self.mode, self.warmup = policy, mode, int(warmup)
        self.decisions = 0  # batches chosen so far (the warm start's clock)

    @property
    def needs_context(self) -> bool:
        return self.policy.dim is not None

    def choose(self, prompts: list[Prompt], contexts: np.ndarray | None) -> Choice:
        n = len(prompts)
        k = self.policy.n_arms
        self.decisions += 1
        if self.decisions <= self.warmup * k:
            return Choice(np.full(n, (self.decisions - 1) % k, dtype=np.int64), np.ones(n))
        if self.mode == "instance":
            arms, props = self.policy.select(n, contexts)
            return Choice(arms.astype(np.int64), props)
        ctx = batch_context(contexts) if contexts is not None else None
        arms, props = self.policy.select(1, ctx)
        return Choice(np.full(n, int(arms[0]), dtype=np.int64), np.full(n, float(props[0])))

    def update(self, choice: Choice, rewards: np.ndarray, contexts: np.ndarray | None) -> None:
        """Rewards per prompt (NaN: no reward for that decision); batch mode uses the first finite one."""
        r = np.asarray(rewards, dtype=float)
        ok = np.isfinite(r)
        if not ok.any():
            return
        if self.mode == "instance":
            self.policy.update(choice.arms[ok], r[ok], None if contexts is None else contexts[ok])
        else:
            i = int(np.flatnonzero(ok)[0])
            self.policy.update(choice.arms[i:i + 1], r[i:i + 1],
                               None if contexts is None else batch_context(contexts)[None, :])

    def update_at(self, arms: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None) -> None:
        """Rewards observed at other contexts than the decision's (the dev-agreement reward)."""
        if len(arms):
            self.policy.update(np.asarray(arms, dtype=np.int64), np.asarray(rewards, dtype=float), contexts)

    def state_dict(self) -> dict[str, Any]:
        return {**self.policy.state_dict(), "rm_decisions": self.decisions}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        d = dict(d)
        self.decisions = int(d.pop("rm_decisions", 0))  # states saved before the warm start existed: 0
        self.policy.load_state_dict(d)


class CategoryRouter:
    """Routes each prompt by its category through a fixed table (the "classifier router" baseline)."""

    needs_context = False
    mode = "instance"

    def __init__(self, table: dict[str, int], default: int) -> None:
        self.table, self.default = dict(table), int(default)

    def choose(self, prompts: list[Prompt], contexts: np.ndarray | None) -> Choice:
        arms = np.array([self.table.get(p.category or "", self.default) for p in prompts], dtype=np.int64)
        return Choice(arms, np.ones(len(prompts)))

    def update(self, choice: Choice, rewards: np.ndarray, contexts: np.ndarray | None) -> None:
        return None

    def update_at(self, arms: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"table": self.table, "default": self.default}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.table, self.default = dict(d["table"]), int(d["default"])


def make_selector(method: str, rm_names: list[str], *, mode: str, seed: int, context_dim: int,
                  alpha: float, warmup: int = 0) -> RMSelector | None:
    """The selector of ``method`` (None for the ensembles and the router, which is fitted on dev first)."""
    k = len(rm_names)
    kind = method.split(":", 1)[0]
    if kind == "laser":
        return RMSelector(bandits.make_policy("linucb", k, seed=seed, dim=context_dim, alpha=alpha), mode,
                          warmup=warmup)
    if kind == "single":
        name = method.split(":", 1)[1]
        if name not in rm_names:
            raise ConfigError(f"method '{method}': no reward model named '{name}' (have {rm_names})")
        return RMSelector(bandits.make_policy("fixed", k, seed=seed, arm=rm_names.index(name)), "batch")
    if kind == "random":
        return RMSelector(bandits.make_policy("uniform", k, seed=seed), mode)
    if kind == "sequential":
        return RMSelector(bandits.make_policy("sequential", k, seed=seed), mode)
    if kind in ("ensemble_avg", "ensemble_agree", "router"):
        return None
    raise ConfigError(f"methods: unknown method '{method}'")
