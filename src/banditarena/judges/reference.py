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
import re
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from banditarena.judges.base import Judge, JudgeRequest, ReferenceAnswers
from banditarena.judges.llm import RETRYABLE_PREFIX
from banditarena.types import Judgment, stable_hash

# ---------------------------------------------------------------------------------------- answers

_NUMBER = re.compile(
    r"(?<![\w.])(-|−)?\$?[ ]?"
    r"(\d+[ ]\d+/\d+(?![\d/])|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:\s?/\s?\d+(?:\.\d+)?)?|\.\d+)"
    r"(?![\d])"
)
_HASHES = re.compile(r"####\s*([^\n]*)")
_ANSWER_IS = re.compile(
    r"(?:final\s+answer|the\s+answer|answer)\s*(?:is|=|:)\s*:?\s*([^\n]{0,80})", re.IGNORECASE
)
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")


def _boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces)."""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    if not starts:
        return None
    i = starts[-1]
    depth = 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j]
    return None


def _to_fraction(token: str) -> Fraction | None:
    t = token.replace(",", "").strip()
    try:
        parts = t.split()
        if len(parts) == 2 and "/" in parts[1]:  # mixed number "1 1/2"
            num, den = parts[1].split("/")
            return Fraction(int(parts[0])) + Fraction(int(num), int(den))
        t = t.replace(" ", "")
        if "/" in t:
            num, den = t.split("/", 1)
            d = Fraction(den)
            return None if d == 0 else Fraction(num) / d
        return Fraction(t)
    except (ValueError, ZeroDivisionError):
        return None


def _numbers(text: str) -> list[Fraction]:
    text = _LATEX_FRAC.sub(r"\1/\2", text)
    out: list[Fraction] = []
    for m in _NUMBER.finditer(text):
        val = _to_fraction(m.group(2))
        if val is None:
            continue
        out.append(-val if m.group(1) else val)
    return out


def _canonical(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    f = float(value)
    s = f"{f:.10g}"
    return s if Fraction(s) == value else f"{value.numerator}/{value.denominator}"


def _clean_symbolic(text: str) -> str:
    t = re.sub(r"\\text\{([^{}]*)\}", r"\1", text)
    t = t.replace("$", "").replace("\\%", "").replace("%", "").replace("\\,", "").replace("\\!", "")
    return " ".join(t.split()).strip(" .").lower()


def extract_answer(text: str | None) -> str | None:
    """The final answer of a worked solution, as a canonical string (numbers: ``"18"``, ``"0.75"``).

    Looks, in order, at the last ``#### ...`` line (GSM8K), the last ``\\boxed{...}``, the last "the
    (final) answer is ...", and otherwise the last number in the text. Numbers may carry commas, ``$``,
    ``%``, decimals, signs, fractions (``3/4``, ``\\frac{3}{4}``) or be mixed numbers (``1 1/2``); they are
    returned in canonical form (``"1,234.50"`` -> ``"1234.5"``). A marked answer without any number (e.g.
    ``\\boxed{x+1}``) is returned as cleaned lower-case text. None when nothing is found.
    """
    if not text:
        return None
    boxed = _boxed(text)
    for candidate in (
        (m[-1] if (m := _HASHES.findall(text)) else None),
        boxed,
        (m[-1] if (m := _ANSWER_IS.findall(text)) else None),
    ):
        if candidate is None or not candidate.strip():
            continue
        if candidate is boxed:
            inner = _LATEX_FRAC.sub(r"\1/\2", re.sub(r"\\text\{[^{}]*\}", "", boxed))
            for tok in ("\\%", "\\$", "\\!", "\\,"):
                inner = inner.replace(tok, "")
            nums = _numbers(inner)
            if len(nums) == 1 and re.fullmatch(r"[\s$%\-−\d.,/]*", inner):
                return _canonical(nums[0])
            return _clean_symbolic(boxed) or None
        nums = _numbers(candidate)
        if nums:
            # "#### 18" or "the answer is $18 per day": the first number after the marker.
            return _canonical(nums[0])
        sym = _clean_symbolic(candidate)
        if sym:
            return sym
    nums = _numbers(text)
    return _canonical(nums[-1]) if nums else None


def _same(a: str, b: str, rel_tol: float) -> bool:
    fa, fb = _to_fraction(a) if re.fullmatch(r"-?[\d./]+", a) else None, \
        _to_fraction(b) if re.fullmatch(r"-?[\d./]+", b) else None
    if fa is not None and fb is not None:
        if fa == fb:
            return True
        if fa.denominator == 1 and fb.denominator == 1:  # two integers: exact
            return False
        return abs(float(fa) - float(fb)) <= rel_tol * max(1.0, abs(float(fb)))
    return a == b


def is_correct(text: str | None, reference: str | None, rel_tol: float = 1e-6) -> bool:
    """True when the final answer of ``text`` equals the reference's.

    ``reference`` may be a bare answer (``"18"``, ``"$1,200"``) or a full worked solution (GSM8K's
    ``... #### 18``); its answer is extracted the same way. Numbers compare by value (``0.75`` == ``3/4``):
    integers exactly, other numbers within ``rel_tol`` (relative, at least 1 absolute unit scale);
    other answers compare as cleaned text.
    """
    got, want = extract_answer(text), extract_answer(reference)
    if got is None or want is None:
        return False
    return _same(got, want, rel_tol)


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
        ok = [g is not None and _same(g, want, self.rel_tol) for g in got]
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
