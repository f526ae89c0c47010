"""Items: generated arithmetic problems with known answers, GSM8K word problems, and answer checking.

An :class:`Item` is one problem a learner sees. Generators are pure functions of a ``numpy`` Generator, so the
same seed gives the same problem. GSM8K problems are grouped by the operations and the number of steps of their
worked solutions (the ``<<a*b=c>>`` calculator annotations).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from banditarena.text import gsm8k_final, iter_gsm8k

#: The longest answer a learner may type (characters); longer input is refused, not stored.
MAX_ANSWER_CHARS = 32


@dataclass(frozen=True)
class Item:
    """One problem: the text shown, the numeric answer, an optional worked solution (shown after answering)."""

    id: str
    activity: str
    question: str
    answer: float
    solution: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Item:
        return cls(id=str(d["id"]), activity=str(d["activity"]), question=str(d["question"]),
                   answer=float(d["answer"]), solution=d.get("solution"))

    @property
    def answer_text(self) -> str:
        return format_number(self.answer)


def format_number(x: float) -> str:
    """``12`` for 12.0, ``0.25`` for 0.25, thousands not grouped."""
    if math.isfinite(x) and float(x).is_integer():
        return str(int(x))
    return f"{x:.6g}"


# ------------------------------------------------------------------------------------------------ answers
class AnswerError(ValueError):
    """A learner's answer that cannot be marked; the message is meant for the learner (a child)."""


_NUM = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_FRAC = re.compile(r"^([+-]?\d+)\s*/\s*(\d+)$")


