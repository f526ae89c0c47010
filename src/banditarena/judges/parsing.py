"""Robust parsing of pairwise judge output.

Our judge prompt (:mod:`banditarena.judges.llm`) asks for a strict line format::

    Rationale: <two or three sentences>
    Score A: <1-10>
    Score B: <1-10>
    Verdict: [[A>B]]          (only when the five-level verdict is asked for)

Judges drift from any format, so :func:`parse_judgment` also reads, in this order of trust:

1. a JSON object anywhere in the text (``{"score_a": 7, "score_b": 5}``, ``{"scores": {"A": 7, "B": 5}}``,
   ``{"scores": [7, 5]}``, ``{"assistant_a": {"score": 7}, ...}``, ``"7/10"`` strings, ``"verdict": "A>B"``);
2. a score pair in double brackets: ``[[7, 5]]``, ``[[7/10, 5/10]]``;
3. labelled scores on one line: ``Score A: 7``, ``Assistant A: 7/10``, ``**Assistant A**: 7.5``,
   ``Score for Assistant A = 7``, ``Assistant A's score: 7``, ``Assistant A receives a score of 7``,
   ``Rating (A): 7``, ``Scores: A=7, B=5``;
4. a "Score: 7" line at most four lines below a heading line that names the assistant and nothing else,
   e.g. ``### Assistant A``, ``**Assistant A's answer:**``, ``Evaluation of Assistant B:``.

Markdown bold/italics/backticks and ``<think>...</think>`` blocks are ignored. Decimals are kept. A score
outside 1-10, or on another scale (``7/5``, ``70/100``), makes the output invalid rather than being
rescaled. The verdict is read from ``[[A>>B]]``-style tags (also ``[[A<B]]``, ``[[B=A]]``, ``A≫B``) or a
``Verdict: A>B`` line; two different verdict tags in one output make it invalid (as in Arena-Hard-Auto).

The parser never guesses: output without both scores (or without the verdict when it was asked for)
is ``ok=False`` with an ``error`` saying what is missing. It never becomes a tie.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

#: Bump whenever the parsing rules change (part of every LLM judge's ``version``).
PARSER_VERSION = "parse-2"

VERDICTS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
SCORE_MIN, SCORE_MAX = 1.0, 10.0


@dataclass
class ParsedJudgment:
    """What :func:`parse_judgment` read from one judge output (A = the answer shown first)."""

    score_a: float | None = None
    score_b: float | None = None
    verdict: str | None = None
    rationale: str = ""
    ok: bool = False
    error: str | None = None


class _Invalid(Exception):
    """A value was found but is unusable (out of range, other scale, conflicting verdicts)."""


_NUM = r"([-+]?\d+(?:\.\d+)?)"
_DEN = r"(?:[ \t]*(?:/|out[ \t]+of)[ \t]*(\d+(?:\.\d+)?))?"
_WHO = r"(?:assistant|answer|response|model|candidate)"
_SCORE_WORD = r"(?:score|rating|grade|points?|mark)"


def _label(side: str) -> str:
    s = f"(?-i:{side})"
    return (
        rf"(?:{_SCORE_WORD}s?[ \t]*(?:for|of|to)?[ \t]*(?:{_WHO})?[ \t]*\(?{s}\)?(?![\w>=<])"
        rf"|{_WHO}[ \t]*\(?{s}\)?(?![\w>=<])(?:['’]s)?(?:[ \t]+(?:answer|response))?"
        rf"(?:[ \t]*(?:final[ \t]+)?{_SCORE_WORD})?)"
    )


_SEP = r"[ \t]*[\]\)]?[ \t]*(?:[:=\-–—]|\bis\b|\bgets\b|\bearns\b|\breceives\b|\bscores?\b|\bscored\b|\brated\b)"
_SEP += r"[ \t]*(?:an?[ \t]+)?(?:(?:overall[ \t]+)?(?:score|rating)[ \t]+of[ \t]*:?)?[ \t]*(?:\[\[)?[ \t]*"

_LABELLED = {
    side: re.compile(rf"(?<![\w'])(?:{_label(side)}){_SEP}{_NUM}{_DEN}", re.IGNORECASE) for side in "AB"
}
_PAIR = re.compile(
    rf"\[\[[ \t]*{_NUM}[ \t]*(?:/[ \t]*(\d+))?[ \t]*[,;][ \t]*{_NUM}[ \t]*(?:/[ \t]*(\d+))?[ \t]*\]\]"
)
_HEAD = r"^[ \t>#*\-]*(?:\d+[.)][ \t]*)?(?:(?:evaluation|assessment|review)[ \t]+of[ \t]+)?(?:the[ \t]+)?"
_HEAD_TAIL = r"(?:['’]s)?(?:[ \t]+(?:answer|response|evaluation|assessment|output|reply))?[ \t]*:?[ \t]*$"


def _heading(side: str) -> str:
    """A line that is only a heading naming the assistant: '### Assistant A', "Assistant A's answer:"."""
    return rf"{_HEAD}{_WHO}[ \t]*\(?(?-i:{side})\)?{_HEAD_TAIL}"


_SECTION = {
    side: re.compile(
        rf"{_heading(side)}\n(?:(?!{_heading('B' if side == 'A' else 'A')})[^\n]*\n){{0,3}}?[ \t>#\-]*"
        rf"(?:overall[ \t]+|final[ \t]+)?{_SCORE_WORD}[ \t]*[:=][ \t]*{_NUM}{_DEN}",
        re.IGNORECASE | re.MULTILINE,
    )
    for side in "AB"
}
_INLINE = re.compile(rf"(?<![\w'])([AB])[ \t]*[:=][ \t]*{_NUM}{_DEN}")
_VERDICT_TAG = re.compile(r"\[\[[ \t]*([AB])[ \t]*(>>|<<|>|<|=)[ \t]*([AB])[ \t]*\]\]")
_VERDICT_LINE = re.compile(
    r"verdict[^\n:]{0,20}:[ \t]*\[?[ \t]*([AB])[ \t]*(>>|<<|>|<|=)[ \t]*([AB])(?![\w>=<])", re.IGNORECASE
)
_RATIONALE = re.compile(
    r"(?:rationale|explanation|reasoning)[ \t]*:[ \t]*(.*?)(?=\n[ \t>#\-]*(?:score|verdict|assistant)\b|\Z)",
    re.IGNORECASE | re.DOTALL,
)
_THINK = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)
_SIDE_KEY = re.compile(
    r"^(?:(?:score|rating|grade|points?)s?(?:for|of)?)?(?:assistant|answer|response|model)?"
    r"(a|b)(?:s)?(?:final)?(?:score|rating|grade|points?)?$"
)


def _clean(text: str) -> str:
    text = _THINK.sub(" ", text)
    for tok in ("**", "__", "`"):
        text = text.replace(tok, "")
    return text.replace("≫", ">>").replace("≪", "<<").replace("＞", ">").replace("\r\n", "\n")


def _score(value: str | float, den: str | None, side: str) -> float:
    v = float(value)
    if den is not None and float(den) != 10.0:
        raise _Invalid(f"score for Assistant {side} is on a /{den} scale, not 1-10")
    if not (SCORE_MIN <= v <= SCORE_MAX):
        raise _Invalid(f"score for Assistant {side} out of range 1-10: {value}")
    return v


def _score_from_any(value: Any, side: str) -> float | None:
    """A JSON leaf as a score: numbers, "7", "7/10", "7 out of 10"; None if it is not a number at all."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _score(value, None, side)
    if isinstance(value, str):
        m = re.fullmatch(rf"[ \t]*{_NUM}{_DEN}[ \t]*", value)
        if m:
            return _score(m.group(1), m.group(2), side)
    return None


