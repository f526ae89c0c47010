"""Answer-text utilities: the one place for reading JSONL/JSON files and for what the library reads out of an
answer's text.

* files: :func:`iter_jsonl` (``(line, record)`` per non-blank line, gzip-aware), :func:`read_json`,
  :func:`read_maybe_gzip`, :func:`expand_files` (files and folders of files, as recipe fields name them);
* GSM8K: :func:`iter_gsm8k` (the rows of a GSM8K JSONL file), :func:`gsm8k_final` (the answer after ``####``);
* final answers: :func:`extract_answer` (``#### n``, ``\\boxed{n}``, "the answer is n", the last number),
  :func:`same_answer`, :func:`is_correct`;
* 1-10 scores in a judge's reply: :func:`parse_rating` (a pointwise rating; NaN when there is none) and
  :func:`parse_difficulty` (a prompt's difficulty; None when there is none);
* markdown counts: the header, list-item and bold patterns and :func:`style_counts` (defined with the style
  features in :mod:`banditarena.ratings.style`, which imports nothing else of banditarena).

Errors a user can cause (a missing file, bad JSON, bytes that are not UTF-8) raise :class:`DataError` naming
``path:line``.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

from banditarena.errors import DataError
from banditarena.ratings.style import MARKDOWN_BOLD, MARKDOWN_HEADER, MARKDOWN_LIST, style_counts

__all__ = [
    "MARKDOWN_BOLD", "MARKDOWN_HEADER", "MARKDOWN_LIST", "expand_files", "extract_answer", "gsm8k_final",
    "is_correct", "iter_gsm8k", "iter_jsonl", "parse_difficulty", "parse_rating", "read_json", "read_maybe_gzip",
    "same_answer", "style_counts",
]

# ------------------------------------------------------------------------------------------------- files

def _lines(f: Any, path: Path) -> Iterator[tuple[int, bytes]]:
    import zlib

    try:
        yield from enumerate(f, 1)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: a truncated or corrupt gzip file ({' '.join(str(exc).split()) or 'unexpected end'})"
                        "; download it again") from exc


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """``(line number, record)`` for each non-blank line of a JSONL file (1-based; a UTF-8 BOM is allowed; a gzip
    file is read through gzip).

    Raises :class:`DataError` naming ``path:line`` for invalid JSON or text that is not UTF-8.
    """
    path = Path(path)
    try:
        with path.open("rb") as head:
            zipped = head.read(2) == b"\x1f\x8b"
        # decoded line by line, so a bad byte is reported on its own line
        f = gzip.open(path, "rb") if zipped else path.open("rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from e
    with f:
        for lineno, raw in _lines(f, path):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{lineno}: not UTF-8 text ({e.reason} at byte {e.start + 1} of the line)") from None
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
            yield lineno, rec


def read_json(path: str | Path) -> Any:
    """A whole JSON file; :class:`DataError` naming ``path:line`` for bad JSON or bytes that are not UTF-8."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from e
    try:
        text = blob.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = blob.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text ({e.reason})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg} at column {e.colno})") from None



def read_maybe_gzip(path: Path) -> bytes:
    """A file's bytes, gunzipped when it is gzip (a truncated stream is one DataError line naming it)."""
    blob = path.read_bytes()
    if blob[:2] != b"\x1f\x8b":
        return blob
    import zlib

    try:
        return gzip.decompress(blob)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: a truncated or corrupt gzip file ({' '.join(str(exc).split()) or 'unexpected end'})"
                        "; download it again") from exc


def expand_files(paths: Iterable[Path], suffixes: tuple[str, ...], *, empty: str, missing: str,
                 error: Callable[[str], Exception] = DataError) -> list[Path]:
    """Each path that is a file, and for a folder its files whose names end with one of ``suffixes`` (sorted).

    A folder without any such file raises ``error(empty.format(path=...))``, a path that is neither file nor
    folder ``error(missing.format(path=...))``.
    """
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(suffixes))
            if not found:
                raise error(empty.format(path=p))
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise error(missing.format(path=p))
    return out


# ------------------------------------------------------------------------------------------------- GSM8K


