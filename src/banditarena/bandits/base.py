"""The policy base class: one API (``select`` / ``update`` / arms at runtime / JSON-safe state) for every bandit."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from banditarena.bandits._common import (
    BanditInputError,
    check_positive_int,
    make_rng,
    rng_from_state,
    rng_state,
)

_REGISTRY: dict[str, type[Policy]] = {}


class Policy(ABC):
    """Base class of every bandit policy.

    Arms are integer indices ``0 .. n_arms-1``. Indices are stable: :meth:`remove_arm` retires an arm (it is never
    selected again and its index is never reused, so delayed rewards for it are still accepted), and
    :meth:`add_arm` returns the next free index.

    Subclasses implement ``_select(n, contexts)``, ``_update(arms, rewards, contexts, propensities)``,
    ``_probabilities(contexts)``, ``_grow()`` and ``_params()`` / ``_get_state()`` / ``_set_state()``.
    """

    #: ``None`` for context-free policies, else the context dimension.
    dim: int | None = None
    #: (low, high) rewards must lie in, or ``None`` for any finite reward.
    reward_range: tuple[float, float] | None = None
    _name: ClassVar[str] = "policy"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    def __init__(self, n_arms: int, seed: int | np.random.Generator | None = None) -> None:
        self._k = check_positive_int("n_arms", n_arms)
        self._active = np.ones(self._k, dtype=bool)
        self._any_removed = False
        self.rng = make_rng(seed)

    # ------------------------------------------------------------------ arms
    @property
    def n_arms(self) -> int:
        """Number of arm indices allocated so far (removed arms keep their index)."""
        return self._k

    @property
    def active_arms(self) -> np.ndarray:
        """Indices of the arms that can still be selected."""
        return np.flatnonzero(self._active)

    def add_arm(self) -> int:
        """Add a fresh arm (prior state) and return its index."""
        self._grow()
        self._k += 1
        self._active = np.append(self._active, True)
        return self._k - 1

    def remove_arm(self, arm: int) -> None:
        """Retire ``arm``: it is never selected again; late rewards for it are still accepted."""
        if isinstance(arm, bool) or not isinstance(arm, (int, np.integer)) or not 0 <= int(arm) < self._k:
            raise BanditInputError(f"remove_arm: unknown arm {arm!r} (arms are 0..{self._k - 1})")
        if not self._active[int(arm)]:
            raise BanditInputError(f"remove_arm: arm {int(arm)} was already removed")
        if int(self._active.sum()) == 1:
            raise BanditInputError(f"remove_arm: arm {int(arm)} is the last active arm")
        self._active[int(arm)] = False
        self._any_removed = True

    # --------------------------------------------------------------- select
    def select(self, n: int = 1, context: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Choose ``n`` arms.

        Args:
            n: number of decisions, all taken from the current state (no update in between).
            context: ``None`` (context-free), shape ``(dim,)`` shared by all ``n`` decisions, or ``(n, dim)``.
                Context-free policies ignore it.

        Returns:
            ``(arms, propensities)``: int64 array of shape ``(n,)`` and float array of shape ``(n,)`` holding the
            probability that the policy picks that arm (exact, or Monte-Carlo estimated for Thompson sampling).
        """
        if n.__class__ is not int:
            n = check_positive_int("n", n)
        elif n < 1:
            raise BanditInputError(f"n must be an integer >= 1, got {n!r}")
        ctx = self._check_context(context, n) if self.dim is not None else None
        return self._select(n, ctx)

    def probabilities(self, context: Any = None) -> np.ndarray:
        """The policy's current distribution over arms.

        Returns shape ``(n_arms,)`` for context-free policies or a shared ``(dim,)`` context, and ``(n, n_arms)``
        for an ``(n, dim)`` context. Rows sum to 1; removed arms get 0. Thompson sampling estimates it by
        Monte-Carlo.
        """
        if self.dim is None:
            return self._probabilities(None)
        ctx = self._check_context(context, None)
        p = self._probabilities(ctx)
        return p[0] if np.ndim(context) == 1 else p

    # --------------------------------------------------------------- update
    def update(self, arms: Any, rewards: Any, contexts: Any = None, propensities: Any = None) -> None:
        """Learn from rewards of earlier decisions (any delay, any batch size).

        Args:
            arms: shape ``(m,)`` arm indices (an int is taken as one decision).
            rewards: shape ``(m,)`` finite rewards (inside :attr:`reward_range` when it is set).
            contexts: shape ``(m, dim)`` for contextual policies (``(dim,)`` for one decision); ignored otherwise.
            propensities: optional shape ``(m,)`` probabilities the arms were chosen with; EXP3 uses them for its
                importance weights (delayed rewards), the other policies ignore them.
        """
        a, r = self._check_update(arms, rewards)
        if a.shape[0] == 0:
            return
        ctx = None
        if self.dim is not None:
            if contexts is None:
                raise BanditInputError(f"update: contexts of shape (m, {self.dim}) are required by {type(self).__name__}")
            ctx = self._check_context(contexts, a.shape[0], name="contexts")
            if a.shape[0] > 1 and ctx.shape[0] == 1 and np.ndim(contexts) == 1:
                ctx = np.broadcast_to(ctx, (a.shape[0], self.dim))
        prop = None
        if propensities is not None:
            prop = np.asarray(propensities, dtype=float).reshape(-1)
            if prop.shape != a.shape:
                raise BanditInputError(f"update: propensities has shape {prop.shape}, expected {a.shape}")
            if not np.all((prop > 0) & (prop <= 1)):
                raise BanditInputError("update: propensities must lie in (0, 1]")
        self._update(a, r, ctx, prop)

    # ------------------------------------------------------------ validation
    def _check_update(self, arms: Any, rewards: Any) -> tuple[np.ndarray, np.ndarray]:
        a = arms if arms.__class__ is np.ndarray else np.asarray(arms)
        if a.ndim != 1:
            a = a.reshape(-1)
        if a.dtype.kind not in "iu":
            if a.dtype.kind == "f" and a.size and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
                a = a.astype(np.int64)
            elif a.size:
                raise BanditInputError(f"update: arms must be integer indices, got dtype {a.dtype}")
            else:
                a = a.astype(np.int64)
        r = rewards if (rewards.__class__ is np.ndarray and rewards.dtype == np.float64) else np.asarray(
            rewards, dtype=np.float64)
        if r.ndim != 1:
            r = r.reshape(-1)
        m = a.shape[0]
        if r.shape[0] != m:
            raise BanditInputError(f"update: arms has {m} entries but rewards has {r.shape[0]}")
        if m == 1:
            ai = int(a[0])
            if not 0 <= ai < self._k:
                raise BanditInputError(f"update: unknown arm {ai} (arms are 0..{self._k - 1})")
            rv = float(r[0])
            if not math.isfinite(rv):
                raise BanditInputError(f"update: reward {rv} at index 0 is not finite")
            if self.reward_range is not None and not self.reward_range[0] <= rv <= self.reward_range[1]:
                lo, hi = self.reward_range
                raise BanditInputError(
                    f"update: reward {rv} at index 0 is outside the declared range [{lo}, {hi}] of "
                    f"{type(self).__name__}")
            return a, r
        if m:
            lo_a, hi_a = int(a.min()), int(a.max())
            if lo_a < 0 or hi_a >= self._k:
                bad = int(np.flatnonzero((a < 0) | (a >= self._k))[0])
                raise BanditInputError(
                    f"update: unknown arm {int(a[bad])} at index {bad} (arms are 0..{self._k - 1})")
            fin = np.isfinite(r)
            if not fin.all():
                bad = int(np.flatnonzero(~fin)[0])
                raise BanditInputError(f"update: reward {r[bad]} at index {bad} is not finite")
            if self.reward_range is not None:
                lo, hi = self.reward_range
                out = (r < lo) | (r > hi)
                if out.any():
                    bad = int(np.flatnonzero(out)[0])
                    raise BanditInputError(
                        f"update: reward {r[bad]} at index {bad} is outside the declared range [{lo}, {hi}] of "
                        f"{type(self).__name__}")
        return a, r

    def _check_context(self, context: Any, n: int | None, name: str = "context") -> np.ndarray:
        """Return contexts as float64 ``(n, dim)`` (or ``(1, dim)`` when one context is shared)."""
        d = self.dim
        if context is None:
            raise BanditInputError(f"{name} of dimension {d} is required by {type(self).__name__}")
        x = context if (context.__class__ is np.ndarray and context.dtype == np.float64) else np.asarray(
            context, dtype=np.float64)
        if x.ndim == 1:
            if x.shape[0] != d:
                raise BanditInputError(
                    f"{name} has dimension {x.shape[0]} but {type(self).__name__} expects dim={d}")
            x = x.reshape(1, -1)
        elif x.ndim == 2:
            if x.shape[1] != d:
                raise BanditInputError(
                    f"{name} has dimension {x.shape[1]} but {type(self).__name__} expects dim={d}")
            if n is not None and x.shape[0] != n:
                raise BanditInputError(f"{name} has {x.shape[0]} rows but {n} decisions were asked for")
        else:
            raise BanditInputError(f"{name} must have shape ({d},) or (n, {d}), got {x.shape}")
        if x.size <= 4096:
            finite = bool(np.isfinite(x).all())
        else:  # no big temporary: NaN propagates through min/max
            finite = math.isfinite(x.min()) and math.isfinite(x.max())
        if not finite:
            raise BanditInputError(f"{name} contains NaN or infinite values")
        return x

    def _no_active_check(self) -> None:
        if not self._active.any():
            raise BanditInputError("select: no active arms")

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot (plain dicts, lists, floats, ints, strings): ``json.dumps`` works, no pickle."""
        return {
            "policy": type(self).__name__,
            "version": 1,
            "params": self._params(),
            "n_arms": self._k,
            "active": self._active.tolist(),
            "state": self._get_state(),
            "rng": rng_state(self.rng),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` snapshot; future decisions are identical to the original's."""
        try:
            if state["policy"] != type(self).__name__:
                raise BanditInputError(
                    f"load_state_dict: snapshot is of {state['policy']}, not {type(self).__name__}")
            fresh = type(self)(**self._constructor_args(state))
            self.__dict__.update(fresh.__dict__)
            self._k = int(state["n_arms"])
            self._active = np.asarray(state["active"], dtype=bool)
            self._any_removed = not bool(self._active.all())
            self._set_state(state["state"])
            self.rng = rng_from_state(state["rng"])
        except KeyError as exc:
            raise BanditInputError(f"load_state_dict: missing field {exc}") from None

    @classmethod
    def _constructor_args(cls, state: dict[str, Any]) -> dict[str, Any]:
        args = dict(state["params"])
        args["n_arms"] = int(state["n_arms"])
        return args

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}(n_arms={self._k}, {params})"

    # --------------------------------------------------------- to implement
    @abstractmethod
    def _select(self, n: int, contexts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Subclass hook."""

    @abstractmethod
    def _update(self, arms: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None,
                propensities: np.ndarray | None) -> None:
        """Subclass hook."""

    @abstractmethod
    def _probabilities(self, contexts: np.ndarray | None) -> np.ndarray:
        """Subclass hook."""

    @abstractmethod
    def _grow(self) -> None:
        """Subclass hook."""

    @abstractmethod
    def _params(self) -> dict[str, Any]:
        """Subclass hook."""

    @abstractmethod
    def _get_state(self) -> dict[str, Any]:
        """Subclass hook."""

    @abstractmethod
    def _set_state(self, state: dict[str, Any]) -> None:
        """Subclass hook."""


def from_state_dict(state: dict[str, Any]) -> Policy:
    """Build the right policy class from a :meth:`Policy.state_dict` snapshot."""
    if not isinstance(state, dict) or "policy" not in state:
        raise BanditInputError("from_state_dict: not a policy snapshot (no 'policy' field)")
    cls = _REGISTRY.get(state["policy"])
    if cls is None:
        raise BanditInputError(f"from_state_dict: unknown policy {state['policy']!r}")
    obj = cls(**cls._constructor_args(state))
    obj.load_state_dict(state)
    return obj
