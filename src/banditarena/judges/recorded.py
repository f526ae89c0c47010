"""A judge that replays recorded single-answer judgments (e.g. GPT-4's 1-10 scores in arena_bench_v1).

Paired with replayed answers it makes a fully offline arena whose verdicts come from a real strong judge:
score of each answer = the recorded score of that (model, question). Position-independent by construction.
Missing or null recorded scores give an invalid judgment (counted), never a tie.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from banditarena.errors import DataError
from banditarena.judges.base import Judge, JudgeRequest
from banditarena.text import iter_jsonl
from banditarena.types import Judgment, stable_hash


def load_recorded_scores(paths: list[str | Path]) -> dict[tuple[str, str], float | None]:
    """(model, question_id) -> score from FastChat single-answer judgment JSONL files."""
    scores: dict[tuple[str, str], float | None] = {}
    for path in paths:
        p = Path(path)
        for i, r in iter_jsonl(p):
            try:
                model, qid = str(r["model"]), str(r["question_id"])
            except (KeyError, TypeError) as exc:
                raise DataError(f"{p}:{i}: not a judgment record ({exc})") from exc
            s = r.get("score")
            scores[(model, qid)] = float(s) if isinstance(s, (int, float)) and s >= 0 else None
    return scores


class RecordedJudge(Judge):
    """Scores answers with recorded judgments. ``model_of`` maps contestant names to recorded model names."""

    batch_size = 256

    def __init__(self, paths: list[str | Path], *, name: str = "recorded-gpt-4",
                 model_of: Mapping[str, str] | Callable[[str], str] | None = None) -> None:
        self.name = name
        self.paths = [Path(p) for p in paths]
        self.scores = load_recorded_scores(self.paths)
        mapping = dict(model_of) if isinstance(model_of, Mapping) else {}
        self._model_of: Callable[[str], str] = model_of if callable(model_of) else (lambda n: mapping.get(n, n))
        self.model_of = mapping
        self.version = "recorded-1:" + stable_hash(sorted((f"{m}|{q}", s) for (m, q), s in self.scores.items()), 12)
        self.calls = 0

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "model_of": self.model_of}

    async def ajudge(self, requests: list[JudgeRequest], progress: Callable[[int], None] | None = None) -> list[Judgment]:
        out = []
        for r in requests:
            self.calls += 1
            a = self.scores.get((self._model_of(r.first.contestant), r.prompt.id))
            b = self.scores.get((self._model_of(r.second.contestant), r.prompt.id))
            ok = a is not None and b is not None
            out.append(Judgment(
                judge=self.name, prompt_id=r.prompt.id, first=r.first.contestant, second=r.second.contestant,
                score_first=a, score_second=b, ok=ok, raw=json.dumps({"first": a, "second": b}),
                error=None if ok else "no recorded score for one of the answers",
            ))
        if progress:
            progress(len(requests))
        return out
