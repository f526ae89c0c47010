"""Combining scorers: a cascade (cheap first, escalate the uncertain) and a union (unsafe if any says so)."""

from __future__ import annotations

from typing import Any

from banditarena.safety.base import BaseScorer, SafetyResult, SafetyScorer, check_inputs


class CascadeScorer(BaseScorer):
    """The first scorer decides the clear cases; the texts it calls ``uncertain`` go to the second.

    With a :class:`~banditarena.safety.classifier.TrainedClassifier` first, its uncertain band is switched
    on (scores inside the band the artifact records are escalated). ``stats`` counts texts and escalations
    over this scorer's life; :attr:`share_escalated` is their ratio. An escalated text the second scorer
    cannot classify (endpoint down, unparsable output) stays ``uncertain`` and keeps the error.
    """

    name = "cascade"
    version = "cascade-1"

    def __init__(self, first: SafetyScorer, second: SafetyScorer) -> None:
        if hasattr(first, "uncertain") and isinstance(first.uncertain, bool):
            first.uncertain = True  # type: ignore[union-attr]
        self.first = first
        self.second = second
        self.name = f"cascade({first.name}->{second.name})"
        self.stats = {"texts": 0, "escalated": 0}

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "first": self.first.identity(), "second": self.second.identity()}

    @property
    def share_escalated(self) -> float:
        return self.stats["escalated"] / self.stats["texts"] if self.stats["texts"] else 0.0

    def score(self, texts: list[str], *, prompts: list[str] | None = None) -> list[SafetyResult]:
        texts, prompts = check_inputs(texts, prompts)
        out = list(self.first.score(texts, prompts=prompts))
        esc = [i for i, r in enumerate(out) if r.verdict == "uncertain"]
        self.stats["texts"] += len(texts)
        self.stats["escalated"] += len(esc)
        if esc:
            second = self.second.score([texts[i] for i in esc],
                                       prompts=None if prompts is None else [prompts[i] for i in esc])
            for i, r in zip(esc, second):
                r.escalated = True
                if r.verdict == "uncertain" and not r.error:
                    r.error = f"{self.second.name} could not decide either"
                r.categories = dict(r.categories)
                out[i] = r
        return out

    def close(self) -> None:
        for s in (self.first, self.second):
            close = getattr(s, "close", None)
            if callable(close):
                close()


class AnyOfScorer(BaseScorer):
    """Unsafe if any scorer says unsafe (categories merged), else uncertain if any is, else safe.

    The score is the highest of the scorers' scores. Used to keep the word list's PII patterns beside the
    trained classifier (``AnyOfScorer([classifier, WordListScorer()])``).
    """

    version = "anyof-1"

    def __init__(self, scorers: list[SafetyScorer]) -> None:
        if not scorers:
            raise ValueError("AnyOfScorer needs at least one scorer")
        self.scorers = list(scorers)
        self.name = "+".join(s.name for s in self.scorers)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "scorers": [s.identity() for s in self.scorers]}

    def score(self, texts: list[str], *, prompts: list[str] | None = None) -> list[SafetyResult]:
        texts, prompts = check_inputs(texts, prompts)
        per = [s.score(texts, prompts=prompts) for s in self.scorers]
        out = []
        for rs in zip(*per):
            unsafe = [r for r in rs if r.verdict == "unsafe"]
            unsure = [r for r in rs if r.verdict == "uncertain"]
            cats: dict[str, str] = {}
            for r in unsafe:
                for c, why in r.categories.items():
                    cats[c] = f"{cats[c]}; {why}" if c in cats else why
            verdict = "unsafe" if unsafe else "uncertain" if unsure else "safe"
            deciders = unsafe or unsure or list(rs)
            out.append(SafetyResult(verdict, max(r.score for r in rs), cats,
                                    scorer="+".join(r.scorer for r in deciders if r.scorer),
                                    error=next((r.error for r in unsure if r.error), None),
                                    escalated=any(r.escalated for r in rs), chunks=max(r.chunks for r in rs)))
        return out

    def close(self) -> None:
        for s in self.scorers:
            close = getattr(s, "close", None)
            if callable(close):
                close()
