"""The safety-scorer protocol every scorer follows, its result type, and the hazard taxonomy.

A scorer takes texts (and optionally, for answers, the prompts they answer) and returns one
:class:`SafetyResult` per text: a verdict (``safe`` / ``unsafe`` / ``uncertain``), a probability-like unsafe
score in [0, 1] and the categories it found, each with a reason a person can audit::

    results = scorer.score(["How do I kill a Python process?"])
    results = scorer.score(answers, prompts=questions)   # answers judged in the context of their prompts

``uncertain`` means the scorer could not decide: an LLM classifier whose endpoint failed or whose output
could not be parsed, or an offline score inside the band a cascade escalates. Callers that must be safe
(the flywheel's data selection) hold such texts back rather than keep them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from banditarena.types import stable_hash

Verdict = Literal["safe", "unsafe", "uncertain"]
VERDICTS: tuple[str, ...] = ("safe", "unsafe", "uncertain")

#: The MLCommons hazard taxonomy as Llama Guard 3 numbers it (S1..S14), plus our own PII category.
HAZARD_CATEGORIES: dict[str, str] = {
    "S1": "Violent Crimes",
    "S2": "Non-Violent Crimes",
    "S3": "Sex-Related Crimes",
    "S4": "Child Sexual Exploitation",
    "S5": "Defamation",
    "S6": "Specialized Advice",
    "S7": "Privacy",
    "S8": "Intellectual Property",
    "S9": "Indiscriminate Weapons",
    "S10": "Hate",
    "S11": "Suicide & Self-Harm",
    "S12": "Sexual Content",
    "S13": "Elections",
    "S14": "Code Interpreter Abuse",
}


@dataclass
class SafetyResult:
    """One text's safety assessment.

    ``score`` is probability-like (0 = surely safe, 1 = surely unsafe). ``categories`` maps a category
    (a hazard code such as ``"S1"``, ``"pii"``, ``"toxicity"`` or ``"harmful"``) to the reason it was flagged.
    ``error`` is set when the scorer failed on this text (the verdict is then ``uncertain``); ``escalated``
    when a cascade sent it to its second scorer; ``scorer`` names who decided.
    """

    verdict: Verdict
    score: float
    categories: dict[str, str] = field(default_factory=dict)
    scorer: str = ""
    error: str | None = None
    escalated: bool = False
    chunks: int = 1

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        s = float(self.score)
        if math.isnan(s) or s < 0.0 or s > 1.0:
            raise ValueError(f"score must be in [0, 1], got {self.score!r}")
        self.score = s

    @property
    def unsafe(self) -> bool:
        return self.verdict == "unsafe"

    @property
    def safe(self) -> bool:
        return self.verdict == "safe"

    @property
    def uncertain(self) -> bool:
        return self.verdict == "uncertain"

    def reasons(self) -> list[str]:
        """``"category: reason"`` lines (empty for a safe text)."""
        return [f"{c}: {r}" for c, r in self.categories.items()]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class SafetyScorer(Protocol):
    """What every safety scorer offers: a name, a version and :meth:`score`.

    ``identity()`` is everything that determines the scores (it goes into cache keys and manifests).
    """

    name: str
    version: str

    def identity(self) -> dict[str, Any]: ...

    def score(self, texts: list[str], *, prompts: list[str] | None = None) -> list[SafetyResult]: ...


class BaseScorer(ABC):
    """Shared plumbing: identity, argument checks, ``fingerprint``."""

    name: str = "scorer"
    version: str = "1"

    def identity(self) -> dict[str, Any]:
        return {"scorer": type(self).__name__, "name": self.name, "version": self.version}

    @property
    def fingerprint(self) -> str:
        """A short hash of :meth:`identity` (cache keys, manifests)."""
        return stable_hash(self.identity(), 16)

    @abstractmethod
    def score(self, texts: list[str], *, prompts: list[str] | None = None) -> list[SafetyResult]:
        """One verdict per text (``prompts``: the prompt each text answers, when known)."""

    def __call__(self, texts: list[str], *, prompts: list[str] | None = None) -> list[SafetyResult]:
        return self.score(texts, prompts=prompts)

    def close(self) -> None:
        """Release connections/models."""


def check_inputs(texts: Sequence[str], prompts: Sequence[str] | None) -> tuple[list[str], list[str] | None]:
    """Validate ``texts``/``prompts`` (lists of str, same length) and return them as lists."""
    if isinstance(texts, str):
        raise TypeError("texts must be a list of str, not a single str")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is a {type(t).__name__}, expected str")
    if prompts is None:
        return texts, None
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of str, not a single str")
    prompts = list(prompts)
    if len(prompts) != len(texts):
        raise ValueError(f"prompts has {len(prompts)} items for {len(texts)} texts")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise TypeError(f"prompts[{i}] is a {type(p).__name__}, expected str")
    return texts, prompts


def windows(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` covering ``text`` in windows of ``size`` with ``overlap``.

    Cuts fall on whitespace where one is near, so words are not split. A text no longer than ``size`` is
    one window; an empty text is one empty window.
    """
    if size <= 0:
        raise ValueError("window size must be > 0")
    if not 0 <= overlap < size:
        raise ValueError("overlap must be in [0, size)")
    n = len(text)
    if n <= size:
        return [(0, n)]
    spans = []
    start = 0
    while start < n:
        end = min(n, start + size)
        if end < n:
            cut = text.rfind(" ", start + size // 2, end)
            end = cut if cut > start else end
        spans.append((start, end))
        if end >= n:
            break
        nxt = end - overlap
        sp = text.find(" ", nxt, end)
        start = sp + 1 if sp >= 0 and nxt > start else max(nxt, start + 1)
    return spans
