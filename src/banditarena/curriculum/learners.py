"""Simulated learners, vectorised over a whole population (numpy arrays of shape (learners, activities)).

Two learner models, both with heterogeneous populations built from named profiles (``average``, ``fast``,
``slow``, ``gaps``):

* :class:`BKTLearners`: one knowledge component per activity, Bayesian Knowledge Tracing with learn, guess,
  slip and forget (Corbett & Anderson 1995; forgetting as in pyBKT). The chance to learn an activity when
  practising it is multiplied by ``prereq_penalty`` for every direct or indirect prerequisite the learner
  does not know yet: learning depends on prerequisite mastery and on how far the item lies above the
  learner's level.
* :class:`IRTLearners`: one ability per skill, a 3-parameter-logistic-style response (guess and slip
  asymptotes around a Rasch core) with item difficulty growing with the activity's depth in the prerequisite
  graph; ability grows after each attempt, most for items a little above the current ability.

Profile parameters and where their values come from are in ``docs/tutoring.md``. Mastery of an activity is
the latent truth: known (BKT) or a success chance without guessing of at least ``mastery_p`` (IRT).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from banditarena.curriculum.spec import Curriculum
from banditarena.errors import ConfigError


@dataclass(frozen=True)
class BKTProfile:
    """Parameters of one kind of BKT learner (probabilities per practice opportunity)."""

    p_init: float = 0.35         # P(known) before practice, for level-1 activities
    init_level_decay: float = 0.4  # ... multiplied by this for every level above 1
    learn: float = 0.15          # P(T): unknown -> known after practising, all prerequisites known
    learn_sd: float = 0.3        # log-normal spread of a learner's learning rate inside the profile
    learn_level_decay: float = 0.9  # P(T) multiplied by this for every level above 1
    guess: float = 0.10          # P(correct | unknown)
    slip: float = 0.08           # P(wrong | known)
    forget: float = 0.01         # P(F): known -> unknown after practising
    prereq_penalty: float = 0.25  # P(T) multiplied by this per unknown (direct or indirect) prerequisite
    holes: float = 0.0           # share of the activities a learner knew that are knocked out (gaps)


@dataclass(frozen=True)
class IRTProfile:
    """Parameters of one kind of IRT learner (abilities and difficulties in logits)."""

    ability_mean: float = -1.0   # initial ability, all skills
    ability_sd: float = 0.7      # spread between learners and skills
    growth: float = 0.12         # ability gain per attempt at the ideal difficulty
    growth_sd: float = 0.3       # log-normal spread of the growth rate between learners
    stretch: float = 0.5         # ideal item difficulty above the ability
    width: float = 1.0           # how fast the gain falls off away from the ideal difficulty
    guess: float = 0.10
    slip: float = 0.08
    decay: float = 0.0           # ability lost per step on every skill (forgetting)


BKT_PROFILES: dict[str, BKTProfile] = {
    "average": BKTProfile(),
    "fast": BKTProfile(p_init=0.5, init_level_decay=0.5, learn=0.30, guess=0.10, slip=0.05),
    "slow": BKTProfile(p_init=0.2, init_level_decay=0.3, learn=0.06, guess=0.12, slip=0.12, forget=0.02),
    "gaps": BKTProfile(p_init=0.75, init_level_decay=0.85, learn=0.15, holes=0.45),
}

IRT_PROFILES: dict[str, IRTProfile] = {
    "average": IRTProfile(),
    "fast": IRTProfile(ability_mean=-0.5, growth=0.22),
    "slow": IRTProfile(ability_mean=-1.5, growth=0.06, slip=0.12, guess=0.12),
    "gaps": IRTProfile(ability_mean=0.0, ability_sd=1.5),
}


def profile_fields(kind: str) -> list[str]:
    return [f.name for f in fields(BKTProfile if kind == "bkt" else IRTProfile)]


def make_profile(kind: str, name: str, overrides: dict[str, float] | None = None,
                 extra: dict[str, dict[str, float]] | None = None) -> BKTProfile | IRTProfile:
    """The profile ``name`` of learner model ``kind`` with ``overrides``; ``extra`` holds user profiles."""
    table: dict[str, Any] = dict(BKT_PROFILES if kind == "bkt" else IRT_PROFILES)
    base_cls = BKTProfile if kind == "bkt" else IRTProfile
    if extra:
        for n, vals in extra.items():
            table[n] = _apply(base_cls(), vals, n)
    if name not in table:
        raise ConfigError(f"unknown {kind} learner profile '{name}' (known: {', '.join(sorted(table))})")
    return _apply(table[name], overrides or {}, name)


def _apply(p: Any, vals: dict[str, float], name: str) -> Any:
    known = {f.name for f in fields(p)}
    for k in vals:
        if k not in known:
            raise ConfigError(f"learner profile '{name}': unknown parameter '{k}' (parameters: {', '.join(sorted(known))})")
    return replace(p, **{k: float(v) for k, v in vals.items()})


def _split(n: int, mix: dict[str, float]) -> list[tuple[str, int]]:
    """Deterministic group sizes for shares ``mix`` that add up to ``n`` (largest remainders)."""
    names = list(mix)
    w = np.asarray([mix[k] for k in names], dtype=float)
    if (w < 0).any() or w.sum() <= 0:
        raise ConfigError(f"population mix {mix} must have non-negative shares with a positive sum")
    exact = n * w / w.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    return [(names[i], int(counts[i])) for i in range(len(names)) if counts[i] > 0]


class Learners(ABC):
    """A population of simulated learners answering one item each per step."""

    kind: str = "abstract"

    def __init__(self, curriculum: Curriculum, n: int, mix: dict[str, float], rng: np.random.Generator) -> None:
        self.curriculum = curriculum
        self.n = int(n)
        self.groups = _split(self.n, mix)
        self.group = np.concatenate([np.full(c, i) for i, (_, c) in enumerate(self.groups)]).astype(np.int16)
        self.group_names = [g for g, _ in self.groups]
        self._rows = np.arange(self.n)

    @abstractmethod
    def respond(self, acts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Each learner answers one item of ``acts[i]``; returns correctness (bool) and learns from it."""

    @abstractmethod
    def mastered(self) -> np.ndarray:
        """(learners, activities) bool: which activities each learner has mastered."""

    def mastery(self) -> np.ndarray:
        """Share of the curriculum each learner has mastered, shape (learners,)."""
        return self.mastered().mean(axis=1)

    @abstractmethod
    def expected_gain(self) -> np.ndarray:
        """(learners, activities): expected change of the number of mastered activities if each learner
        practised that activity now (the ground truth behind off-policy checks)."""

    @abstractmethod
    def success_probability(self) -> np.ndarray:
        """(learners, activities): probability of a correct answer now."""


