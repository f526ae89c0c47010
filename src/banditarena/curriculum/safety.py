"""The safety check every generated hint passes before a child sees it.

Any object with ``score(texts: list[str]) -> list[result]`` works, where ``result.verdict`` is ``"safe"``,
``"unsafe"`` or ``"uncertain"`` and ``result.categories`` maps a category to the reason. Only ``"safe"`` passes.
The default is the project's safety scorer (``banditarena.safety.default_scorer()``) when that module exists;
otherwise an adapter over the flywheel's offline filter (:class:`banditarena.flywheel.safety.DefaultSafetyFilter`:
PII patterns and a toxicity word list), which can say "unsafe" but never more than "safe" about what it misses.
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


class FlywheelFilterScorer:
    """Adapter: the flywheel's ``check(text) -> (.ok, .reasons)`` filter as a scorer."""

    def __init__(self, flt: Any = None) -> None:
        if flt is None:
            from banditarena.flywheel.safety import DefaultSafetyFilter

            flt = DefaultSafetyFilter()
        self.filter = flt
        self.name = f"flywheel:{getattr(flt, 'name', type(flt).__name__)}"

    def score(self, texts: list[str]) -> list[SafetyResult]:
        out = []
        for t in texts:
            v = self.filter.check(t)
            cats: dict[str, str] = {}
            for r in v.reasons:
                cat, _, why = str(r).partition(":")
                cats[cat.strip() or "flagged"] = why.strip() or str(r)
            out.append(SafetyResult("safe" if v.ok else "unsafe", cats))
        return out


def default_safety_scorer() -> Any:
    """The project's safety scorer when ``banditarena.safety`` exists, else the flywheel filter adapter."""
    try:
        from banditarena.safety import default_scorer  # type: ignore[attr-defined]
    except ImportError:
        return FlywheelFilterScorer()
    return default_scorer()


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
