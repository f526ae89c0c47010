"""A judge that replays recorded pairwise annotations: AlpacaEval's GPT-4 Turbo judgments.

AlpacaEval's ``annotations_*/MODEL.json`` files hold one judgment per instruction of a model's answer
(``output_2``) against the baseline's (``output_1``): ``preference`` in [1, 2] (weighted by the judge's
log-probabilities; 2 = ``output_2`` preferred) and the ``price_per_example`` paid for it in USD.

The judge is **content-addressed**: a request is answered when its instruction and its two answer texts are
exactly those of a recorded annotation (in either order), whatever the contestants are called; anything
else is an invalid judgment (``ok=False``, "no recorded annotation"), counted, never a tie. Scores are the
recorded probabilities: ``score_second = preference - 1`` and ``score_first = 2 - preference`` for the
recorded order (swapped for the other order), so the two orders of a pair always agree (position-flip
rate 0 by construction) and a preference of exactly 1.5 is a tie.

Price: each order carries half the recorded ``price_per_example``, so a battle (both orders) costs what
the annotation cost. :attr:`AnnotationJudge.price_usd` and :attr:`AnnotationJudge.calls` add up what was
replayed; each judgment's ``raw`` JSON carries its ``price_usd`` too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from banditarena.errors import DataError
from banditarena.judges.base import Judge, JudgeRequest
from banditarena.text import read_maybe_gzip
from banditarena.types import Judgment, stable_hash


def text_key(text: str) -> str:
    """Content address of one text (instruction or answer) for recorded-annotation look-ups."""
    return stable_hash(text.strip(), 24)


@dataclass(frozen=True)
class Annotation:
    """One recorded pairwise judgment: ``output_2`` against ``output_1`` on ``instruction``."""

    instruction: str
    output_1: str
    output_2: str
    generator_1: str
    generator_2: str
    preference: float  # in [1, 2]; 2 = output_2 preferred
    price_usd: float
    where: str

    @property
    def win_2(self) -> float:
        """Probability-like preference for ``output_2`` (``preference - 1``, in [0, 1])."""
        return self.preference - 1.0


@dataclass
class AnnotationSet:
    """Annotations read from files, with what was skipped and why (counted, never silently dropped)."""

    annotations: list[Annotation]
    skipped_nan: int = 0
    skipped_range: int = 0
    files: dict[str, str] | None = None  # file name -> sha256

    @property
    def skipped(self) -> int:
        return self.skipped_nan + self.skipped_range


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


ANNOTATION_SUFFIXES = (".json", ".json.gz")
"""Annotation files: AlpacaEval's JSON lists, plain or gzipped (``annotations_gpt4_turbo_more/*.json.gz``)."""


def load_annotations(paths: Iterable[str | Path]) -> AnnotationSet:
    """Read AlpacaEval annotation files (JSON lists, plain or gzipped). Preferences that are NaN/missing or outside [1, 2] are
    counted in ``skipped_nan``/``skipped_range`` and skipped. Raises :class:`DataError` naming ``file[k]``
    for a file that is not a JSON list or an entry without the instruction/outputs."""
    import hashlib

    out: list[Annotation] = []
    nan = bad = 0
    files: dict[str, str] = {}
    for path in paths:
        p = Path(path)
        try:
            raw = p.read_bytes()
            blob = read_maybe_gzip(p)
            data = json.loads(blob.decode("utf-8"))
        except OSError as exc:
            raise DataError(f"{p}: cannot read annotations ({exc.strerror or exc})") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{p}: not a JSON file of annotations ({' '.join(str(exc).split())})") from exc
        if not isinstance(data, list):
            raise DataError(f"{p}: annotations must be a JSON list of {{instruction, output_1, output_2, "
                            f"preference}} entries, got a JSON {type(data).__name__}")
        files[p.name] = hashlib.sha256(raw).hexdigest()
        for k, r in enumerate(data):
            where = f"{p}[{k}]"
            if not isinstance(r, dict) or not all(isinstance(r.get(f), str) for f in
                                                  ("instruction", "output_1", "output_2")):
                raise DataError(f"{where}: an annotation needs string 'instruction', 'output_1' and 'output_2'")
            pref = _float(r.get("preference"))
            if math.isnan(pref):
                nan += 1
                continue
            if not 1.0 <= pref <= 2.0:
                bad += 1
                continue
            price = _float(r.get("price_per_example"))
            out.append(Annotation(r["instruction"], r["output_1"], r["output_2"], str(r.get("generator_1", "")),
                                  str(r.get("generator_2", "")), pref, 0.0 if math.isnan(price) else price, where))
    return AnnotationSet(out, nan, bad, files)


class AnnotationJudge(Judge):
    """Replays recorded pairwise annotations (see the module docstring). ``paths``: annotation JSON files."""

    batch_size = 512
    version = "annotations-1"

    def __init__(self, paths: list[str | Path], *, name: str = "gpt4_turbo-recorded") -> None:
        self.name = name
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise DataError("recorded annotations: no annotation files given")
        loaded = load_annotations(self.paths)
        self.loaded = loaded
        self._index: dict[tuple[str, str, str], Annotation] = {}
        for a in loaded.annotations:
            self._index[(text_key(a.instruction), text_key(a.output_1), text_key(a.output_2))] = a
        self.version = "annotations-1:" + stable_hash(sorted((loaded.files or {}).items()), 12)
        self.calls = 0
        self.price_usd = 0.0

    def lookup(self, instruction: str, first: str, second: str) -> tuple[float, float, float] | None:
        """(score_first, score_second, price of this order) for two answers, or None when not recorded."""
        q, a, b = text_key(instruction), text_key(first), text_key(second)
        ann = self._index.get((q, a, b))
        if ann is not None:
            return 1.0 - ann.win_2, ann.win_2, ann.price_usd / 2
        ann = self._index.get((q, b, a))
        if ann is not None:
            return ann.win_2, 1.0 - ann.win_2, ann.price_usd / 2
        return None

    def judge_one(self, r: JudgeRequest) -> Judgment:
        got = self.lookup(r.prompt.text, r.first.text, r.second.text)
        base = {"judge": self.name, "prompt_id": r.prompt.id, "first": r.first.contestant,
                "second": r.second.contestant}
        if got is None:
            why = f"no recorded annotation of these two answers to prompt '{r.prompt.id}' in {len(self.paths)} file(s)"
            return Judgment(**base, ok=False, raw=why, error=why)
        sa, sb, price = got
        self.calls += 1
        self.price_usd += price
        raw = json.dumps({"score_first": round(sa, 6), "score_second": round(sb, 6), "price_usd": price})
        return Judgment(**base, score_first=round(sa, 6), score_second=round(sb, 6), ok=True, raw=raw,
                        rationale="recorded annotation", prob_first=round(sa, 6))

    async def ajudge(self, requests: list[JudgeRequest], progress: Callable[[int], None] | None = None) -> list[Judgment]:
        out = [self.judge_one(r) for r in requests]
        if progress and out:
            progress(len(out))
        return out


def price_of(judgment: Judgment) -> float:
    """The ``price_usd`` a judgment's raw JSON records (0 when none)."""
    try:
        return float(json.loads(judgment.raw).get("price_usd", 0.0))
    except (ValueError, TypeError, AttributeError):
        return 0.0
