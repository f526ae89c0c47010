"""Compatibility shim: the word-list + PII filter now lives in :mod:`banditarena.safety.wordlist`.

``DefaultSafetyFilter().check(text)`` keeps its old shape (``SafetyVerdict(ok, reasons)``); new code uses
the scorers of :mod:`banditarena.safety` (``score(texts, prompts=...) -> [SafetyResult]``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from banditarena.safety.wordlist import WordListScorer, pii_reasons, toxicity_reasons


@dataclass
class SafetyVerdict:
    ok: bool
    reasons: list[str] = field(default_factory=list)


class SafetyFilter(Protocol):
    name: str

    def check(self, text: str) -> SafetyVerdict: ...


class DefaultSafetyFilter:
    """Offline PII + toxicity filter (the word list). ``pii``/``toxicity`` switch the two halves."""

    name = "default-offline-v1"

    def __init__(self, *, pii: bool = True, toxicity: bool = True) -> None:
        self._scorer = WordListScorer(pii=pii, toxicity=toxicity)

    def check(self, text: str) -> SafetyVerdict:
        reasons = [why for _, why in self._scorer.reasons(text)]
        return SafetyVerdict(ok=not reasons, reasons=reasons)

    @staticmethod
    def _pii(text: str) -> list[str]:
        return pii_reasons(text)


def filter_rows(texts: Iterable[str], flt: SafetyFilter | None = None) -> list[SafetyVerdict]:
    flt = flt or DefaultSafetyFilter()
    return [flt.check(t) for t in texts]


__all__ = ["DefaultSafetyFilter", "SafetyFilter", "SafetyVerdict", "filter_rows", "toxicity_reasons"]
