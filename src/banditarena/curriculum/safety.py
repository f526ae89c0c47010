"""The safety check every generated hint passes before a child sees it.

Any object with ``score(texts: list[str]) -> list[result]`` works, where ``result.verdict`` is ``"safe"``,
``"unsafe"`` or ``"uncertain"`` and ``result.categories`` maps a category to the reason. Only ``"safe"`` passes.
The default is the project's safety scorer (``banditarena.safety.make_scorer()``): the trained offline
classifier together with the PII word list, the same scorer that screens the flywheel's training data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class SafetyResult:
    verdict: str                          # "safe" | "unsafe" | "uncertain"
    categories: dict[str, str] = field(default_factory=dict)  # category -> reason


class SafetyScorer(Protocol):
    def score(self, texts: list[str]) -> list[Any]: ...


def default_safety_scorer() -> Any:
    """The project's safety scorer, the one the flywheel screens training data with by default
    (:func:`banditarena.safety.make_scorer`: the trained offline classifier together with the word list and
    PII patterns: a text is unsafe if either says so)."""
    from banditarena.safety import make_scorer

    return make_scorer()


def scorer_name(scorer: Any) -> str:
    return str(getattr(scorer, "name", type(scorer).__name__))


def check_texts(scorer: Any, texts: list[str]) -> list[SafetyResult]:
    """Score ``texts``; a scorer that fails or answers malformed results makes every text ``uncertain``."""
    if not texts:
        return []
    try:
        res = list(scorer.score(list(texts)))
        if len(res) != len(texts):
            raise ValueError(f"{len(res)} results for {len(texts)} texts")
        out = []
        for r in res:
            verdict = str(getattr(r, "verdict", "uncertain"))
            if verdict not in ("safe", "unsafe", "uncertain"):
                verdict = "uncertain"
            cats = getattr(r, "categories", None) or {}
            out.append(SafetyResult(verdict, {str(k): str(v) for k, v in dict(cats).items()}))
        return out
    except Exception as exc:  # noqa: BLE001 - a broken scorer must never let a text through
        msg = " ".join(str(exc).split())[:200]
        return [SafetyResult("uncertain", {"scorer_error": f"{type(exc).__name__}: {msg}"}) for _ in texts]
