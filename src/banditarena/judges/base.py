"""Judge protocol shared by every judge (pairwise LLM judge, verifier, reference similarity).

A judge sees one order of a pair: ``first`` is shown as Assistant A, ``second`` as Assistant B. The arena
asks for both orders of every pair and combines them with :func:`banditarena.judges.combine`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from banditarena.types import Generation, Judgment, Prompt, stable_hash


@dataclass
class JudgeRequest:
    prompt: Prompt
    first: Generation
    second: Generation


class Judge(ABC):
    """Abstract judge. ``version`` changes whenever its prompt or parsing changes (part of the cache key)."""

    name: str = "judge"
    version: str = "1"

    def identity(self) -> dict[str, Any]:
        return {"judge": type(self).__name__, "name": self.name, "version": self.version}

    def cache_key(self, request: JudgeRequest) -> str:
        p = request.prompt
        return stable_hash(
            {
                "id": self.identity(),
                "messages": p.messages,
                "reference": p.reference,
                "first": request.first.turns,
                "second": request.second.turns,
            }
        )

    @abstractmethod
    async def ajudge(
        self, requests: list[JudgeRequest], progress: Callable[[int], None] | None = None
    ) -> list[Judgment]:
        """Judge every request (same order). Unparsable output -> ``Judgment(ok=False, raw=...)``."""

    def attach_store(self, store: Any) -> None:
        """Called by the arena with its run store. A judge that calls a model routes those calls through the
        store's request cache (:class:`~banditarena.models.cached.CachedBackend`), so every reply is committed
        as it returns and never paid for twice."""

    def judge(self, requests: list[JudgeRequest]) -> list[Judgment]:
        return asyncio.run(self.ajudge(requests))

    async def aclose(self) -> None:
        """Release connections/models."""


class ReferenceAnswers:
    """For judges that compare answers with a reference answer (the reference-similarity and learned judges):
    the references they were given, and the one a request is judged against."""

    references: dict[str, str]
    reference_contestant: str | None

    def set_references(self, references: Mapping[str, str] | Iterable[Generation]) -> int:
        """Add references: a ``prompt_id -> text`` mapping, or generations (only those of
        ``reference_contestant`` are used when it is set). Returns how many were added."""
        n = 0
        if isinstance(references, Mapping):
            for pid, text in references.items():
                self.references[str(pid)] = str(text)
                n += 1
            return n
        for g in references:
            if g.ok and (self.reference_contestant is None or g.contestant == self.reference_contestant):
                self.references[g.prompt_id] = g.text
                n += 1
        return n

    def reference_for(self, request: JudgeRequest) -> str | None:
        """The reference text used for this request (explicit references first, then ``Prompt.reference``)."""
        return self.references.get(request.prompt.id) or request.prompt.reference
