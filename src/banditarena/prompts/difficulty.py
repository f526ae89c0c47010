"""An LLM judge of prompt difficulty (WizardArena's Offline-Hard selection), over any backend.

:class:`RubricScorer` asks the judge for a 1-10 difficulty on a rubric of seven criteria (specificity,
domain knowledge, complexity, problem solving, creativity, precision, real-world stakes) and parses the
reply (:func:`parse_difficulty`), asking once more with a format reminder when it cannot. It is a
:class:`~banditarena.prompts.testset.DifficultyScorer`, so ``prompts.build_testset`` takes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from banditarena.errors import ConfigError, DataError
from banditarena.prompts.testset import DifficultyScores
from banditarena.text import parse_difficulty
from banditarena.types import Prompt, Strategy

DEFAULT_RUBRIC = """You rate how hard a user's request is for an AI assistant to answer really well.

Consider these criteria:
1. Specificity: does it ask for a specific, well-defined output rather than an open chat?
2. Domain knowledge: does a good answer need specialised knowledge (science, law, medicine, an API, ...)?
3. Complexity: does it have several parts, constraints or steps that interact?
4. Problem solving: must the assistant reason, plan, derive or compute rather than recall?
5. Creativity: does it need an original approach, design or piece of writing?
6. Precision: must the answer be exactly right (code that runs, a correct number, a proof)?
7. Real-world stakes: would a mediocre answer fail a real user with a real task?

Scale: 1-2 trivial (a greeting, a common fact); 3-4 easy; 5-6 moderate; 7-8 hard (several criteria met);
9-10 expert level (most criteria met, exacting).

Write at most three short sentences naming the criteria the request meets, then finish with one line
exactly in this form:
Difficulty: N
where N is a whole number from 1 to 10. Do not answer the request itself."""

_RETRY_NUDGE = (
    "Your reply did not end with the required line. Reply with one line only: Difficulty: N (1-10)."
)

class RubricScorer:
    """Difficulty from an LLM judge over any backend, on :data:`DEFAULT_RUBRIC` (or yours).

    Args:
        backend: a :class:`banditarena.models.base.Backend`.
        strategy: decoding for the judge (default: greedy, 256 tokens).
        rubric: the system prompt; it must ask for a final ``Difficulty: N`` line.
        retries: extra attempts for an unparsable reply (the reply and a format reminder are sent back).
        max_chars: each user turn is cut to this many characters before it is shown to the judge.
    """

    def __init__(
        self,
        backend: Any,
        strategy: Strategy | None = None,
        *,
        rubric: str = DEFAULT_RUBRIC,
        retries: int = 1,
        max_chars: int = 6000,
    ) -> None:
        if retries < 0:
            raise ConfigError(f"retries must be >= 0, got {retries}")
        self.backend = backend
        self.strategy = strategy or Strategy(name="difficulty-rubric", temperature=0.0, max_tokens=256)
        self.rubric = rubric
        self.retries = int(retries)
        self.max_chars = int(max_chars)

    @property
    def method(self) -> str:
        return f"rubric:{getattr(self.backend, 'kind', type(self.backend).__name__)}:{getattr(self.backend, 'model', '')}"

    def _messages(self, p: Prompt) -> list[dict[str, str]]:
        turns = [t if len(t) <= self.max_chars else t[: self.max_chars] + " [...]" for t in p.user_turns]
        if len(turns) == 1:
            body = f"<request>\n{turns[0]}\n</request>"
        else:
            body = "\n".join(f"<turn {i + 1}>\n{t}\n</turn {i + 1}>" for i, t in enumerate(turns))
            body = "The user sends these turns in order:\n" + body
        return [
            {"role": "system", "content": self.rubric},
            {"role": "user", "content": body + "\n\nRate the difficulty of this request."},
        ]

    async def ascore(
        self, prompts: Sequence[Prompt], progress: Callable[[int], None] | None = None
    ) -> DifficultyScores:
        """Score every prompt (async). Failed or unparsable ones go to ``excluded``."""
        from banditarena.models.base import ChatRequest

        pool = list(prompts)
        if len({p.id for p in pool}) < len(pool):
            dup = next(p.id for i, p in enumerate(pool) if p.id in {q.id for q in pool[:i]})
            raise DataError(f"RubricScorer: duplicate prompt id '{dup}'")
        out = DifficultyScores(scores={}, method=self.method)
        convo = {p.id: self._messages(p) for p in pool}
        raws: dict[str, list[str]] = {p.id: [] for p in pool}
        pending = [p.id for p in pool]
        for attempt in range(self.retries + 1):
            if not pending:
                break
            reqs = [
                ChatRequest(
                    prompt_id=pid, turn=0, messages=list(convo[pid]), seed=None if attempt == 0 else attempt
                )
                for pid in pending
            ]
            comps = await self.backend.acomplete(reqs, self.strategy)
            if len(comps) != len(reqs):
                raise ConfigError(
                    f"backend {self.method} returned {len(comps)} completions for {len(reqs)} requests"
                )
            still: list[str] = []
            for pid, c in zip(pending, comps):
                if not c.ok:
                    out.excluded[pid] = f"backend error: {c.error}"
                    continue
                raws[pid].append(c.text)
                v = parse_difficulty(c.text)
                if v is None:
                    still.append(pid)
                    convo[pid] = convo[pid] + [
                        {"role": "assistant", "content": c.text},
                        {"role": "user", "content": _RETRY_NUDGE},
                    ]
                else:
                    out.scores[pid] = v
                    out.details[pid] = {"raw": c.text, "attempts": attempt + 1}
            if progress is not None:
                progress(len(pending) - len(still))
            pending = still
        for pid in pending:
            out.excluded[pid] = "unparsable: no 1-10 difficulty in the judge output"
            out.details[pid] = {"raw": raws[pid], "attempts": self.retries + 1}
        # keep pool order in the dict
        out.scores = {p.id: out.scores[p.id] for p in pool if p.id in out.scores}
        return out

    def score(self, prompts: Sequence[Prompt]) -> DifficultyScores:
        """Synchronous :meth:`ascore`."""
        return asyncio.run(self.ascore(prompts))
