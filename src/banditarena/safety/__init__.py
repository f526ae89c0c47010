"""banditarena.safety: safety scorers for generated training data, behind one protocol.

Every scorer has a ``name``, a ``version``, ``identity()`` and
``score(texts, *, prompts=None) -> list[SafetyResult]`` (verdict ``safe``/``unsafe``/``uncertain``, a
probability-like unsafe ``score`` in [0, 1], ``categories`` mapping a hazard category to its reason):

* :class:`TrainedClassifier` - the offline default (:func:`default_scorer`): logistic heads over hashed word
  n-grams, trained by ``banditarena safety train`` on XSTest, HH-RLHF and AlpacaEval; shipped as a small
  npz + JSON artifact in ``banditarena/safety/artifacts``;
* :class:`WordListScorer` - the old word list and PII patterns (kept for PII);
* :class:`LlamaGuardScorer` - an LLM classifier over any backend in the Llama Guard format, cached in the
  run store and resumable;
* :class:`CascadeScorer` - the offline classifier decides clear cases and escalates uncertain ones;
  :class:`AnyOfScorer` - unsafe if any of several scorers says so.

:func:`make_scorer` builds one from a :class:`SafetyConfig` (the flywheel recipe's ``safety:`` field).
Importing this package loads no model and no scikit-learn.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from banditarena.config import EndpointConfig, Model
from banditarena.errors import ConfigError
from banditarena.safety.base import (
    HAZARD_CATEGORIES,
    VERDICTS,
    BaseScorer,
    SafetyResult,
    SafetyScorer,
    windows,
)
from banditarena.safety.cascade import AnyOfScorer, CascadeScorer
from banditarena.safety.wordlist import WordListScorer

if TYPE_CHECKING:
    from banditarena.safety.classifier import TrainedClassifier
    from banditarena.safety.llm import LlamaGuardScorer
    from banditarena.store import RunStore


class SafetyConfig(Model):
    """Which safety scorer the flywheel's data selection uses (the recipe's ``safety:`` field).

    ``scorer``: ``classifier`` (offline default), ``wordlist``, ``llamaguard`` (needs ``endpoint``) or
    ``cascade`` (classifier, escalating its uncertain band to the ``endpoint``'s Llama Guard classifier).
    ``wordlist``: also apply the word list + PII patterns (a text is unsafe if either says so).
    ``artifact``: another classifier manifest (default: the shipped one). ``threshold``: override its
    decision threshold. ``unsafe_prompts``: ``drop`` a row whose prompt is unsafe, or ``keep`` it when the
    chosen answer is safe (e.g. a refusal worth learning).
    """

    scorer: Literal["classifier", "wordlist", "llamaguard", "cascade"] = "classifier"
    wordlist: bool = True
    artifact: str | None = None
    threshold: float | None = Field(None, gt=0.0, lt=1.0)
    endpoint: EndpointConfig | None = None
    template: Literal["task", "native"] = "task"
    window: int = Field(6000, ge=200)  # llamaguard: characters per window
    unsafe_prompts: Literal["drop", "keep"] = "drop"

    @model_validator(mode="after")
    def _check(self) -> SafetyConfig:
        if self.scorer in ("llamaguard", "cascade") and self.endpoint is None:
            raise ValueError(f"safety scorer '{self.scorer}' needs endpoint (backend, model, base_url...)")
        return self


def default_scorer(path: str | Path | None = None) -> TrainedClassifier:
    """The shipped offline default: the trained classifier, loaded from its artifact (checked)."""
    from banditarena.safety.classifier import TrainedClassifier

    return TrainedClassifier(path)


def llm_scorer(endpoint: EndpointConfig, *, store: RunStore | None = None, template: str = "task",
               window: int = 6000, base_dir: Path | None = None, name: str | None = None) -> LlamaGuardScorer:
    """A :class:`LlamaGuardScorer` over the backend an endpoint config describes."""
    from banditarena.models import make_backend
    from banditarena.safety.llm import LlamaGuardScorer

    backend = make_backend(endpoint.backend, endpoint.model, **endpoint.options(base_dir))
    return LlamaGuardScorer(backend, store=store, template=template, window=window, name=name)  # type: ignore[arg-type]


def make_scorer(cfg: SafetyConfig | dict[str, Any] | str | None = None, *, store: RunStore | None = None,
                base_dir: Path | None = None) -> SafetyScorer:
    """Build the scorer a :class:`SafetyConfig` (or its dict, or just a scorer name) describes."""
    from banditarena.config import validate
    from banditarena.paths import resolve_path

    if cfg is None:
        cfg = SafetyConfig()
    elif isinstance(cfg, str):
        cfg = validate(SafetyConfig, {"scorer": cfg}, "safety")
    elif isinstance(cfg, dict):
        cfg = validate(SafetyConfig, cfg, "safety")
    if cfg.scorer == "wordlist":
        return WordListScorer()

    def classifier() -> Any:
        from banditarena.safety.classifier import TrainedClassifier

        path = resolve_path(cfg.artifact, base_dir) if cfg.artifact else None
        return TrainedClassifier(path, threshold=cfg.threshold)

    if cfg.scorer == "classifier":
        main: SafetyScorer = classifier()
    else:
        assert cfg.endpoint is not None
        llm = llm_scorer(cfg.endpoint, store=store, template=cfg.template, window=cfg.window, base_dir=base_dir)
        main = llm if cfg.scorer == "llamaguard" else CascadeScorer(classifier(), llm)
    return AnyOfScorer([main, WordListScorer()]) if cfg.wordlist else main


def scorer_names() -> list[str]:
    return ["classifier", "wordlist", "llamaguard", "cascade"]


def __getattr__(name: str) -> Any:  # lazy: these import numpy/scikit-learn/model code
    if name == "TrainedClassifier":
        from banditarena.safety.classifier import TrainedClassifier

        return TrainedClassifier
    if name == "LlamaGuardScorer":
        from banditarena.safety.llm import LlamaGuardScorer

        return LlamaGuardScorer
    raise AttributeError(f"module 'banditarena.safety' has no attribute {name!r}")


__all__ = [
    "HAZARD_CATEGORIES",
    "VERDICTS",
    "AnyOfScorer",
    "BaseScorer",
    "CascadeScorer",
    "ConfigError",
    "LlamaGuardScorer",
    "SafetyConfig",
    "SafetyResult",
    "SafetyScorer",
    "TrainedClassifier",
    "WordListScorer",
    "default_scorer",
    "llm_scorer",
    "make_scorer",
    "scorer_names",
    "windows",
]