class BKTLearners(Learners):
    """Knowledge-tracing learners (see the module notes)."""

    kind = "bkt"

    def __init__(self, curriculum: Curriculum, n: int, mix: dict[str, float], rng: np.random.Generator,
                 profiles: dict[str, BKTProfile] | None = None) -> None:
        super().__init__(curriculum, n, mix, rng)
        profiles = profiles or {}
        A = curriculum.n_activities
        lvl = curriculum.activity_level.astype(float) - 1.0
        self.profiles = {g: profiles.get(g) or make_profile("bkt", g) for g in self.group_names}
        P = [self.profiles[g] for g in self.group_names]
        gi = self.group.astype(int)

        def col(name: str) -> np.ndarray:
            return np.asarray([getattr(p, name) for p in P])[gi]

        self.params = {f: col(f) for f in ("p_init", "init_level_decay", "learn", "learn_sd", "learn_level_decay",
                                            "guess", "slip", "forget", "prereq_penalty", "holes")}
        pr = self.params
        # per-learner learning rate (log-normal around the profile's value), per activity by level
        scale = np.exp(rng.normal(0.0, 1.0, self.n) * pr["learn_sd"] - 0.5 * pr["learn_sd"] ** 2)
        self.p_learn = np.clip(pr["learn"][:, None] * scale[:, None] * pr["learn_level_decay"][:, None] ** lvl,
                               0.0, 1.0)
        self.guess = np.broadcast_to(pr["guess"][:, None], (self.n, A))
        self.slip = np.broadcast_to(pr["slip"][:, None], (self.n, A))
        self.forget = pr["forget"]
        self.penalty = pr["prereq_penalty"]
        p0 = np.clip(pr["p_init"][:, None] * pr["init_level_decay"][:, None] ** lvl, 0.0, 1.0)
        known = rng.random((self.n, A)) < p0
        holes = rng.random((self.n, A)) < pr["holes"][:, None]
        self.known = known & ~holes
        self._anc = curriculum.ancestors
        self._log_pen = np.log(np.maximum(self.penalty, 1e-12))

    def _learn_prob(self, acts: np.ndarray) -> np.ndarray:
        missing = (self._anc[acts] & ~self.known).sum(axis=1)
        return self.p_learn[self._rows, acts] * np.exp(self._log_pen * missing)

    def respond(self, acts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rows = self._rows
        k = self.known[rows, acts]
        u = rng.random((2, self.n))
        p_ok = np.where(k, 1.0 - self.slip[rows, acts], self.guess[rows, acts])
        correct = u[0] < p_ok
        learn = ~k & (u[1] < self._learn_prob(acts))
        forget = k & (u[1] < self.forget)
        self.known[rows, acts] = (k | learn) & ~forget
        return correct

    def mastered(self) -> np.ndarray:
        return self.known

    def mastery(self) -> np.ndarray:
        return self.known.mean(axis=1)

    def success_probability(self) -> np.ndarray:
        return np.where(self.known, 1.0 - self.slip, self.guess)

    def expected_gain(self) -> np.ndarray:
        missing = (self._anc[None, :, :] & ~self.known[:, None, :]).sum(axis=2)
        p = self.p_learn * np.exp(self._log_pen[:, None] * missing)
        return np.where(self.known, -self.forget[:, None], p)


class IRTLearners(Learners):
    """Learners with one growing ability per skill (see the module notes)."""

    kind = "irt"

    def __init__(self, curriculum: Curriculum, n: int, mix: dict[str, float], rng: np.random.Generator,
                 profiles: dict[str, IRTProfile] | None = None, mastery_p: float = 0.8) -> None:
        super().__init__(curriculum, n, mix, rng)
        profiles = profiles or {}
        self.profiles = {g: profiles.get(g) or make_profile("irt", g) for g in self.group_names}
        P = [self.profiles[g] for g in self.group_names]
        gi = self.group.astype(int)

        def col(name: str) -> np.ndarray:
            return np.asarray([getattr(p, name) for p in P])[gi]

        S = curriculum.n_skills
        self.skill = curriculum.activity_skill
        depth = curriculum.ancestors.sum(axis=1).astype(float)  # prerequisites below: a difficulty scale
        self.difficulty = (depth - depth.mean()) / max(depth.std(), 1e-9)
        self.theta = col("ability_mean")[:, None] + col("ability_sd")[:, None] * rng.normal(size=(self.n, S))
        gsd = col("growth_sd")
        self.growth = col("growth") * np.exp(rng.normal(0.0, 1.0, self.n) * gsd - 0.5 * gsd ** 2)
        self.stretch, self.width = col("stretch"), col("width")
        self.guess, self.slip, self.decay = col("guess"), col("slip"), col("decay")
        self.mastery_p = float(mastery_p)
        self._logit_m = float(np.log(self.mastery_p / (1.0 - self.mastery_p)))

    def _core(self) -> np.ndarray:
        return self.theta[:, self.skill] - self.difficulty[None, :]

    def success_probability(self) -> np.ndarray:
        s = 1.0 / (1.0 + np.exp(-self._core()))
        return self.guess[:, None] + (1.0 - self.guess - self.slip)[:, None] * s

    def respond(self, acts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        rows = self._rows
        sk = self.skill[acts]
        th = self.theta[rows, sk]
        z = th - self.difficulty[acts]
        p = self.guess + (1.0 - self.guess - self.slip) / (1.0 + np.exp(-z))
        correct = rng.random(self.n) < p
        gap = -z - self.stretch   # how far the item is from the ideal difficulty
        self.theta[rows, sk] = th + self.growth * np.exp(-0.5 * (gap / self.width) ** 2)
        if self.decay.any():
            self.theta -= self.decay[:, None]
        return correct

    def mastered(self) -> np.ndarray:
        return self._core() >= self._logit_m

    def expected_gain(self) -> np.ndarray:
        core = self._core()
        gain = self.growth[:, None] * np.exp(-0.5 * ((-core - self.stretch[:, None]) / self.width[:, None]) ** 2)
        # activities of the same skill whose mastery the gain would cross
        out = np.zeros_like(core)
        for a in range(core.shape[1]):
            same = self.skill == self.skill[a]
            before = core[:, same] >= self._logit_m
            after = core[:, same] + gain[:, a:a + 1] >= self._logit_m
            out[:, a] = (after & ~before).sum(axis=1)
        return out


LEARNER_KINDS = {"bkt": BKTLearners, "irt": IRTLearners}


def make_learners(kind: str, curriculum: Curriculum, n: int, mix: dict[str, float], rng: np.random.Generator,
                  profiles: dict[str, dict[str, float]] | None = None) -> Learners:
    """A population of ``n`` learners of model ``kind`` (``bkt``/``irt``) mixed by ``mix`` (profile -> share);
    ``profiles`` overrides or adds profile parameters (profile -> {parameter: value})."""
    if kind not in LEARNER_KINDS:
        raise ConfigError(f"unknown learner model '{kind}' (known: {', '.join(LEARNER_KINDS)})")
    built: dict[str, Any] = {}
    for name in mix:
        over = (profiles or {}).get(name)
        table = BKT_PROFILES if kind == "bkt" else IRT_PROFILES
        if name in table:
            built[name] = make_profile(kind, name, over)
        elif over is not None:
            built[name] = _apply(BKTProfile() if kind == "bkt" else IRTProfile(), over, name)
        else:
            raise ConfigError(f"unknown {kind} learner profile '{name}' (known: {', '.join(sorted(table))}; "
                              "define new ones under profiles)")
    return LEARNER_KINDS[kind](curriculum, n, mix, rng, profiles=built)  # type: ignore[arg-type]


def profile_table(kind: str) -> list[dict[str, Any]]:
    """The built-in profiles of ``kind`` as rows (for the docs and the CLI)."""
    table = BKT_PROFILES if kind == "bkt" else IRT_PROFILES
    return [{"profile": k, **asdict(v)} for k, v in table.items()]
