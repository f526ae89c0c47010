"""Teaching policies for many learners at once: ZPDES, bandit-core policies with a learning-progress reward,
and the baselines (random, a predefined expert sequence, mastery-threshold progression).

Every policy has the same batch API: ``select() -> (activities, propensities)`` (one decision per learner,
with the probability the policy gave that activity), ``probabilities()`` (learners, activities),
``update(activities, correct)`` and JSON-safe ``state_dict()`` / ``load_state_dict()``. Deterministic policies
report propensity 1.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from banditarena.bandits import EXP3, UCB1, LearningProgress, ThompsonSampling, from_state_dict
from banditarena.curriculum.spec import Curriculum
from banditarena.curriculum.zpdes import ZPDESBatch, ZPDESParams, sample_rows
from banditarena.errors import ConfigError


class BatchPolicy(ABC):
    """Base of the batch policies (one decision per learner per step)."""

    name = "policy"
    deterministic = False

    def __init__(self, curriculum: Curriculum, n_learners: int, rng: np.random.Generator) -> None:
        self.curriculum = curriculum
        self.n = int(n_learners)
        self.n_arms = curriculum.n_activities
        self.rng = rng
        self._rows = np.arange(self.n)

    @abstractmethod
    def probabilities(self) -> np.ndarray:
        """Each learner's probability of each activity at this step (n_learners x n_activities)."""

    def select(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.probabilities()
        acts = sample_rows(p, self.rng)
        return acts, p[self._rows, acts]

    def update(self, acts: np.ndarray, correct: np.ndarray) -> None:
        """Learn from one answer per learner."""

    def zpd(self) -> np.ndarray | None:
        """(learners, activities) activities open to the policy now, when it has such a notion."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.name}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class RandomPolicy(BatchPolicy):
    """Every activity equally likely, every time."""

    name = "random"

    def probabilities(self) -> np.ndarray:
        return np.full((self.n, self.n_arms), 1.0 / self.n_arms)

    def select(self) -> tuple[np.ndarray, np.ndarray]:
        return self.rng.integers(self.n_arms, size=self.n), np.full(self.n, 1.0 / self.n_arms)


class ZPDESPolicy(BatchPolicy):
    """ZPDES (:mod:`banditarena.curriculum.zpdes`) over the curriculum's prerequisite graph."""

    name = "zpdes"

    def __init__(self, curriculum: Curriculum, n_learners: int, rng: np.random.Generator, **params: Any) -> None:
        super().__init__(curriculum, n_learners, rng)
        self.params = ZPDESParams(**params)
        self.core = ZPDESBatch([a.requires for a in curriculum.activities], self.n, rng, self.params)

    def probabilities(self) -> np.ndarray:
        return self.core.probabilities()

    def select(self) -> tuple[np.ndarray, np.ndarray]:
        return self.core.select()

    def update(self, acts: np.ndarray, correct: np.ndarray) -> None:
        self.core.update(acts, correct)

    def zpd(self) -> np.ndarray:
        return self.core.zpd

    def state_dict(self) -> dict[str, Any]:
        return self.core.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.core.load_state_dict(state)


@dataclass(frozen=True)
class ExpertParams:
    pass_k: int = 4        # move on after pass_k correct among the last pass_n answers on the activity
    pass_n: int = 5
    fail_k: int = 1        # go back one activity when at most fail_k of the last pass_n are correct
    max_tries: int = 25    # move on anyway after this many answers on one activity


class ExpertSequence(BatchPolicy):
    """The predefined sequence of the curriculum (``expert_sequence``, else a topological order): move on after
    ``pass_k`` of the last ``pass_n`` answers are correct, step back after ``fail_k`` or fewer (remediation),
    move on anyway after ``max_tries``; after the last activity, review activities uniformly at random."""

    name = "expert"
    deterministic = True

    def __init__(self, curriculum: Curriculum, n_learners: int, rng: np.random.Generator, **params: Any) -> None:
        super().__init__(curriculum, n_learners, rng)
        try:
            self.params = ExpertParams(**params)
        except TypeError as exc:
            raise ConfigError(f"expert policy: {exc}") from None
        self.seq = np.asarray(curriculum.expert_sequence, dtype=np.int64)
        self.pos = np.zeros(self.n, dtype=np.int64)
        self.recent = np.zeros((self.n, self.params.pass_n), dtype=np.int8)
        self.tries = np.zeros(self.n, dtype=np.int64)

    def probabilities(self) -> np.ndarray:
        p = np.zeros((self.n, self.n_arms))
        inseq = self.pos < self.seq.shape[0]
        p[self._rows[inseq], self.seq[self.pos[inseq]]] = 1.0
        p[~inseq] = 1.0 / self.n_arms
        return p

    def select(self) -> tuple[np.ndarray, np.ndarray]:
        inseq = self.pos < self.seq.shape[0]
        acts = np.where(inseq, self.seq[np.minimum(self.pos, self.seq.shape[0] - 1)], 0)
        review = ~inseq
        if review.any():
            acts[review] = self.rng.integers(self.n_arms, size=int(review.sum()))
        return acts, np.where(inseq, 1.0, 1.0 / self.n_arms)

    def update(self, acts: np.ndarray, correct: np.ndarray) -> None:
        P = self.params
        inseq = self.pos < self.seq.shape[0]
        self.recent[self._rows, self.tries % P.pass_n] = correct.astype(np.int8)
        self.tries += inseq
        full = self.tries >= P.pass_n
        ok = self.recent.sum(axis=1)
        up = inseq & ((full & (ok >= P.pass_k)) | (self.tries >= P.max_tries))
        down = inseq & ~up & full & (ok <= P.fail_k) & (self.pos > 0)
        moved = up | down
        self.pos += up.astype(np.int64) - down.astype(np.int64)
        self.tries[moved] = 0
        self.recent[moved] = 0

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.name, "params": asdict(self.params), "pos": self.pos.tolist(),
                "recent": self.recent.tolist(), "tries": self.tries.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pos = np.asarray(state["pos"], dtype=np.int64)
        self.recent = np.asarray(state["recent"], dtype=np.int8)
        self.tries = np.asarray(state["tries"], dtype=np.int64)


@dataclass(frozen=True)
class MasteryParams:
    threshold: float = 0.95   # P(known) at which an activity counts as mastered (Corbett & Anderson 1995)
    prior: float = 0.2        # the tutor's own BKT model (one set for every activity)
    learn: float = 0.15
    guess: float = 0.1
    slip: float = 0.1


def bkt_posterior(p: np.ndarray, correct: np.ndarray, learn: float, guess: float, slip: float) -> np.ndarray:
    """BKT update of P(known) after an answer: Bayes on the answer, then the learning transition."""
    ok = (p * (1 - slip)) / np.maximum(p * (1 - slip) + (1 - p) * guess, 1e-12)
    bad = (p * slip) / np.maximum(p * slip + (1 - p) * (1 - guess), 1e-12)
    post = np.where(correct, ok, bad)
    return post + (1 - post) * learn


class MasteryThreshold(BatchPolicy):
    """Mastery learning: the tutor traces knowledge with its own BKT model and gives the first activity of the
    expert sequence whose estimated P(known) is below ``threshold``; when all are above, the weakest one."""

    name = "mastery"
    deterministic = True

    def __init__(self, curriculum: Curriculum, n_learners: int, rng: np.random.Generator, **params: Any) -> None:
        super().__init__(curriculum, n_learners, rng)
        try:
            self.params = MasteryParams(**params)
        except TypeError as exc:
            raise ConfigError(f"mastery policy: {exc}") from None
        self.seq = np.asarray(curriculum.expert_sequence, dtype=np.int64)
        self.p_known = np.full((self.n, self.n_arms), self.params.prior)

    def _choice(self) -> np.ndarray:
        below = self.p_known[:, self.seq] < self.params.threshold
        first = below.argmax(axis=1)
        weakest = self.p_known.argmin(axis=1)
        return np.where(below.any(axis=1), self.seq[first], weakest)

    def probabilities(self) -> np.ndarray:
        p = np.zeros((self.n, self.n_arms))
        p[self._rows, self._choice()] = 1.0
        return p

    def select(self) -> tuple[np.ndarray, np.ndarray]:
        return self._choice(), np.ones(self.n)

    def update(self, acts: np.ndarray, correct: np.ndarray) -> None:
        P = self.params
        cur = self.p_known[self._rows, acts]
        self.p_known[self._rows, acts] = bkt_posterior(cur, correct, P.learn, P.guess, P.slip)

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.name, "params": asdict(self.params), "p_known": self.p_known.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p_known = np.asarray(state["p_known"], dtype=float)


class CoreBandit(BatchPolicy):
    """One bandit-core policy per learner over all activities, rewarded with the learning progress of the chosen
    activity (:class:`banditarena.bandits.LearningProgress`, absolute change of the success rate). No
    prerequisite graph: the contrast with ZPDES shows what the zone of proximal development adds."""

    deterministic = False
    CLASSES: ClassVar[dict[str, type]] = {"exp3": EXP3, "thompson": ThompsonSampling, "ucb1": UCB1}

    def __init__(self, curriculum: Curriculum, n_learners: int, rng: np.random.Generator, kind: str = "exp3",
                 window: int = 3, **params: Any) -> None:
        super().__init__(curriculum, n_learners, rng)
        self.name = kind
        cls = self.CLASSES[kind]
        seeds = rng.integers(0, 2**63 - 1, size=self.n)
        try:
            self.policies = [cls(self.n_arms, seed=int(s), **params) for s in seeds]
        except TypeError as exc:
            raise ConfigError(f"{kind} policy: {exc}") from None
        self.window = int(window)
        self.lp = [LearningProgress(self.n_arms, window=self.window) for _ in range(self.n)]

    def probabilities(self) -> np.ndarray:
        return np.stack([np.asarray(p.probabilities(), dtype=float) for p in self.policies])

    def select(self) -> tuple[np.ndarray, np.ndarray]:
        acts = np.empty(self.n, dtype=np.int64)
        props = np.empty(self.n)
        for i, pol in enumerate(self.policies):
            a, p = pol.select(1)
            acts[i], props[i] = a[0], p[0]
        self._last_props = props
        return acts, props

    def update(self, acts: np.ndarray, correct: np.ndarray) -> None:
        props = getattr(self, "_last_props", None)
        for i, pol in enumerate(self.policies):
            a = int(acts[i])
            r = float(self.lp[i].update(np.array([a]), np.array([float(correct[i])]))[0])
            pr = None if props is None or not np.isfinite(props[i]) else [float(props[i])]
            pol.update([a], [min(max(r, 0.0), 1.0)], propensities=pr)

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.name, "window": self.window, "policies": [p.state_dict() for p in self.policies],
                "lp": [lp.state_dict() for lp in self.lp]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.policies = [from_state_dict(s) for s in state["policies"]]
        for lp, s in zip(self.lp, state["lp"]):
            lp.load_state_dict(s)


POLICY_KINDS = ("zpdes", "expert", "mastery", "random", "exp3", "thompson", "ucb1")


def make_policy(kind: str, curriculum: Curriculum, n_learners: int, rng: np.random.Generator,
                params: dict[str, Any] | None = None) -> BatchPolicy:
    """Build the batch policy ``kind`` (one of :data:`POLICY_KINDS`) with ``params``."""
    params = dict(params or {})
    try:
        if kind == "zpdes":
            return ZPDESPolicy(curriculum, n_learners, rng, **params)
        if kind == "expert":
            return ExpertSequence(curriculum, n_learners, rng, **params)
        if kind == "mastery":
            return MasteryThreshold(curriculum, n_learners, rng, **params)
        if kind == "random":
            if params:
                raise ConfigError(f"random policy takes no parameters, got {sorted(params)}")
            return RandomPolicy(curriculum, n_learners, rng)
        if kind in CoreBandit.CLASSES:
            return CoreBandit(curriculum, n_learners, rng, kind=kind, **params)
    except TypeError as exc:
        raise ConfigError(f"{kind} policy: {exc}") from None
    raise ConfigError(f"unknown policy kind '{kind}' (known: {', '.join(POLICY_KINDS)})")
