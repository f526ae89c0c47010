"""ZPDES (Clement, Roy, Oudeyer & Lopes, "Multi-Armed Bandits for Intelligent Tutoring Systems", JEDM 2015).

The bandit chooses only among the activities in the learner's zone of proximal development (ZPD), a window
over the prerequisite graph:

* the ZPD starts with the activities that have no prerequisites;
* when the learner's success rate on an activity over its last ``window`` answers reaches ``activate``
  (with at least ``min_obs`` answers), the activity counts as succeeded and every activity whose prerequisites
  are all succeeded enters the ZPD;
* when the success rate over the last ``window`` answers reaches ``deactivate`` (a full window), the
  activity is mastered and leaves the ZPD (unless it is the last one left);
* the reward of an activity is its empirical learning progress: the success rate over the most recent half
  of its last ``window`` answers minus the rate over the older half (absolute value by default: a drop is
  worth attention too, and weights stay non-negative);
* each activity in the ZPD has a weight ``w``; after an answer ``w <- beta * w + eta * reward``; the activity
  is drawn with probability ``(1 - gamma) * w / sum(w) + gamma / |ZPD|`` (``gamma``: exploration share);
  an activity entering the ZPD starts with the largest weight in the ZPD so it is tried soon.

:class:`ZPDESBatch` runs it for many learners at once on ``(learners, activities)`` arrays (the simulator);
:class:`ZPDES` is the same algorithm for one learner behind the bandit core's :class:`~banditarena.bandits.Policy`
API (the web tutor): ``select(n) -> (arms, propensities)``, ``update(arms, outcomes)`` with the learner's
success (1) or failure (0) as the reward it is given (the learning progress is computed inside),
``state_dict()`` / ``load_state_dict()``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from banditarena.bandits import BanditInputError, Policy


@dataclass(frozen=True)
class ZPDESParams:
    gamma: float = 0.1         # exploration share inside the ZPD
    beta: float = 0.7          # weight memory
    eta: float = 1.0           # weight learning rate
    window: int = 6            # answers per activity the learning progress and success rates look at
    activate: float = 0.7      # success rate that opens the next activities
    deactivate: float = 0.9    # success rate (over a full window) that closes a mastered activity
    min_obs: int = 3           # answers needed before an activity can open others
    w_init: float = 1.0        # weight of the first activities
    reward: str = "absolute"   # learning progress as reward: "absolute" or "positive" (max(0, lp))

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise BanditInputError(f"ZPDES: {msg}")

        if not 0.0 <= self.gamma <= 1.0:
            bad(f"gamma must lie in [0, 1], got {self.gamma}")
        if not 0.0 <= self.beta <= 1.0:
            bad(f"beta must lie in [0, 1], got {self.beta}")
        if not self.eta > 0:
            bad(f"eta must be > 0, got {self.eta}")
        if not (isinstance(self.window, int) and self.window >= 2):
            bad(f"window must be an integer >= 2, got {self.window}")
        if not 0.0 < self.activate <= 1.0 or not 0.0 < self.deactivate <= 1.0:
            bad("activate and deactivate must lie in (0, 1]")
        if self.deactivate < self.activate:
            bad(f"deactivate ({self.deactivate}) must be >= activate ({self.activate})")
        if not (isinstance(self.min_obs, int) and 1 <= self.min_obs <= self.window):
            bad(f"min_obs must be an integer in 1..window, got {self.min_obs}")
        if not self.w_init > 0:
            bad(f"w_init must be > 0, got {self.w_init}")
        if self.reward not in ("absolute", "positive"):
            bad(f"reward must be 'absolute' or 'positive', got {self.reward!r}")


def sample_rows(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of the (n, k) probability matrix ``p`` (zero-probability entries never drawn)."""
    cum = np.cumsum(p, axis=1)
    u = rng.random(p.shape[0]) * cum[:, -1]
    idx = (cum <= u[:, None]).sum(axis=1)
    return np.minimum(idx, p.shape[1] - 1)