def _norm_verdict(x: str, op: str, y: str) -> str:
    x, y = x.upper(), y.upper()
    if x == y:
        raise _Invalid(f"malformed verdict {x}{op}{y}")
    if op == "=":
        return "A=B"
    if op.startswith("<"):  # A<B == B>A
        x, y, op = y, x, op.replace("<", ">")
    return f"{x}{op}{y}"


def _json_objects(text: str, max_candidates: int = 200) -> list[Any]:
    """JSON (or Python-literal) objects that start at one of the last ``max_candidates`` ``{`` in ``text``.

    Linear in the text: brace pairs are matched in one pass, and at most ``max_candidates`` decodes run.
    """
    close_of: dict[int, int] = {}
    opens: list[int] = []
    stack: list[int] = []
    for j, c in enumerate(text):
        if c == "{":
            stack.append(j)
            opens.append(j)
        elif c == "}" and stack:
            close_of[stack.pop()] = j + 1
    dec = json.JSONDecoder()
    out: list[Any] = []
    covered = -1
    for i in opens[-max_candidates:]:
        if i < covered:  # inside an object already decoded
            continue
        obj: Any = None
        end = close_of.get(i, -1)
        try:
            obj, end = dec.raw_decode(text, i)
        except (ValueError, RecursionError):
            if 0 < end - i <= 20000 and ":" in text[i:end]:
                try:
                    obj = ast.literal_eval(text[i:end])
                except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
                    obj = None
        if isinstance(obj, dict):
            out.append(obj)
            covered = end
    return out


