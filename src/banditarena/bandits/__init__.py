"""banditarena.bandits: a pure numpy bandit core.

Every policy has the same API: ``select(n=1, context=None) -> (arms, propensities)``,
``update(arms, rewards, contexts=None)``, ``add_arm()``, ``remove_arm(i)``, ``state_dict()`` /
``load_state_dict()`` and ``n_arms``. Decisions can be logged (:class:`DecisionLog`) and used for off-policy
evaluation (:func:`ips`, :func:`snips`, :func:`doubly_robust`). :func:`make_policy` builds any policy by its
short name (:data:`POLICIES`), the one list recipes validate against. This package imports nothing else from
banditarena.
"""

from banditarena.bandits._common import BanditInputError
from banditarena.bandits.base import Policy, from_state_dict
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
from banditarena.bandits.decisions import DecisionLog, DecisionRecord, context_hash, decision_records
from banditarena.bandits.linear import LinTS, LinUCB
from banditarena.bandits.ope import OPEEstimate, doubly_robust, ips, snips, target_probabilities
from banditarena.bandits.registry import POLICIES, make_policy, policy_names
from banditarena.bandits.rewards import LearningProgress, QuantileNormalizer
from banditarena.bandits.sim import (
    AdversarialEnv,
    BernoulliEnv,
    DriftingEnv,
    Environment,
    GaussianEnv,
    LinearEnv,
    PiecewiseStationaryEnv,
    RegretCurve,
    Round,
    SimulationResult,
    SupervisedEnv,
    plot_regret,
    regret_curves,
    simulate,
)

__all__ = [
    "EXP3",
    "KLUCB",
    "POLICIES",
    "UCB1",
    "UCBV",
    "AdversarialEnv",
    "BanditInputError",
    "BernoulliEnv",
    "DecisionLog",
    "DecisionRecord",
    "DiscountedThompsonSampling",
    "DiscountedUCB",
    "DriftingEnv",
    "Environment",
    "EpsilonGreedy",
    "Fixed",
    "GaussianEnv",
    "LearningProgress",
    "LinTS",
    "LinUCB",
    "LinearEnv",
    "OPEEstimate",
    "PiecewiseStationaryEnv",
    "Policy",
    "QuantileNormalizer",
    "RegretCurve",
    "Round",
    "Sequential",
    "SimulationResult",
    "SlidingWindowThompsonSampling",
    "SlidingWindowUCB",
    "SupervisedEnv",
    "ThompsonSampling",
    "Uniform",
    "context_hash",
    "decision_records",
    "doubly_robust",
    "from_state_dict",
    "ips",
    "make_policy",
    "plot_regret",
    "policy_names",
    "regret_curves",
    "simulate",
    "snips",
    "target_probabilities",
]
