"""banditarena.rewards: pointwise reward models, one score per answer (higher = better).

One protocol, ``score(prompt, answers) -> np.ndarray`` (:class:`RewardModel`, :class:`BaseRewardModel` with its
cost counters); the kinds LASeR routes between (:mod:`banditarena.laser.rm_registry` builds them by name):

* :mod:`banditarena.rewards.reward_models` - :class:`LikelihoodRM` (the policy's own log-likelihood),
  :class:`SequenceClassifierRM` (any HF reward-model checkpoint), :class:`VerifierRM` (the final answer checked),
  :class:`ReferenceSimilarityRM`, :class:`LearnedJudgeRM` (the learned offline judge against the reference),
  :class:`LLMJudgeRM` (a pointwise 1-10 LLM judge), :class:`NoisyRM` / :class:`CorruptedRM` (wrappers);
* :mod:`banditarena.rewards.partial_credit` - :class:`PartialCreditRM`, a verifier with credit for steps;
* :mod:`banditarena.rewards.gguf` - :class:`GGUFLikelihoodRM`, an external LM's likelihood through llama.cpp.

Pairwise judges (two answers, one verdict) are :mod:`banditarena.judges`. Importing this package loads no model
library.
"""

from __future__ import annotations

from banditarena.rewards.gguf import GGUFLikelihoodRM
from banditarena.rewards.partial_credit import PartialCreditRM
from banditarena.rewards.reward_models import (
    BaseRewardModel,
    CorruptedRM,
    LearnedJudgeRM,
    LikelihoodRM,
    LLMJudgeRM,
    NoisyRM,
    ReferenceSimilarityRM,
    RewardModel,
    SequenceClassifierRM,
    VerifierRM,
    as_messages,
)

__all__ = [
    "BaseRewardModel",
    "CorruptedRM",
    "GGUFLikelihoodRM",
    "LLMJudgeRM",
    "LearnedJudgeRM",
    "LikelihoodRM",
    "NoisyRM",
    "PartialCreditRM",
    "ReferenceSimilarityRM",
    "RewardModel",
    "SequenceClassifierRM",
    "VerifierRM",
    "as_messages",
]
