"""Offline reference-guided judges: exact-answer verification and embedding similarity.

Both judges look at each answer alone against the prompt's reference, so they are deterministic and
position-independent by construction (swapping the order swaps the scores, nothing else).

* :class:`VerifierJudge` - checkable final answers (GSM8K ``#### n``, ``\\boxed{n}``, "the answer is n",
  or the last number in the text). Score 1 if the answer matches the reference, else 0: both right or
  both wrong is a tie.
* :class:`ReferenceSimilarityJudge` - cosine similarity of each answer to a reference answer (e.g.
  gpt-4-0314's) with all-MiniLM-L6-v2. This is a **proxy**: it rewards answers that talk about the same
  things in the same way as the reference, not answers that are correct or helpful; a short wrong answer
  that reuses the reference's words can beat a better one. Use it where no LLM judge is available and
  say so when reporting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np

from banditarena.judges.base import Judge, JudgeRequest, ReferenceAnswers
from banditarena.judges.llm import RETRYABLE_PREFIX
from banditarena.text import extract_answer, same_answer
from banditarena.types import Judgment, stable_hash

# ---------------------------------------------------------------------------------------- judges


def _pair_judgment(judge: Judge, r: JudgeRequest, key: str, **fields: Any) -> Judgment:
    return Judgment(judge=judge.name, prompt_id=r.prompt.id, first=r.first.contestant, second=r.second.contestant,
                    cache_key=key, **fields)


def _failed_generation(judge: Judge, r: JudgeRequest, key: str) -> Judgment | None:
    bad = [g for g in (r.first, r.second) if not g.ok]
    if not bad:
        return None
    return _pair_judgment(judge, r, key, ok=False, attempts=0,
                          error=f"{RETRYABLE_PREFIX}generation of '{bad[0].contestant}' for prompt "
                                f"'{r.prompt.id}' failed: {bad[0].error}")


class VerifierJudge(Judge):
    """Checks each answer's final answer against ``Prompt.reference``: score 1 if correct, else 0.

    A prompt without a checkable reference gives a final invalid judgment (``ok=False``, with ``raw`` and
    ``error`` naming the prompt). The verdict is not set; the scores decide (equal scores = tie).
    """

    version = "verifier-1"
    batch_size = 256

    def __init__(self, *, name: str = "verifier", rel_tol: float = 1e-6) -> None:
        self.name = name
        self.rel_tol = float(rel_tol)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "rel_tol": self.rel_tol}

    def judge_one(self, request: JudgeRequest) -> Judgment:
        """Judge one order synchronously (the verifier needs no I/O)."""
        key = self.cache_key(request)
        failed = _failed_generation(self, request, key)
        if failed is not None:
            return failed
        ref = request.prompt.reference
        if not ref or extract_answer(ref) is None:
            why = f"prompt '{request.prompt.id}' has no checkable reference answer"
            return _pair_judgment(self, request, key, ok=False, raw=why, error=why)
        want = extract_answer(ref)
        got = [extract_answer(g.text) for g in (request.first, request.second)]
        ok = [g is not None and same_answer(g, want, self.rel_tol) for g in got]
        why = "; ".join(
            f"{side}: {g if g is not None else 'no answer found'} ({'correct' if c else 'wrong'})"
            for side, g, c in zip("AB", got, ok)
        )
        return _pair_judgment(self, request, key, score_first=float(ok[0]), score_second=float(ok[1]),
                              rationale=f"reference answer {want}; {why}", raw=why, ok=True)

    async def ajudge(
        self, requests: list[JudgeRequest], progress: Callable[[int], None] | None = None
    ) -> list[Judgment]:
        out = [self.judge_one(r) for r in requests]
        if progress and out:
            progress(len(out))
        return out


class ReferenceSimilarityJudge(ReferenceAnswers, Judge):
    """Scores each answer by its embedding cosine to a reference answer (a proxy for quality).

    Parameters
    ----------
    embedder:
        Anything with ``encode(list[str]) -> (n, d)`` L2-normalised float array. Default: a
        :class:`banditarena.models.embed.Embedder` for all-MiniLM-L6-v2, loaded on first use.
    reference_contestant:
        Name of the contestant whose answers serve as the references (e.g. ``"gpt-4-0314"``). Feed its
        answers with :meth:`set_references`; they take precedence over ``Prompt.reference``. That
        contestant scores cosine 1 against its own reference and so wins every battle it is in under
        this judge: report it as the baseline, not as a contestant ranked by this judge.
    references:
        Mapping ``prompt_id -> reference text`` (alternative to :meth:`set_references`).
    scale:
        ``"1-10"`` (default): ``score = 1 + 9 * max(cosine, 0)``, comparable in range to LLM-judge scores.
        ``"cosine"``: the raw cosine in [-1, 1].
    tie_margin:
        When the two cosines differ by less than this, both answers get their mean score (a tie); tiny
        embedding differences are noise, not preference.
    """

    version = "similarity-1"
    batch_size = 256

    def __init__(
        self,
        embedder: Any | None = None,
        reference_contestant: str | None = None,
        *,
        references: Mapping[str, str] | None = None,
        scale: Literal["1-10", "cosine"] = "1-10",
        tie_margin: float = 0.01,
        name: str | None = None,
    ) -> None:
        if scale not in ("1-10", "cosine"):
            raise ValueError(f"scale must be '1-10' or 'cosine', got {scale!r}")
        if tie_margin < 0:
            raise ValueError("tie_margin must be >= 0")
        self._embedder = embedder
        self.reference_contestant = reference_contestant
        self.references: dict[str, str] = dict(references or {})
        self.scale = scale
        self.tie_margin = float(tie_margin)
        self.name = name or (f"similarity:{reference_contestant}" if reference_contestant else "similarity")
        self._cache: dict[str, np.ndarray] = {}

    @property
    def embedder(self) -> Any:
        if self._embedder is None:
            from banditarena.models.embed import Embedder

            self._embedder = Embedder(model="all-MiniLM-L6-v2")
        return self._embedder

    def _embedder_name(self) -> str:
        e = self._embedder
        if e is None:
            return "all-MiniLM-L6-v2"
        return str(getattr(e, "model_name", None) or getattr(e, "model", None) or type(e).__name__)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "embedder": self._embedder_name(), "scale": self.scale,
                "tie_margin": self.tie_margin, "reference_contestant": self.reference_contestant}

    def cache_key(self, request: JudgeRequest) -> str:
        p = request.prompt
        return stable_hash({"id": self.identity(), "messages": p.messages, "reference": self.reference_for(request),
                            "first": request.first.turns, "second": request.second.turns})

    def _encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        missing = sorted({t for t in texts if stable_hash(t) not in self._cache})
        if missing:
            vecs = np.asarray(self.embedder.encode(missing), dtype=np.float32)
            if vecs.ndim != 2 or vecs.shape[0] != len(missing):
                raise ValueError(f"embedder returned shape {vecs.shape} for {len(missing)} texts")
            norms = np.linalg.norm(vecs, axis=1, keepdims=True)
            vecs = vecs / np.where(norms > 0, norms, 1.0)
            for t, v in zip(missing, vecs):
                self._cache[stable_hash(t)] = v
        return {t: self._cache[stable_hash(t)] for t in texts}

    def _score(self, cos: float) -> float:
        return round(1.0 + 9.0 * max(cos, 0.0), 4) if self.scale == "1-10" else round(cos, 6)

    def judge_batch(self, requests: list[JudgeRequest]) -> list[Judgment]:
        """Judge synchronously (encodes every distinct text once)."""
        out: list[Judgment | None] = [None] * len(requests)
        texts: list[str] = []
        todo: list[tuple[int, str, str]] = []
        for i, r in enumerate(requests):
            key = self.cache_key(r)
            failed = _failed_generation(self, r, key)
            ref = self.reference_for(r)
            if failed is not None:
                out[i] = failed
            elif not ref or not ref.strip():
                why = f"prompt '{r.prompt.id}' has no reference answer" + (
                    f" from '{self.reference_contestant}'" if self.reference_contestant else "")
                out[i] = _pair_judgment(self, r, key, ok=False, raw=why, error=why)
            else:
                todo.append((i, key, ref))
                texts.extend([ref, r.first.text, r.second.text])
        vec = self._encode(texts) if texts else {}
        for i, key, ref in todo:
            r = requests[i]
            ca = float(np.dot(vec[ref], vec[r.first.text])) if r.first.text.strip() else 0.0
            cb = float(np.dot(vec[ref], vec[r.second.text])) if r.second.text.strip() else 0.0
            sa, sb = self._score(ca), self._score(cb)
            if abs(ca - cb) < self.tie_margin:
                sa = sb = round((sa + sb) / 2.0, 6)
            why = (f"cosine to the reference (a similarity proxy, not a quality judgment): "
                   f"A {ca:.4f}, B {cb:.4f}")
            out[i] = _pair_judgment(self, r, key, score_first=sa, score_second=sb, rationale=why, raw=why, ok=True)
        return [j for j in out if j is not None]

    async def ajudge(
        self, requests: list[JudgeRequest], progress: Callable[[int], None] | None = None
    ) -> list[Judgment]:
        out = await asyncio.to_thread(self.judge_batch, requests)
        if progress and out:
            progress(len(out))
        return out