def parse_answer(text: Any) -> float:
    """A learner's typed answer as a number, or :class:`AnswerError` with a message for the learner.

    Accepts ``42``, ``-3``, ``2.5``, ``1,000``, ``$12``, ``12 dollars`` is refused (words), ``3/4``.
    """
    if text is None:
        raise AnswerError("Please type an answer first.")
    s = str(text)
    if len(s) > MAX_ANSWER_CHARS:
        raise AnswerError(f"That answer is too long. Please type just the number (at most {MAX_ANSWER_CHARS} "
                          "characters).")
    s = s.strip()
    if not s:
        raise AnswerError("Please type an answer first.")
    t = s.replace("$", "").replace("€", "").replace("£", "").replace(" ", "")
    if re.fullmatch(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", t):
        t = t.replace(",", "")
    t = t.removesuffix("%")
    m = _FRAC.match(t)
    if m:
        den = int(m.group(2))
        if den == 0:
            raise AnswerError("A fraction cannot have 0 at the bottom. Please try again.")
        return float(Fraction(int(m.group(1)), den))
    if not _NUM.match(t):
        raise AnswerError("Please answer with a number, like 42.")
    v = float(t)
    if not math.isfinite(v):
        raise AnswerError("Please answer with a number, like 42.")
    return v


def is_correct(item: Item, value: float) -> bool:
    """Exact for whole numbers, relative tolerance 1e-6 (or 0.005 absolute for money) otherwise."""
    return math.isclose(value, item.answer, rel_tol=1e-6, abs_tol=5e-3 if not item.answer.is_integer() else 1e-9)


# ----------------------------------------------------------------------------------- arithmetic generators
def _int(rng: np.random.Generator, lo: int, hi: int) -> int:
    return int(rng.integers(lo, hi + 1))


def gen_decompose(rng: np.random.Generator, max: int = 10, place_value: bool = False) -> tuple[str, float, str]:
    """``7 = 3 + ?`` (number bonds up to ``max``) or, with ``place_value``, ``47 = ? tens and 7 ones``."""
    if place_value:
        n = _int(rng, 11, max)
        tens, ones = divmod(n, 10)
        if rng.random() < 0.5:
            return (f"{n} = ? tens and {ones} ones. How many tens?", tens, f"{n} = {tens} tens and {ones} ones.")
        return (f"{n} = {tens} tens and ? ones. How many ones?", ones, f"{n} = {tens} tens and {ones} ones.")
    n = _int(rng, 2, max)
    a = _int(rng, 1, n - 1)
    return (f"{n} = {a} + ?", n - a, f"{n} = {a} + {n - a}.")


def _digits_no_carry(rng: np.random.Generator, digits: int) -> tuple[int, int]:
    a = b = 0
    for d in range(digits):
        lead = d == digits - 1
        x = _int(rng, 1 if lead else 0, 8)
        y = _int(rng, 1 if lead else 0, 9 - x)
        a += x * 10 ** d
        b += y * 10 ** d
    return a, b


def gen_add(rng: np.random.Generator, digits: int = 1, carry: bool = False) -> tuple[str, float, str]:
    """Addition of ``digits``-digit numbers, with at least one carry (``carry``) or none."""
    if digits == 1 and not carry:
        a = _int(rng, 0, 9)
        b = _int(rng, 0, 9 - a)
    elif not carry:
        a, b = _digits_no_carry(rng, digits)
    else:
        lo, hi = 10 ** (digits - 1), 10 ** digits - 1
        while True:
            a, b = _int(rng, lo if digits > 1 else 1, hi), _int(rng, lo if digits > 1 else 1, hi)
            if (a % 10) + (b % 10) >= 10:
                break
    return (f"{a} + {b} = ?", a + b, f"{a} + {b} = {a + b}.")


def gen_sub(rng: np.random.Generator, digits: int = 1, borrow: bool = False) -> tuple[str, float, str]:
    """Subtraction with a non-negative result, with a borrow in the ones (``borrow``) or none."""
    if digits == 1:
        a = _int(rng, 1, 10 if not borrow else 18)
        b = _int(rng, 0, min(a, 9))
        if borrow:
            a = _int(rng, 11, 18)
            b = _int(rng, a - 9, 9)
    elif not borrow:
        b, c = _digits_no_carry(rng, digits)
        a = b + c
    else:
        lo, hi = 10 ** (digits - 1), 10 ** digits - 1
        while True:
            a, b = sorted((_int(rng, lo, hi), _int(rng, lo, hi)), reverse=True)
            if (a % 10) < (b % 10):
                break
    return (f"{a} - {b} = ?", a - b, f"{a} - {b} = {a - b}.")


def gen_times(rng: np.random.Generator, tables: list[int] | tuple[int, ...] = (2, 5, 10), max_factor: int = 10
              ) -> tuple[str, float, str]:
    """Times tables: ``t x k`` for ``t`` in ``tables`` and ``k`` in 1..``max_factor`` (either order)."""
    t = int(rng.choice(np.asarray(tables)))
    k = _int(rng, 1, max_factor)
    a, b = (t, k) if rng.random() < 0.5 else (k, t)
    return (f"{a} x {b} = ?", a * b, f"{a} x {b} = {a * b}.")


GENERATORS: dict[str, Callable[..., tuple[str, float, str]]] = {
    "decompose": gen_decompose,
    "add": gen_add,
    "sub": gen_sub,
    "times": gen_times,
}


def generator_params(kind: str) -> list[str]:
    import inspect

    return [p for p in inspect.signature(GENERATORS[kind]).parameters if p != "rng"]


# ------------------------------------------------------------------------------------------------- GSM8K
_ANNOT = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div"}


@dataclass(frozen=True)
class WordProblem:
    """A GSM8K problem with the operations and steps of its worked solution."""

    index: int
    question: str
    answer: float
    solution: str
    ops: frozenset[str]
    steps: int


def _solution_text(answer: str) -> str:
    body = answer.rsplit("####", 1)[0]
    return _ANNOT.sub("", body).strip()


def classify_solution(answer: str) -> tuple[frozenset[str], int]:
    """Operations (``add``/``sub``/``mul``/``div``) and number of calculator steps of a GSM8K solution."""
    ops: set[str] = set()
    steps = 0
    for expr, _ in _ANNOT.findall(answer):
        steps += 1
        e = expr.strip()
        for i, ch in enumerate(e):
            if ch in _OPS:
                if ch == "-" and (i == 0 or e[i - 1] in "+-*/("):
                    continue  # a minus sign, not a subtraction
                ops.add(_OPS[ch])
    return frozenset(ops), steps


def load_gsm8k(path: Path) -> list[WordProblem]:
    """Every GSM8K row of ``path`` with a numeric final answer and at least one annotated step."""
    out: list[WordProblem] = []
    for lineno, q, a in iter_gsm8k(path):
        final = gsm8k_final(a)
        if final is None:
            continue
        try:
            value = float(final.replace("$", ""))
        except ValueError:
            continue
        ops, steps = classify_solution(a)
        if steps == 0 or not ops:
            continue
        out.append(WordProblem(lineno - 1, q, value, _solution_text(a), ops, steps))
    return out


_GSM8K_CACHE: dict[tuple[str, float], list[WordProblem]] = {}


def gsm8k_problems(path: Path) -> list[WordProblem]:
    """:func:`load_gsm8k`, cached per file (path and modification time)."""
    key = (str(path.resolve()), path.stat().st_mtime if path.exists() else 0.0)
    if key not in _GSM8K_CACHE:
        _GSM8K_CACHE[key] = load_gsm8k(path)
    return _GSM8K_CACHE[key]


def select_problems(problems: list[WordProblem], ops_only: list[str] | None, ops_need: list[list[str]] | None,
                    min_steps: int, max_steps: int | None) -> list[WordProblem]:
    """Problems whose solution uses nothing outside ``ops_only``, at least one operation of each group of
    ``ops_need``, and has ``min_steps``..``max_steps`` steps."""
    out = []
    for p in problems:
        if p.steps < min_steps or (max_steps is not None and p.steps > max_steps):
            continue
        if ops_only is not None and not p.ops <= set(ops_only):
            continue
        if ops_need is not None and not all(p.ops & set(g) for g in ops_need):
            continue
        out.append(p)
    return out