class ZPDESBatch:
    """ZPDES for ``n_learners`` learners at once (see the module notes).

    Args:
        requires: per activity, the indices of its direct prerequisites.
        n_learners: learners (rows).
        params: :class:`ZPDESParams` (or keyword arguments).
        rng: random generator of the decisions.
    """

    name = "zpdes"

    def __init__(self, requires: list[list[int]], n_learners: int, rng: np.random.Generator,
                 params: ZPDESParams | None = None, **kw: Any) -> None:
        self.params = params or ZPDESParams(**kw)
        self.rng = rng
        A = len(requires)
        self.n_arms = A
        self.n = int(n_learners)
        self.requires = [sorted(int(r) for r in req) for req in requires]
        R = np.zeros((A, A), dtype=bool)
        for a, req in enumerate(self.requires):
            R[a, req] = True
        self._R = R
        self._children = [np.flatnonzero(R[:, a]) for a in range(A)]
        roots = ~R.any(axis=1)
        if not roots.any():
            raise BanditInputError("ZPDES: every activity has a prerequisite (a cycle?): nothing to start with")
        W = self.params.window
        self.w = np.where(roots, self.params.w_init, 0.0)[None, :].repeat(self.n, 0)
        self.zpd = roots[None, :].repeat(self.n, 0)
        self.opened = self.zpd.copy()          # ever entered the ZPD
        self.succeeded = np.zeros((self.n, A), dtype=bool)
        self.mastered = np.zeros((self.n, A), dtype=bool)
        self.hist = np.zeros((self.n, A, W), dtype=np.int8)
        self.count = np.zeros((self.n, A), dtype=np.int64)
        self._rows = np.arange(self.n)
        h = W // 2
        self._w_recent = np.zeros(W)
        self._w_recent[W - (W - h):] = 1.0 / (W - h)

    # ----------------------------------------------------------------------------------------- decide
    def probabilities(self) -> np.ndarray:
        """(learners, activities) decision probabilities; 0 outside the ZPD."""
        g = self.params.gamma
        w = np.where(self.zpd, self.w, 0.0)
        tot = w.sum(axis=1, keepdims=True)
        k = self.zpd.sum(axis=1, keepdims=True)
        uni = self.zpd / k
        exploit = np.divide(w, tot, out=uni.astype(float), where=tot > 0)
        return (1.0 - g) * exploit + g * uni

    def select(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.probabilities()
        acts = sample_rows(p, self.rng)
        return acts, p[self._rows, acts]

    # ----------------------------------------------------------------------------------------- learn
    def _window_stats(self, rows: np.ndarray, acts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Success rate over the last ``window`` answers, learning progress and answer count."""
        W = self.params.window
        c = self.count[rows, acts]
        m = np.minimum(c, W)
        order = (c[:, None] - m[:, None] + np.arange(W)[None, :]) % W      # oldest .. newest (first m valid)
        h = self.hist[rows[:, None], acts[:, None], order].astype(float)
        valid = np.arange(W)[None, :] < m[:, None]
        h = np.where(valid, h, 0.0)
        rate = h.sum(axis=1) / np.maximum(m, 1)
        # halves of the m valid answers: recent = last ceil(m/2), older = the rest
        n_recent = m - m // 2
        pos = np.arange(W)[None, :]
        recent = valid & (pos >= (m - n_recent)[:, None])
        older = valid & ~recent
        r_mean = np.where(recent, h, 0.0).sum(1) / np.maximum(recent.sum(1), 1)
        o_mean = np.where(older, h, 0.0).sum(1) / np.maximum(older.sum(1), 1)
        lp = np.where(m >= 2, r_mean - o_mean, 0.0)
        return rate, lp, c

    def update(self, acts: np.ndarray, correct: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Learn from one answer per learner (or per ``rows``); returns the rewards (learning progress)."""
        P = self.params
        rows = self._rows if rows is None else np.asarray(rows)
        acts = np.asarray(acts, dtype=np.int64)
        W = P.window
        self.hist[rows, acts, self.count[rows, acts] % W] = np.asarray(correct, dtype=np.int8)
        self.count[rows, acts] += 1
        rate, lp, c = self._window_stats(rows, acts)
        r = np.abs(lp) if P.reward == "absolute" else np.maximum(lp, 0.0)
        self.w[rows, acts] = P.beta * self.w[rows, acts] + P.eta * r
        # a newly succeeded activity opens the activities whose prerequisites are all succeeded
        newly = (c >= P.min_obs) & (rate >= P.activate) & ~self.succeeded[rows, acts]
        if newly.any():
            nr, na = rows[newly], acts[newly]
            self.succeeded[nr, na] = True
            for i, a in zip(nr.tolist(), na.tolist()):
                for b in self._children[a]:
                    if not self.opened[i, b] and self.succeeded[i, self.requires[b]].all():
                        self.opened[i, b] = True
                        self.zpd[i, b] = True
                        self.w[i, b] = max(float(self.w[i][self.zpd[i]].max()), P.w_init * 1e-3)
        # a mastered activity leaves the ZPD, unless it is the last one there
        done = (c >= W) & (rate >= P.deactivate) & self.zpd[rows, acts]
        if done.any():
            dr, da = rows[done], acts[done]
            keep = self.zpd[dr].sum(axis=1) <= 1
            dr, da = dr[~keep], da[~keep]
            self.zpd[dr, da] = False
            self.mastered[dr, da] = True
        return r

    # ----------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {"policy": "zpdes", "params": asdict(self.params), "requires": self.requires, "n": self.n,
                "w": self.w.tolist(), "zpd": self.zpd.tolist(), "opened": self.opened.tolist(),
                "succeeded": self.succeeded.tolist(), "mastered": self.mastered.tolist(),
                "hist": self.hist.tolist(), "count": self.count.tolist()}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.__init__(s["requires"], s["n"], self.rng, ZPDESParams(**s["params"]))  # type: ignore[misc]
        self.w = np.asarray(s["w"], dtype=float)
        self.zpd = np.asarray(s["zpd"], dtype=bool)
        self.opened = np.asarray(s["opened"], dtype=bool)
        self.succeeded = np.asarray(s["succeeded"], dtype=bool)
        self.mastered = np.asarray(s["mastered"], dtype=bool)
        self.hist = np.asarray(s["hist"], dtype=np.int8).reshape(self.n, self.n_arms, self.params.window)
        self.count = np.asarray(s["count"], dtype=np.int64)


class ZPDES(Policy):
    """ZPDES for one learner behind the bandit core's policy API (arms = activities).

    ``update(arms, rewards)`` takes the learner's outcomes (1 correct, 0 wrong; fractions allowed) and turns
    them into learning-progress rewards itself. Removed arms (``remove_arm``) are never chosen.

    Args:
        n_arms: number of activities.
        requires: per activity, its direct prerequisites (indices); ``None``: no prerequisites.
        seed: int or Generator.
        gamma, beta, eta, window, activate, deactivate, min_obs, w_init, reward: see :class:`ZPDESParams`.
    """

    reward_range = (0.0, 1.0)

    def __init__(self, n_arms: int, requires: list[list[int]] | None = None,
                 seed: int | np.random.Generator | None = None, **params: Any) -> None:
        super().__init__(n_arms, seed)
        req = [[] for _ in range(self._k)] if requires is None else [list(map(int, r)) for r in requires]
        if len(req) != self._k:
            raise BanditInputError(f"ZPDES: requires has {len(req)} entries for {self._k} arms")
        for a, r in enumerate(req):
            for b in r:
                if not 0 <= b < self._k or b == a:
                    raise BanditInputError(f"ZPDES: activity {a} requires unknown or same activity {b}")
        self._b = ZPDESBatch(req, 1, self.rng, ZPDESParams(**params))

    @property
    def zpd(self) -> np.ndarray:
        """Activities in the zone of proximal development now (indices)."""
        return np.flatnonzero(self._b.zpd[0] & self._active)

    @property
    def mastered_arms(self) -> np.ndarray:
        """Activities closed as mastered."""
        return np.flatnonzero(self._b.mastered[0])

    @property
    def weights(self) -> np.ndarray:
        return self._b.w[0].copy()

    def _probabilities(self, contexts: np.ndarray | None) -> np.ndarray:
        b = self._b
        if self._any_removed:
            zpd = b.zpd & self._active[None, :]
            if not zpd.any():   # everything left in the ZPD was removed: open the remaining roots
                zpd = self._active[None, :].copy()
            saved, b.zpd = b.zpd, zpd
            try:
                return b.probabilities()[0]
            finally:
                b.zpd = saved
        return b.probabilities()[0]

    def _select(self, n: int, contexts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        p = self._probabilities(None)
        arms = sample_rows(np.broadcast_to(p, (n, p.shape[0])), self.rng).astype(np.int64)
        return arms, p[arms]

    def _update(self, arms: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None,
                propensities: np.ndarray | None) -> None:
        for a, r in zip(arms.tolist(), rewards.tolist()):
            self._b.update(np.array([a]), np.array([r >= 0.5]), rows=np.array([0]))

    def _grow(self) -> None:
        b = self._b
        req = b.requires + [[]]
        state = b.state_dict()
        nb = ZPDESBatch(req, 1, self.rng, b.params)
        A = b.n_arms
        nb.w[:, :A] = b.w
        nb.w[0, A] = max(float(b.w[0][b.zpd[0]].max()) if b.zpd[0].any() else b.params.w_init, 1e-3)
        for f in ("zpd", "opened", "succeeded", "mastered", "count"):
            getattr(nb, f)[:, :A] = np.asarray(state[f])
        nb.zpd[0, A] = nb.opened[0, A] = True
        nb.hist[:, :A] = b.hist
        self._b = nb

    def _params(self) -> dict[str, Any]:
        return {"requires": self._b.requires[: self._k], **asdict(self._b.params)}

    @classmethod
    def _constructor_args(cls, state: dict[str, Any]) -> dict[str, Any]:
        args = dict(state["params"])
        args["n_arms"] = int(state["n_arms"])
        return args

    def _get_state(self) -> dict[str, Any]:
        s = self._b.state_dict()
        return {k: s[k] for k in ("w", "zpd", "opened", "succeeded", "mastered", "hist", "count")}

    def _set_state(self, state: dict[str, Any]) -> None:
        b = self._b
        full = {"params": asdict(b.params), "requires": b.requires, "n": 1, **state}
        b.load_state_dict(full)
        b.rng = self.rng
