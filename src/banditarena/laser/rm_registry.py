"""Reward-model kinds by name: the recipe's ``reward_models[].kind`` is validated against :data:`RM_KINDS`.

Each kind is one builder ``(spec, shared) -> BaseRewardModel`` (``shared`` caches loaded models by path so two
RMs on one checkpoint load it once). Adding a kind is one :func:`register_rm_kind` call with a small builder
(``learned``, the learned judge of ``judges/learned.py``, is one); :class:`PointwiseRM` adapts any
pointwise scorer ``(prompt_messages, answer) -> float``. Noise and corruption wrap any kind (``noise_sigma``,
``corrupt_p``). Builders load eagerly, so a missing package or checkpoint fails before the run writes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from banditarena.errors import ConfigError
from banditarena.rewards.reward_models import BaseRewardModel

if TYPE_CHECKING:
    from banditarena.laser.recipe import RewardModelSpec

__all__ = ["RM_KINDS", "PointwiseRM", "build_reward_model", "register_rm_kind"]

Builder = Callable[["RewardModelSpec", dict[Any, Any]], BaseRewardModel]
#: kind -> (builder, fields the kind requires)
RM_KINDS: dict[str, tuple[Builder, tuple[str, ...]]] = {}


def register_rm_kind(kind: str, builder: Builder, requires: tuple[str, ...] = ()) -> None:
    """Make ``kind`` usable in recipes; ``requires`` names the spec fields it cannot do without."""
    RM_KINDS[kind] = (builder, requires)


class PointwiseRM(BaseRewardModel):
    """Any pointwise scorer ``fn(prompt_messages, answer) -> float`` as a reward model (NaN: no score)."""

    def __init__(self, fn: Callable[[list[dict[str, str]], str], float], *, name: str) -> None:
        super().__init__(name)
        self.fn = fn

    def _score_batch(self, prompts, answers, references):
        from banditarena.rewards.reward_models import as_messages

        return [np.array([float(self.fn(as_messages(p), a)) for a in ans], dtype=float)
                for p, ans in zip(prompts, answers)]


def _likelihood(spec: RewardModelSpec, shared: dict[Any, Any]) -> BaseRewardModel:
    from banditarena.rewards.reward_models import LikelihoodRM

    key = ("causal", spec.model)
    if key not in shared:
        shared[key] = LikelihoodRM(str(spec.model), name=spec.name).load()
    lm = shared[key]
    return LikelihoodRM(lm._model, tokenizer=lm._tok, name=spec.name, system_prompt=spec.system_prompt,
                        context_template=spec.context_template)


def _gguf(spec: RewardModelSpec, shared: dict[Any, Any]) -> BaseRewardModel:
    from banditarena.rewards.gguf import GGUFLikelihoodRM

    return GGUFLikelihoodRM(str(spec.model or "gemma3-270m"), name=spec.name, system_prompt=spec.system_prompt,
                            context_template=spec.context_template, threads=spec.threads).load()


def _classifier(spec: RewardModelSpec, shared: dict[Any, Any]) -> BaseRewardModel:
    from banditarena.rewards.reward_models import SequenceClassifierRM

    return SequenceClassifierRM(str(spec.model), name=spec.name).load()


def _verifier(spec: RewardModelSpec, shared: dict[Any, Any]) -> BaseRewardModel:
    from banditarena.rewards.reward_models import VerifierRM

    return VerifierRM(name=spec.name)


def _partial(spec: RewardModelSpec, shared: dict[Any, Any]) -> BaseRewardModel:
    from banditarena.rewards.partial_credit import PartialCreditRM

    return PartialCreditRM(name=spec.name)


def _refsim(spec: RewardModelSpec, shared: dict[Any, Any]) -> BaseRewardModel:
    from banditarena.rewards.reward_models import ReferenceSimilarityRM

    return ReferenceSimilarityRM(spec.method, name=spec.name)


def _learned(spec: RewardModelSpec, shared: dict[Any, Any]) -> BaseRewardModel:
    from banditarena.errors import JudgeError
    from banditarena.rewards.reward_models import LearnedJudgeRM

    try:  # model: the artifact (default, judge-learned-fast, PATH)
        return LearnedJudgeRM(spec.model, name=spec.name)
    except JudgeError as exc:
        raise ConfigError(f"reward model '{spec.name}': {exc}") from exc


def _llm_judge(spec: RewardModelSpec, shared: dict[Any, Any]) -> BaseRewardModel:
    from banditarena.models import backend_from_config
    from banditarena.rewards.reward_models import LLMJudgeRM

    assert spec.endpoint is not None  # required by the registry
    return LLMJudgeRM(backend_from_config(spec.endpoint), name=spec.name)


register_rm_kind("likelihood", _likelihood, ("model",))
register_rm_kind("gguf", _gguf)
register_rm_kind("classifier", _classifier, ("model",))
register_rm_kind("verifier", _verifier)
register_rm_kind("partial", _partial)
register_rm_kind("refsim", _refsim)
register_rm_kind("llm_judge", _llm_judge, ("endpoint",))
register_rm_kind("learned", _learned)


def build_reward_model(spec: RewardModelSpec, *, shared: dict[Any, Any] | None = None) -> BaseRewardModel:
    """A reward model from its recipe entry (wrappers: noise, then corruption)."""
    from banditarena.rewards.reward_models import CorruptedRM, NoisyRM

    if spec.kind not in RM_KINDS:
        raise ConfigError(f"reward model '{spec.name}': unknown kind '{spec.kind}' (known: {', '.join(RM_KINDS)})")
    rm = RM_KINDS[spec.kind][0](spec, shared if shared is not None else {})
    if spec.noise_sigma > 0:
        rm = NoisyRM(rm, spec.noise_sigma, name=spec.name)
    if spec.corrupt_p > 0:
        rm = CorruptedRM(rm, spec.corrupt_p, spec.corrupt_mode, name=spec.name)
    return rm
