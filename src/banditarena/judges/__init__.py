"""banditarena.judges: the judge protocol and every judge we ship.

* :class:`PairwiseLLMJudge` - an LLM over any backend, our own prompt, 1-10 scores (+ optional verdict).
* :class:`VerifierJudge` - checkable final answers against ``Prompt.reference``.
* :class:`ReferenceSimilarityJudge` - embedding cosine to a reference answer (a proxy).
* ``make_judge("recorded", paths=[...])`` - replays recorded single-answer scores
  (:mod:`banditarena.judges.recorded`, e.g. arena_bench_v1's GPT-4 judgments);
  ``make_judge("annotations", paths=[...])`` replays recorded pairwise annotations (AlpacaEval's GPT-4 Turbo).
* ``make_judge("learned")`` - the learned offline judge (:mod:`banditarena.judges.learned`), trained by
  ``banditarena judge train``; ``make_judge("cascade", cheap=..., expensive=..., threshold=...)`` - the
  cheap-first cascade (:mod:`banditarena.judges.cascade`).
* :func:`combine` - two orders -> one :class:`~banditarena.types.Battle`.
* :func:`make_judge` - build a judge from a recipe's ``kind`` and options.

Importing this package loads no model library. Bias and fairness audits of judges live in
:mod:`banditarena.audits`, pointwise reward models in :mod:`banditarena.rewards`, the prompt-difficulty rubric in
:mod:`banditarena.prompts.difficulty`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from banditarena.errors import JudgeError
from banditarena.judges.base import Judge, JudgeRequest
from banditarena.judges.combine import VERDICT_MARGIN, combine
from banditarena.judges.llm import DEFAULT_JUDGE_STRATEGY, RETRYABLE_PREFIX, PairwiseLLMJudge, is_retryable
from banditarena.judges.parsing import ParsedJudgment, parse_judgment
from banditarena.judges.reference import ReferenceSimilarityJudge, VerifierJudge
from banditarena.types import Strategy

if TYPE_CHECKING:
    from banditarena.config import JudgeConfig

_JUDGE_DECODING: dict[str, Any] = {k: v for k, v in DEFAULT_JUDGE_STRATEGY.cache_identity().items()
                                    if k in ("temperature", "top_p", "max_tokens")}

def _recorded(**options: Any) -> Judge:
    """The recorded-judgments judge (imported on use: it lives in its own module)."""
    from banditarena.judges.recorded import RecordedJudge

    return RecordedJudge(**options)


def _learned(**options: Any) -> Judge:
    """The learned offline judge (:mod:`banditarena.judges.learned`; options: artifact, references...)."""
    from banditarena.judges.learned import LearnedJudge

    return LearnedJudge(**options)


def _cascade(**options: Any) -> Judge:
    """The cheap-first cascade (:mod:`banditarena.judges.cascade`; options: cheap, expensive, threshold)."""
    from banditarena.judges.cascade import CascadeJudge

    return CascadeJudge(**options)


def _annotations(**options: Any) -> Judge:
    """Recorded pairwise annotations (:mod:`banditarena.judges.annotations`, e.g. AlpacaEval's GPT-4 Turbo)."""
    from banditarena.judges.annotations import AnnotationJudge

    return AnnotationJudge(**options)


_FACTORIES: dict[str, Callable[..., Judge]] = {
    "llm": PairwiseLLMJudge,
    "pairwise": PairwiseLLMJudge,
    "verifier": VerifierJudge,
    "similarity": ReferenceSimilarityJudge,
    "reference_similarity": ReferenceSimilarityJudge,
    "recorded": _recorded,
    "annotations": _annotations,
    "learned": _learned,
    "cascade": _cascade,
}


def register_judge(kind: str, factory: Callable[..., Judge]) -> None:
    """Make ``make_judge(kind, **options)`` call ``factory(**options)`` (e.g. reward-model judges)."""
    _FACTORIES[kind] = factory


def judge_kinds() -> list[str]:
    """The kinds :func:`make_judge` knows."""
    return sorted(_FACTORIES)


def make_judge(kind: str, **options: Any) -> Judge:
    """Build a judge: ``"llm"``/``"pairwise"`` (needs ``backend=``), ``"verifier"``, ``"similarity"``,
    ``"recorded"`` (needs ``paths=``), or any kind added with :func:`register_judge`.

    For the LLM judge, ``temperature``, ``top_p`` and ``max_tokens`` may be given instead of a ``strategy``.
    ``name=None`` means the judge's default name. Raises :class:`JudgeError` (one line) for an unknown kind or options the judge does not take.
    """
    factory = _FACTORIES.get(kind)
    if factory is None:
        raise JudgeError(f"unknown judge kind '{kind}' (known: {', '.join(judge_kinds())})")
    if factory is PairwiseLLMJudge:
        if "backend" not in options:
            raise JudgeError(f"judge kind '{kind}' needs a 'backend' option (the judge model's backend)")
        decoding = {k: options.pop(k) for k in ("temperature", "top_p", "max_tokens") if k in options}
        if decoding:
            if options.get("strategy") is not None:
                raise JudgeError(f"judge kind '{kind}': give either 'strategy' or {sorted(decoding)}, not both")
            try:
                options["strategy"] = Strategy(name="judge", **{**_JUDGE_DECODING, **decoding})
            except TypeError as exc:
                raise JudgeError(f"judge kind '{kind}': bad decoding options {sorted(decoding)}: {exc}") from exc
    options = {k: v for k, v in options.items() if not (k == "name" and v is None)}
    try:
        return factory(**options)
    except TypeError as exc:
        raise JudgeError(f"judge kind '{kind}': bad options {sorted(options)}: {exc}") from exc
    except ValueError as exc:
        raise JudgeError(f"judge kind '{kind}': {exc}") from exc


def judge_from_config(cfg: JudgeConfig, base_dir: Path | None = None) -> Judge:
    """The judge a recipe's ``judge:`` field describes (an LLM judge's endpoint paths resolve against
    ``base_dir``)."""
    from banditarena.judges.configured import EXTRA_KINDS, build_configured_judge

    if cfg.kind in EXTRA_KINDS:  # learned, recorded, cascade
        return build_configured_judge(cfg, base_dir, judge_from_config)
    if cfg.kind == "llm":
        from banditarena.models import backend_from_config

        assert cfg.endpoint is not None  # the config requires it
        decoding: dict[str, Any] = {"temperature": cfg.temperature}
        if cfg.max_tokens is not None:
            decoding["max_tokens"] = cfg.max_tokens
        return make_judge("llm", backend=backend_from_config(cfg.endpoint, base_dir), name=cfg.name,
                          verdict=cfg.verdict, **decoding)
    return make_judge(cfg.kind, name=cfg.name) if cfg.name else make_judge(cfg.kind)


__all__ = [
    "DEFAULT_JUDGE_STRATEGY",
    "RETRYABLE_PREFIX",
    "VERDICT_MARGIN",
    "Judge",
    "JudgeRequest",
    "PairwiseLLMJudge",
    "ParsedJudgment",
    "ReferenceSimilarityJudge",
    "VerifierJudge",
    "combine",
    "is_retryable",
    "judge_from_config",
    "judge_kinds",
    "make_judge",
    "parse_judgment",
    "register_judge",
]