def _leaves(obj: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(obj, dict):
        res: list[tuple[tuple[str, ...], Any]] = []
        for k, v in obj.items():
            res.extend(_leaves(v, (*path, re.sub(r"[^a-z0-9]", "", str(k).lower()))))
        return res
    return [(path, obj)]


def _from_json(obj: dict[str, Any]) -> tuple[dict[str, float], str | None, str]:
    scores: dict[str, float] = {}
    verdict: str | None = None
    rationale = ""
    for path, value in _leaves(obj):
        if not path:
            continue
        key = path[-1]
        if "verdict" in "".join(path) and isinstance(value, str):
            m = re.search(r"([AB])\s*(>>|<<|>|<|=)\s*([AB])", _clean(value))
            if m:
                verdict = _norm_verdict(*m.groups())
            continue
        if key in ("rationale", "explanation", "reasoning", "reason", "justification") and isinstance(value, str):
            rationale = value.strip()
            continue
        if isinstance(value, list) and len(value) == 2 and any(
            w in key for w in ("score", "rating", "grade")
        ):
            a, b = (_score_from_any(v, s) for v, s in zip(value, "AB"))
            if a is not None and b is not None:
                scores.setdefault("A", a)
                scores.setdefault("B", b)
            continue
        sides = [m.group(1).upper() for t in path if (m := _SIDE_KEY.match(t))]
        if not sides:
            continue
        scoreish = any(re.search(r"score|rating|grade|point", t) for t in path) or _SIDE_KEY.match(key)
        if not scoreish:
            continue
        s = _score_from_any(value, sides[-1])
        if s is not None:
            scores[sides[-1]] = s
    return scores, verdict, rationale


def _find_verdict(text: str) -> str | None:
    tags = {_norm_verdict(*m.groups()) for m in _VERDICT_TAG.finditer(text)}
    if len(tags) > 1:
        raise _Invalid("conflicting verdicts " + " and ".join(f"[[{v}]]" for v in sorted(tags)))
    if tags:
        return tags.pop()
    lines = [_norm_verdict(*m.groups()) for m in _VERDICT_LINE.finditer(text)]
    return lines[-1] if lines else None


def _find_scores(text: str) -> dict[str, float]:
    found: dict[str, float] = {}
    pairs = list(_PAIR.finditer(text))
    if pairs:
        a, den_a, b, den_b = pairs[-1].groups()
        return {"A": _score(a, den_a, "A"), "B": _score(b, den_b, "B")}
    for side in "AB":
        hits = list(_LABELLED[side].finditer(text))
        if hits:
            found[side] = _score(hits[-1].group(1), hits[-1].group(2), side)
    for side in "AB":
        if side not in found:
            hits = list(_SECTION[side].finditer(text))
            if hits:
                found[side] = _score(hits[-1].group(1), hits[-1].group(2), side)
    if len(found) < 2:
        for line in text.split("\n"):
            if not re.search(r"score|rating|grade|points", line, re.IGNORECASE) and not re.match(
                r"^[ \t>#*\-]*[AB][ \t]*[:=]", line
            ):
                continue
            for m in _INLINE.finditer(line):
                side = m.group(1)
                if side not in found:
                    found[side] = _score(m.group(2), m.group(3), side)
    return found


def _rationale(text: str) -> str:
    m = _RATIONALE.search(text)
    r = m.group(1) if m else text
    return " ".join(r.split())[:2000]


def parse_judgment(text: str | None, verdict: bool = False) -> ParsedJudgment:
    """Read the two 1-10 scores (and, if ``verdict``, the five-level verdict) from a judge's output.

    Returns a :class:`ParsedJudgment`; ``ok`` is False with a one-line ``error`` when the output has no
    usable scores, a score outside 1-10 or on another scale, conflicting verdicts, or (``verdict=True``)
    no verdict. With ``verdict=True`` the scores are optional (kept when present); with
    ``verdict=False`` both scores are required and any verdict tag is ignored.
    """
    if text is None or not str(text).strip():
        return ParsedJudgment(ok=False, error="empty judge output")
    clean = _clean(str(text))
    res = ParsedJudgment(rationale=_rationale(clean))
    try:
        scores: dict[str, float] = {}
        found_verdict: str | None = None
        for obj in reversed(_json_objects(clean)):
            s, v, r = _from_json(obj)
            if len(s) == 2 or (verdict and v):
                scores, found_verdict = s, v
                if r:
                    res.rationale = " ".join(r.split())[:2000]
                break
        if len(scores) < 2:
            for side, val in _find_scores(clean).items():
                scores.setdefault(side, val)
        if verdict and found_verdict is None:
            found_verdict = _find_verdict(clean)
    except _Invalid as exc:
        res.error = str(exc)
        return res
    res.score_a, res.score_b = scores.get("A"), scores.get("B")
    if verdict:
        res.verdict = found_verdict
        if found_verdict is None:
            res.error = "no verdict like [[A>B]] found"
            return res
        if len(scores) == 1:  # half a score pair is not kept: scores are all-or-nothing
            res.score_a = res.score_b = None
        res.ok = True
        return res
    if len(scores) < 2:
        missing = " and ".join(f"Assistant {s}" for s in "AB" if s not in scores)
        res.error = f"no score found for {missing}"
        return res
    res.ok = True
    return res


def format_reminder(verdict: bool) -> str:
    """The short reminder sent with the one retry after unparsable output."""
    lines = ["Rationale: <two or three sentences>", "Score A: <a number from 1 to 10>",
             "Score B: <a number from 1 to 10>"]
    if verdict:
        lines.append("Verdict: <exactly one of [[A>>B]], [[A>B]], [[A=B]], [[B>A]], [[B>>A]]>")
    return (
        "I could not read your reply. Answer again in exactly this format, with nothing before or after it:\n"
        + "\n".join(lines)
    )
