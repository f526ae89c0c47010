"""The vectorised classroom: one policy teaches a whole population, one item per learner per step.

:func:`simulate` returns a :class:`ClassroomRun` holding, per learner and step, the activity chosen, its
propensity, the correctness and the change in mastered activities, the mastery curve of every learner, and
(for policies with a zone of proximal development) which activities were open.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from banditarena.curriculum.learners import Learners
from banditarena.curriculum.policies import BatchPolicy


@dataclass
class ClassroomRun:
    """Everything one (population, policy) simulation produced. Arrays are (steps, learners) unless noted."""

    policy: str
    population: str
    acts: np.ndarray            # int16 activity chosen
    propensities: np.ndarray    # float32 probability the policy gave it
    correct: np.ndarray         # bool
    gain: np.ndarray            # int8 change in the number of mastered activities after the answer
    mastery: np.ndarray         # float32 (steps + 1, learners): share of the curriculum mastered
    groups: np.ndarray          # int16 (learners,) profile index
    group_names: list[str]
    zpd_share: np.ndarray | None = None  # float32 (steps + 1, activities): share of learners with it open
    counterfactual: np.ndarray | None = None  # float32 (steps, learners, activities) expected gains
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_steps(self) -> int:
        return int(self.acts.shape[0])

    @property
    def n_learners(self) -> int:
        return int(self.acts.shape[1])

    def save(self, path: Path) -> None:
        import json

        arrays = {k: getattr(self, k) for k in ("acts", "propensities", "correct", "gain", "mastery", "groups")}
        if self.zpd_share is not None:
            arrays["zpd_share"] = self.zpd_share
        if self.counterfactual is not None:
            arrays["counterfactual"] = self.counterfactual
        meta = {"policy": self.policy, "population": self.population, "group_names": self.group_names,
                "seconds": self.seconds, **self.meta}
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ClassroomRun:
        import json

        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            get = {k: z[k] for k in z.files if k != "meta"}
        return cls(policy=meta.pop("policy"), population=meta.pop("population"), acts=get["acts"],
                   propensities=get["propensities"], correct=get["correct"], gain=get["gain"],
                   mastery=get["mastery"], groups=get["groups"], group_names=meta.pop("group_names"),
                   zpd_share=get.get("zpd_share"), counterfactual=get.get("counterfactual"),
                   seconds=float(meta.pop("seconds")), meta=meta)


def simulate(learners: Learners, policy: BatchPolicy, n_steps: int, rng: np.random.Generator, *,
             policy_name: str | None = None, population: str = "population", counterfactual: bool = False,
             on_step: Callable[[int], None] | None = None) -> ClassroomRun:
    """Run ``n_steps`` steps: the policy picks an activity per learner, each learner answers and learns.

    Args:
        learners: the population (modified in place).
        policy: a batch policy for the same number of learners.
        n_steps: items per learner.
        rng: randomness of the answers and of learning (the policy has its own generator).
        counterfactual: also store every learner's expected gain for every activity at every step (for
            checking off-policy estimates; memory steps x learners x activities).
        on_step: called with the step index after each step (progress bars).
    """
    L, A = learners.n, learners.curriculum.n_activities
    acts = np.empty((n_steps, L), dtype=np.int16)
    props = np.empty((n_steps, L), dtype=np.float32)
    correct = np.empty((n_steps, L), dtype=bool)
    gain = np.empty((n_steps, L), dtype=np.int8)
    mastery = np.empty((n_steps + 1, L), dtype=np.float32)
    cf = np.empty((n_steps, L, A), dtype=np.float32) if counterfactual else None
    zpd0 = policy.zpd()
    zpd_share = None if zpd0 is None else np.empty((n_steps + 1, A), dtype=np.float32)
    mastered = learners.mastered()
    n_mastered = mastered.sum(axis=1)
    mastery[0] = n_mastered / A
    if zpd_share is not None:
        zpd_share[0] = zpd0.mean(axis=0)
    t0 = time.perf_counter()
    for t in range(n_steps):
        a, p = policy.select()
        if cf is not None:
            cf[t] = learners.expected_gain()
        c = learners.respond(a, rng)
        policy.update(a, c)
        nm = learners.mastered().sum(axis=1)
        acts[t], props[t], correct[t], gain[t] = a, p, c, nm - n_mastered
        n_mastered = nm
        mastery[t + 1] = nm / A
        if zpd_share is not None:
            zpd_share[t + 1] = policy.zpd().mean(axis=0)  # type: ignore[union-attr]
        if on_step is not None:
            on_step(t)
    seconds = time.perf_counter() - t0
    return ClassroomRun(policy=policy_name or policy.name, population=population, acts=acts, propensities=props,
                        correct=correct, gain=gain, mastery=mastery, groups=learners.group,
                        group_names=learners.group_names, zpd_share=zpd_share, counterfactual=cf, seconds=seconds)
