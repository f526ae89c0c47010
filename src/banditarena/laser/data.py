"""Math word problems with numeric answers for the LASeR loop.

* :func:`arithmetic_problems` generates one- and two-step arithmetic word problems in four categories
  (``add``, ``sub``, ``mul``, ``two_step``), each with a worked reference ending in ``#### n`` (GSM8K style).
* :func:`load_gsm8k` reads GSM8K JSONL (``question``/``answer``); the category is the number of
  calculation steps in the worked answer (``1-2 steps``, ``3 steps``, ``4+ steps``).
* :func:`load_jsonl_problems` reads any JSONL with ``question``, ``answer`` and optional ``category``.

Each returns a list of :class:`banditarena.types.Prompt` whose ``reference`` is the worked answer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from banditarena.errors import DataError
from banditarena.text import iter_gsm8k, iter_jsonl
from banditarena.types import Prompt

__all__ = ["INSTRUCTION", "arithmetic_problems", "load_gsm8k", "load_jsonl_problems", "split_problems"]

INSTRUCTION = "Show the calculation, then write 'The answer is <number>.'"

_NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena", "Mo",
          "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq"]
_ITEMS = ["apples", "marbles", "stickers", "books", "pencils", "cookies", "coins", "stamps", "shells", "cards"]


def _format(question: str, instruction: str | None) -> list[dict[str, str]]:
    content = f"{question}\n{instruction}" if instruction else question
    return [{"role": "user", "content": content}]


def arithmetic_problems(n: int, seed: int = 0, *, categories: tuple[str, ...] = ("add", "sub", "mul", "two_step"),
                        instruction: str | None = INSTRUCTION, id_prefix: str = "arith") -> list[Prompt]:
    """``n`` generated word problems, categories in rotation, numbers drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    out: list[Prompt] = []
    for i in range(n):
        cat = categories[i % len(categories)]
        name, other = rng.choice(_NAMES, size=2, replace=False)
        item = str(rng.choice(_ITEMS))
        if cat == "add":
            a, b = int(rng.integers(1, 16)), int(rng.integers(1, 16))
            q = f"{name} has {a} {item}. {other} gives {name} {b} more {item}. How many {item} does {name} have now?"
            ans, work = a + b, f"{a} + {b} = {a + b}"
        elif cat == "sub":
            a = int(rng.integers(6, 21))
            b = int(rng.integers(1, a))
            q = f"{name} had {a} {item} and gave {b} of them to {other}. How many {item} does {name} have left?"
            ans, work = a - b, f"{a} - {b} = {a - b}"
        elif cat == "mul":
            a, b = int(rng.integers(2, 6)), int(rng.integers(2, 7))
            q = f"{name} has {a} boxes with {b} {item} in each box. How many {item} does {name} have in total?"
            ans, work = a * b, f"{a} * {b} = {a * b}"
        elif cat == "two_step":
            a, b = int(rng.integers(2, 5)), int(rng.integers(2, 6))
            c = int(rng.integers(1, a * b))
            q = (f"{name} buys {a} packs of {item} with {b} {item} in each pack, then gives {c} {item} to {other}. "
                 f"How many {item} does {name} have left?")
            ans, work = a * b - c, f"{a} * {b} = {a * b}. {a * b} - {c} = {a * b - c}"
        else:
            raise DataError(f"arithmetic_problems: unknown category '{cat}' (add, sub, mul, two_step)")
        out.append(Prompt(id=f"{id_prefix}-{seed}-{i}", messages=_format(q, instruction), category=cat,
                          reference=f"{work}\n#### {ans}", source="generated"))
    return out


def _gsm8k_category(answer: str) -> str:
    steps = answer.count("<<")
    return "1-2 steps" if steps <= 2 else "3 steps" if steps == 3 else "4+ steps"


def load_jsonl_problems(path: str | Path, *, instruction: str | None = INSTRUCTION, limit: int | None = None,
                        category_fn=None, source: str | None = None) -> list[Prompt]:
    """Problems from JSONL rows with ``question`` and ``answer`` (``category`` optional)."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found")
    out: list[Prompt] = []
    for lineno, row in iter_jsonl(p):
        if not isinstance(row, dict) or "question" not in row or "answer" not in row:
            raise DataError(f"{p}:{lineno}: row needs 'question' and 'answer'")
        cat = row.get("category") or (category_fn(str(row["answer"])) if category_fn else None)
        out.append(Prompt(id=str(row.get("id", f"{p.stem}-{lineno}")), messages=_format(row["question"], instruction),
                          category=cat, reference=str(row["answer"]), source=source or str(p)))
        if limit is not None and len(out) >= limit:
            break
    return out


def load_gsm8k(path: str | Path, *, instruction: str | None = INSTRUCTION, limit: int | None = None) -> list[Prompt]:
    """GSM8K JSONL (:func:`banditarena.text.iter_gsm8k`); category from the number of ``<<calc>>`` steps in the
    worked answer."""
    p = Path(path)
    out: list[Prompt] = []
    for lineno, question, answer in iter_gsm8k(p):
        out.append(Prompt(id=f"{p.stem}-{lineno}", messages=_format(question, instruction),
                          category=_gsm8k_category(answer), reference=answer, source="gsm8k"))
        if limit is not None and len(out) >= limit:
            break
    return out


def split_problems(problems: list[Prompt], n_train: int, n_dev: int, n_test: int,
                   seed: int = 0) -> tuple[list[Prompt], list[Prompt], list[Prompt]]:
    """Disjoint seeded train/dev/test split; raises DataError when there are too few problems."""
    need = n_train + n_dev + n_test
    if len(problems) < need:
        raise DataError(f"need {need} problems (train {n_train} + dev {n_dev} + test {n_test}), got {len(problems)}")
    order = np.random.default_rng(seed).permutation(len(problems))
    pick = [problems[i] for i in order[:need]]
    return pick[:n_train], pick[n_train:n_train + n_dev], pick[n_train + n_dev:]