def gsm8k_final(answer: str) -> str | None:
    """The final answer of a GSM8K worked solution: what follows its (last) ``####``, thousands separators
    removed and stripped; None when there is no ``####`` or nothing follows it."""
    if "####" not in answer:
        return None
    final = answer.rsplit("####", 1)[1].replace(",", "").strip()
    return final or None


def iter_gsm8k(path: Path) -> Iterator[tuple[int, str, str]]:
    """``(line number, question, worked answer)`` for each row of a GSM8K JSONL file (``question``/``answer``).

    :class:`DataError` for a missing file or a row without both fields, naming ``path:line``.
    """
    if not path.is_file():
        raise DataError(f"{path}: GSM8K file not found (set BANDITARENA_DATA or give a path)")
    for lineno, row in iter_jsonl(path):
        try:
            yield lineno, str(row["question"]), str(row["answer"])
        except (KeyError, TypeError) as exc:
            raise DataError(f"{path}:{lineno}: not a GSM8K row ({exc})") from None


# ------------------------------------------------------------------------------------------- final answers


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


def same_answer(a: str, b: str, rel_tol: float) -> bool:
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
    return same_answer(got, want, rel_tol)


# ------------------------------------------------------------------------------------------ 1-10 scores

_RATING_PATTERNS = [
    re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]"),
    re.compile(r"(?:rating|score)\s*[:=]?\s*\**\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?", re.IGNORECASE),
    re.compile(r"(\d+(?:\.\d+)?)\s*/\s*10\b"),
    re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$"),
]


def parse_rating(text: str, low: float = 1.0, high: float = 10.0) -> float:
    """The 1-10 rating in a judge's output (``[[7]]``, ``Rating: 7``, ``7/10`` or a bare number); NaN if none.

    The last match of the most specific pattern wins; a value outside ``[low, high]`` is NaN.
    """
    for pat in _RATING_PATTERNS:
        found = pat.findall(text or "")
        if found:
            v = float(found[-1])
            return v if low <= v <= high else math.nan
    return math.nan



_SCORE_NUM = r"(\d{1,2}(?:\.\d+)?)(?!\d)"
_NOT_RANGE = r"(?!\s*(?:-|–|to)\s*\d)"
_DIFFICULTY_PATTERNS = [
    re.compile(
        r"difficulty(?:\s+(?:score|rating|level))?\s*(?:\(\s*1\s*-\s*10\s*\))?\s*(?:is|[:=])?\s*[*_\[(\"']*\s*"
        + _SCORE_NUM
        + _NOT_RANGE,
        re.IGNORECASE,
    ),
    re.compile(r"\[\[\s*" + _SCORE_NUM + r"\s*\]\]"),
    re.compile(
        r"(?:overall\s+)?(?:score|rating)\s*(?:is|[:=])\s*[*_\[(\"']*\s*" + _SCORE_NUM + _NOT_RANGE, re.IGNORECASE
    ),
    re.compile(_SCORE_NUM + r"\s*/\s*10\b"),
]


def parse_difficulty(text: str) -> float | None:
    """The 1-10 difficulty in a judge's reply, or None if there is none.

    Accepts (last occurrence wins within the first matching form): ``Difficulty: 7``, ``**Difficulty:**
    8/10``, ``difficulty score is 6``, ``[[7]]``, ``Score: 7``, ``7/10``, a JSON object with ``difficulty``
    (or ``score``/``rating``), or a reply that is just a number. Values outside 1-10 and ranges
    (``1-10``) are rejected.
    """
    if not text or not text.strip():
        return None
    s = text.strip()
    # JSON object anywhere in the reply
    for m in re.finditer(r"\{[^{}]*\}", s):
        try:
            obj = json.loads(m.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            for k in ("difficulty", "score", "rating"):
                v = obj.get(k)
                if isinstance(v, (int, float)) and not isinstance(v, bool) and 1 <= v <= 10:
                    return float(v)
    plain = s.replace("**", "").replace("__", "")
    for pat in _DIFFICULTY_PATTERNS:
        found = [float(m.group(1)) for m in pat.finditer(plain)]
        found = [v for v in found if 1 <= v <= 10]
        if found:
            return found[-1]
    m = re.fullmatch(r"[\s*_\[(]*" + _SCORE_NUM + r"[\s*_\])\.]*", plain)
    if m and 1 <= float(m.group(1)) <= 10:
        return float(m.group(1))
    return None

