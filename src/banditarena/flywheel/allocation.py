"""Bandit battle allocation: one policy per dimension (prompt clusters, opponents, strategies).

Each battle pulls one arm in every dimension; its reward (data yield or learning progress) updates all of
them (a factored bandit: cheap, and each dimension's arms are compared on equal footing). Every decision is
logged with its propensity (the product over dimensions is the joint propensity), so allocations can be
compared off-policy afterwards. ``uniform`` is the baseline policy.

Inside the chosen cluster, :class:`PromptPicker` chooses the prompt. Its ``thompson`` policy keeps a Beta
posterior per prompt, centred on the cluster's running reward: a target that lost a prompt to one opponent
(or under one strategy) tends to lose it to the others, so prompts with a record of losses are battled again
with the opponents and strategies not yet tried on them, while untried prompts keep the cluster's prior.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from banditarena.errors import ConfigError
from banditarena.seeds import child_seed


def make_policy(name: str, n_arms: int, *, seed: int = 0, **params: Any) -> Any:
    """A context-free policy of the bandit core by name (``bandits.POLICIES``); ConfigError for a bad one."""
    from banditarena.bandits import BanditInputError, policy_names
    from banditarena.bandits import make_policy as core_make_policy

    if name not in policy_names(contextual=False):
        raise ConfigError(f"unknown bandit policy '{name}' (known: {', '.join(policy_names(contextual=False))})")
    try:
        return core_make_policy(name, n_arms, seed=seed, **params)
    except BanditInputError as exc:
        raise ConfigError(str(exc)) from None


PROMPT_POLICIES = ("uniform", "thompson")


class PromptPicker:
    """Chooses a battle's prompt among the unfought prompts of the chosen cluster.

    ``uniform``: the first candidate; the flywheel's split is a random permutation, so this is a uniformly
    random unfought prompt (propensity ``1 / len(candidates)``).

    ``thompson``: a Beta posterior per prompt over the battle reward, with prior mean the cluster's running
    mean reward ``(1 + sum) / (2 + n)`` and prior weight ``prior_strength`` (in pseudo-battles). Every battle
    on a prompt (any opponent or strategy) updates it. One posterior draw per candidate; the highest draw wins.
    The propensity is a Monte-Carlo estimate over ``propensity_samples`` further draws (NaN when 0).

    Rewards must lie in [0, 1] (data yield, learning progress).
    """

    def __init__(self, policy: str = "thompson", *, prior_strength: float = 1.0, propensity_samples: int = 100,
                 seed: int | np.random.Generator | None = 0) -> None:
        if policy not in PROMPT_POLICIES:
            raise ConfigError(f"unknown prompt policy '{policy}' (known: {', '.join(PROMPT_POLICIES)})")
        if not prior_strength > 0:
            raise ConfigError(f"bandit.prompts.prior_strength must be > 0, got {prior_strength}")
        self.policy = policy
        self.prior_strength = float(prior_strength)
        self.propensity_samples = int(propensity_samples)
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.prompt_stats: dict[str, list[float]] = {}  # prompt id -> [battles, reward sum]
        self.cluster_stats: dict[str, list[float]] = {}  # cluster -> [battles, reward sum]

    def reset(self) -> None:
        """Forget the prompt records (a new iteration battles a fresh split with a new checkpoint)."""
        self.prompt_stats.clear()
        self.cluster_stats.clear()

    def posterior(self, cluster: str, prompt_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Beta parameters (a, b) of each prompt's reward."""
        n_c, s_c = self.cluster_stats.get(cluster, (0.0, 0.0))
        m = (1.0 + s_c) / (2.0 + n_c)
        st = np.array([self.prompt_stats.get(i, (0.0, 0.0)) for i in prompt_ids], dtype=float).reshape(-1, 2)
        a = self.prior_strength * m + st[:, 1]
        b = self.prior_strength * (1.0 - m) + st[:, 0] - st[:, 1]
        return a, b

    def pick(self, cluster: str, prompt_ids: Sequence[str]) -> tuple[int, float]:
        """Index into ``prompt_ids`` of the chosen prompt, and its propensity."""
        n = len(prompt_ids)
        if n == 0:
            raise ValueError("no candidate prompts")
        if self.policy == "uniform" or n == 1:
            return 0, 1.0 / n
        a, b = self.posterior(cluster, prompt_ids)
        j = int(np.argmax(self.rng.beta(a, b)))
        if self.propensity_samples <= 0:
            return j, float("nan")
        draws = self.rng.beta(a, b, size=(self.propensity_samples, n))
        return j, float((1 + np.sum(draws.argmax(1) == j)) / (1 + self.propensity_samples))

    def update(self, cluster: str, prompt_id: str, reward: float) -> None:
        r = float(reward)
        if not 0.0 <= r <= 1.0:
            raise ValueError(f"prompt picker rewards must lie in [0, 1], got {r}")
        for stats, key in ((self.prompt_stats, prompt_id), (self.cluster_stats, cluster)):
            st = stats.setdefault(key, [0.0, 0.0])
            st[0] += 1.0
            st[1] += r

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "prior_strength": self.prior_strength, "rng": self.rng.bit_generator.state,
                "prompt_stats": self.prompt_stats, "cluster_stats": self.cluster_stats}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        self.rng.bit_generator.state = d["rng"]
        self.prompt_stats = {k: list(v) for k, v in d["prompt_stats"].items()}
        self.cluster_stats = {k: list(v) for k, v in d["cluster_stats"].items()}


