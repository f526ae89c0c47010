"""Policies by name: the one list of policy names every recipe field is validated against.

``make_policy("thompson", n_arms=4, seed=0, **params)`` builds any policy of the core by its short name;
:data:`POLICIES` maps the names to classes. Recipes (the flywheel's dimensions, LASeR's selector, the tutor)
validate their policy fields against these names, so a new policy registered here is usable everywhere.
"""

from __future__ import annotations

import inspect
from typing import Any

from banditarena.bandits._common import BanditInputError
from banditarena.bandits.base import Policy
from banditarena.bandits.baselines import Fixed, Sequential, Uniform
from banditarena.bandits.context_free import (
    EXP3,
    KLUCB,
    UCB1,
    UCBV,
    DiscountedThompsonSampling,
    DiscountedUCB,
    EpsilonGreedy,
    SlidingWindowThompsonSampling,
    SlidingWindowUCB,
    ThompsonSampling,
)
from banditarena.bandits.linear import LinTS, LinUCB

#: short name -> policy class
POLICIES: dict[str, type[Policy]] = {
    "uniform": Uniform,
    "fixed": Fixed,
    "sequential": Sequential,
    "epsilon_greedy": EpsilonGreedy,
    "ucb1": UCB1,
    "klucb": KLUCB,
    "ucbv": UCBV,
    "thompson": ThompsonSampling,
    "exp3": EXP3,
    "sw_ucb": SlidingWindowUCB,
    "discounted_ucb": DiscountedUCB,
    "sw_thompson": SlidingWindowThompsonSampling,
    "discounted_thompson": DiscountedThompsonSampling,
    "linucb": LinUCB,
    "lints": LinTS,
}
CONTEXTUAL = frozenset({"linucb", "lints"})


def policy_names(contextual: bool | None = None) -> list[str]:
    """Registered names: all (None), only context-free (False) or only contextual (True) ones."""
    return [n for n in POLICIES if contextual is None or (n in CONTEXTUAL) == contextual]


def make_policy(name: str, n_arms: int, *, seed: Any = 0, **params: Any) -> Policy:
    """Build the policy ``name`` with ``n_arms`` arms; :class:`BanditInputError` (one line) for an unknown name
    or parameter."""
    cls = POLICIES.get(name)
    if cls is None:
        raise BanditInputError(f"unknown bandit policy '{name}' (known: {', '.join(POLICIES)})")
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "n_arms", "seed")]
    unknown = [p for p in params if p not in accepted]
    if unknown:
        raise BanditInputError(f"bandit policy '{name}': unknown parameter '{unknown[0]}' "
                               f"(parameters: {', '.join(accepted) or 'none'})")
    try:
        return cls(n_arms=n_arms, seed=seed, **params)
    except (TypeError, ValueError) as exc:
        raise BanditInputError(f"bandit policy '{name}': {' '.join(str(exc).split())}") from None
