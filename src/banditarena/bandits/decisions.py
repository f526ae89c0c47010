"""Decision logs: one JSON-able record per decision (arm, propensity, context, reward) for the run store and OPE."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from banditarena.bandits._common import BanditInputError


def context_hash(context: Any) -> str | None:
    """Stable 16-hex-digit hash of a context vector (float64 bytes), or ``None`` for no context."""
    if context is None:
        return None
    x = np.ascontiguousarray(np.asarray(context, dtype="<f8").reshape(-1))
    return hashlib.sha1(x.tobytes()).hexdigest()[:16]


def _opt_float(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


@dataclass
class DecisionRecord:
    """One logged decision. ``propensity`` is the probability the logging policy picked ``arm``
    (``None`` when it was not estimated); ``reward`` stays ``None`` until it arrives."""

    arm: int
    propensity: float | None
    context: list[float] | None = None
    reward: float | None = None
    step: int | None = None
    policy: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict: step, policy, arm, propensity, context, context_hash, reward (+ extra keys)."""
        d = {"step": self.step, "policy": self.policy, "arm": int(self.arm),
             "propensity": _opt_float(self.propensity),
             "context": None if self.context is None else [float(v) for v in self.context],
             "context_hash": context_hash(self.context), "reward": _opt_float(self.reward)}
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DecisionRecord:
        """Inverse of :meth:`to_dict` (unknown keys go to ``extra``)."""
        if "arm" not in d:
            raise BanditInputError("decision record: missing field 'arm'")
        known = {"step", "policy", "arm", "propensity", "context", "context_hash", "reward"}
        return cls(arm=int(d["arm"]), propensity=_opt_float(d.get("propensity")), context=d.get("context"),
                   reward=_opt_float(d.get("reward")), step=d.get("step"), policy=d.get("policy"),
                   extra={k: v for k, v in d.items() if k not in known})


def decision_records(arms: Any, propensities: Any, contexts: Any = None, rewards: Any = None, *,
                     policy: str | None = None, run: str | None = None, start_step: int = 0) -> list[dict[str, Any]]:
    """JSON-able rows (see :meth:`DecisionRecord.to_dict`) for a batch of decisions, e.g. straight from
    ``policy.select``: ``contexts`` is None, one shared ``(dim,)`` context or ``(n, dim)``; ``rewards`` is None
    (not known yet) or shape ``(n,)``; steps are numbered from ``start_step``; ``run`` is added when given."""
    log = DecisionLog(policy=policy, run=run, start_step=start_step)
    steps = log.record(arms, propensities, contexts)
    if rewards is not None:
        log.set_rewards(steps, rewards)
    return log.to_dicts()


class DecisionLog:
    """An in-memory decision log with delayed rewards.

    >>> log = DecisionLog(policy="LinUCB")
    >>> steps = log.record(arms, propensities, contexts)     # after policy.select(...)
    >>> log.set_rewards(steps, rewards)                       # whenever the rewards arrive
    >>> rows = log.to_dicts()                                 # JSON-able rows for the run store
    """

    def __init__(self, policy: str | None = None, run: str | None = None, start_step: int = 0) -> None:
        self.policy = policy
        self.run = run
        self.start_step = int(start_step)
        self._records: list[DecisionRecord] = []

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, step: int) -> DecisionRecord:
        return self._records[step - self.start_step]

    def record(self, arms: Any, propensities: Any, contexts: Any = None) -> np.ndarray:
        """Append decisions; ``contexts`` is None, one ``(dim,)`` context shared by all, or ``(n, dim)``.
        Returns their step numbers."""
        a = np.asarray(arms).reshape(-1)
        p = np.asarray(propensities, dtype=float).reshape(-1)
        if a.shape != p.shape:
            raise BanditInputError(f"record: arms has {a.shape[0]} entries but propensities has {p.shape[0]}")
        n = a.shape[0]
        ctx: list[list[float] | None]
        if contexts is None:
            ctx = [None] * n
        else:
            x = np.asarray(contexts, dtype=float)
            if x.ndim == 1:
                ctx = [x.tolist()] * n
            elif x.ndim == 2 and x.shape[0] == n:
                ctx = x.tolist()
            else:
                raise BanditInputError(f"record: contexts has shape {x.shape}, expected (dim,) or ({n}, dim)")
        start = self.start_step + len(self._records)
        extra = {} if self.run is None else {"run": self.run}
        for i in range(n):
            self._records.append(DecisionRecord(arm=int(a[i]), propensity=_opt_float(p[i]), context=ctx[i],
                                                step=start + i, policy=self.policy, extra=dict(extra)))
        return np.arange(start, start + n)

    def set_rewards(self, steps: Any, rewards: Any) -> None:
        """Attach (possibly delayed) rewards to earlier decisions, by the step numbers :meth:`record` returned."""
        s = np.asarray(steps).reshape(-1)
        r = np.asarray(rewards, dtype=float).reshape(-1)
        if s.shape != r.shape:
            raise BanditInputError(f"set_rewards: {s.shape[0]} steps but {r.shape[0]} rewards")
        for i in range(s.shape[0]):
            st = int(s[i])
            idx = st - self.start_step
            if not 0 <= idx < len(self._records):
                raise BanditInputError(f"set_rewards: unknown step {st}")
            if not math.isfinite(r[i]):
                raise BanditInputError(f"set_rewards: reward {r[i]} for step {st} is not finite")
            self._records[idx].reward = float(r[i])

    def records(self) -> list[DecisionRecord]:
        """All records (live objects)."""
        return list(self._records)

    def to_dicts(self) -> list[dict[str, Any]]:
        """JSON-able rows."""
        return [r.to_dict() for r in self._records]

    @classmethod
    def from_dicts(cls, rows: list[dict[str, Any]], policy: str | None = None) -> DecisionLog:
        """Rebuild a log from :meth:`to_dicts` rows (e.g. read back from the run store)."""
        log = cls(policy=policy)
        log._records = [DecisionRecord.from_dict(r) for r in rows]
        return log

    def arrays(self, rewarded_only: bool = True) -> dict[str, Any]:
        """Numpy view for off-policy evaluation: ``arms``, ``propensities``, ``rewards``, ``contexts`` (or None),
        ``steps``. With ``rewarded_only`` the decisions still waiting for a reward are left out."""
        recs = [r for r in self._records if r.reward is not None] if rewarded_only else self._records
        has_ctx = any(r.context is not None for r in recs)
        if has_ctx and any(r.context is None for r in recs):
            raise BanditInputError("arrays: some decisions have a context and some do not")
        return {
            "arms": np.array([r.arm for r in recs], dtype=np.int64),
            "propensities": np.array([np.nan if r.propensity is None else r.propensity for r in recs]),
            "rewards": np.array([np.nan if r.reward is None else r.reward for r in recs]),
            "contexts": np.array([r.context for r in recs], dtype=float) if has_ctx and recs else None,
            "steps": np.array([-1 if r.step is None else r.step for r in recs], dtype=np.int64),
        }