class BattleAllocator:
    """Chooses (cluster, opponent, strategy) for each battle, one policy per dimension, and the prompt
    inside the cluster (:class:`PromptPicker`)."""

    def __init__(self, arms: Mapping[str, Sequence[str]], policies: Mapping[str, Mapping[str, Any] | str], *, seed: int = 0,
                 prompts: Mapping[str, Any] | str = "uniform") -> None:
        self.arms = {d: list(a) for d, a in arms.items()}
        self.pulls: dict[str, dict[str, int]] = {d: {} for d in self.arms}
        self.policy_names: dict[str, str] = {}
        self.policies: dict[str, Any] = {}
        for dim, names in self.arms.items():
            if not names:
                raise ConfigError(f"bandit dimension '{dim}' has no arms")
            spec = policies.get(dim, "uniform")
            spec = {"policy": spec} if isinstance(spec, str) else dict(spec)
            name = spec.pop("policy", "uniform")
            self.policy_names[dim] = name
            self.policies[dim] = make_policy(name, len(names), seed=child_seed(seed, "allocation", dim), **spec)
        pspec = {"policy": prompts} if isinstance(prompts, str) else dict(prompts)
        pname = pspec.pop("policy", "uniform")
        try:
            self.prompts = PromptPicker(pname, seed=child_seed(seed, "allocation", "prompts"), **pspec)
        except TypeError as exc:
            raise ConfigError(f"prompt policy '{pname}': bad parameters {sorted(pspec)} ({exc})") from exc

    def select(self, n: int) -> list[dict[str, tuple[str, float]]]:
        """n joint choices: per dimension (arm name, propensity)."""
        out: list[dict[str, tuple[str, float]]] = [{} for _ in range(n)]
        for dim, pol in self.policies.items():
            arms, props = pol.select(n=n)
            for i in range(n):
                out[i][dim] = (self.arms[dim][int(arms[i])], float(props[i]))
        return out

    def plan(self, n: int, available: Callable[[str, str, str], bool]) -> Iterator[dict[str, Any]]:
        """``n`` joint choices (cluster, strategy, opponent), one at a time, whose combination ``available(cluster,
        strategy, opponent)`` still has an unfought prompt (checked when each is taken, so the caller marks its
        prompt fought before the next). A used-up combination keeps as many of its chosen arms as possible and
        fills the others with the least-pulled arms still available (marked ``"fallback": True``); a choice
        with no available combination at all is dropped.
        """
        for ch in self.select(n):
            cluster, strat, opp = ch["clusters"][0], ch["strategies"][0], ch["opponents"][0]
            if not available(cluster, strat, opp):
                options = [(c, s_, o) for o in [opp, *sorted(set(self.arms["opponents"]) - {opp})]
                           for s_ in [strat, *sorted(set(self.arms["strategies"]) - {strat})]
                           for c in self.arms["clusters"] if available(c, s_, o)]
                if not options:
                    continue
                cluster, strat, opp = min(options, key=lambda x: (
                    x[2] != opp, x[1] != strat, self.pulls["clusters"].get(x[0], 0),
                    self.pulls["opponents"].get(x[2], 0), self.pulls["strategies"].get(x[1], 0), x))
                ch = {"clusters": (cluster, ch["clusters"][1]), "strategies": (strat, ch["strategies"][1]),
                      "opponents": (opp, ch["opponents"][1]), "fallback": True}
            for dim in self.arms:
                self.pulls[dim][ch[dim][0]] = self.pulls[dim].get(ch[dim][0], 0) + 1
            yield ch

    def reset_pulls(self) -> None:
        """Start counting pulls afresh (a new iteration)."""
        self.pulls = {d: {} for d in self.arms}

    def policy_name(self, dim: str) -> str:
        return self.prompts.policy if dim == "prompts" else self.policy_names[dim]

    def pick_prompt(self, cluster: str, prompt_ids: Sequence[str]) -> tuple[int, float]:
        """Index of the prompt to battle among the cluster's unfought ``prompt_ids``, and its propensity."""
        return self.prompts.pick(cluster, prompt_ids)

    def update(self, choices: Sequence[Mapping[str, tuple[str, float]]], rewards: Sequence[float]) -> None:
        """Rewards for ``choices``; a choice carrying ``"prompts": (prompt id, propensity)`` also updates the
        prompt picker."""
        r = np.asarray(rewards, dtype=float)
        for dim, pol in self.policies.items():
            idx = np.array([self.arms[dim].index(c[dim][0]) for c in choices], dtype=np.int64)
            if len(idx):
                pol.update(idx, r)
        for c, ri in zip(choices, r, strict=True):
            if "prompts" in c and "clusters" in c:
                self.prompts.update(c["clusters"][0], c["prompts"][0], float(ri))

    def state_dict(self) -> dict[str, Any]:
        return {"arms": self.arms, "policies": {d: p.state_dict() for d, p in self.policies.items()},
                "prompts": self.prompts.state_dict()}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        if d["arms"] != self.arms:
            raise ConfigError("saved bandit state has different arms than the recipe; use a new run dir")
        for dim, sd in d["policies"].items():
            self.policies[dim].load_state_dict(sd)
        if "prompts" in d:
            self.prompts.load_state_dict(d["prompts"])
