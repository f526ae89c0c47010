"""A verifier with partial credit for worked math answers, so that it rarely ties.

:class:`PartialCreditRM` scores an answer against a worked reference (GSM8K ``<<48/2=24>>`` steps, or lines
like ``3 * 4 = 12. 12 - 5 = 7`` as the generated problems write them, ending in ``#### n``):

* ``final`` (weight 1.0): the answer's final number equals the reference's;
* ``steps`` (weight 0.5): the fraction of the reference's intermediate results (every step result except the
  final one; for a one-step problem its result) that appear among the answer's numbers;
* ``setup`` (weight 0.3): the fraction of the reference's operands (the numbers the first step combines) that
  the answer uses in its own calculations;
* ``arithmetic`` (weight 0.2): the fraction of the answer's own ``a op b = c`` claims that are true.

The score lies in [0, 2]. Two answers tie only when they agree on all four parts (e.g. two wrong answers
with no calculation); a missing reference gives NaN (counted), never a guess.
"""

from __future__ import annotations

import re

import numpy as np

from banditarena.rewards.reward_models import BaseRewardModel
from banditarena.text import is_correct

__all__ = ["PartialCreditRM", "credit_parts", "equations"]

_EQ = re.compile(r"(-?\d+(?:\.\d+)?)\s*([+\-*/x×÷])\s*(-?\d+(?:\.\d+)?)\s*=\s*(-?\d+(?:\.\d+)?)")
_NUM = re.compile(r"-?\d+(?:\.\d+)?")
WEIGHTS = {"final": 1.0, "steps": 0.5, "setup": 0.3, "arithmetic": 0.2}


def _f(x: str) -> float:
    return float(x.replace(",", ""))


def equations(text: str) -> list[tuple[float, str, float, float]]:
    """The ``a op b = c`` claims in ``text`` (numbers with thousands separators removed)."""
    clean = re.sub(r"(?<=\d),(?=\d{3})", "", text or "")
    return [(_f(a), op, _f(b), _f(c)) for a, op, b, c in _EQ.findall(clean)]


def _true(a: float, op: str, b: float, c: float) -> bool:
    val = a + b if op == "+" else a - b if op == "-" else a * b if op in "*x×" else (a / b if b else float("nan"))
    return abs(val - c) < 1e-6 * max(1.0, abs(c))


def credit_parts(answer: str, reference: str) -> dict[str, float]:
    """The four parts of the credit (each in [0, 1]) of ``answer`` against the worked ``reference``."""
    ref_body = reference.split("####")[0]
    ref_eqs = equations(ref_body)
    clean = re.sub(r"(?<=\d),(?=\d{3})", "", answer or "")
    nums = {_f(x) for x in _NUM.findall(clean)}
    ans_eqs = equations(answer)
    used = {v for a, _, b, _ in ans_eqs for v in (a, b)}
    results = [c for _, _, _, c in ref_eqs]
    inter = results[:-1] if len(results) > 1 else results  # one step: its result, stated anywhere
    operands = [ref_eqs[0][0], ref_eqs[0][2]] if ref_eqs else []
    return {
        "final": float(bool(is_correct(answer, reference))),
        "steps": float(np.mean([c in nums for c in inter])) if inter else 0.0,
        "setup": float(np.mean([o in used for o in operands])) if operands else 0.0,
        "arithmetic": float(np.mean([_true(*e) for e in ans_eqs])) if ans_eqs else 0.0,
    }


class PartialCreditRM(BaseRewardModel):
    """Verifier with partial credit for intermediate results (see the module docstring)."""

    name = "partial"

    def __init__(self, name: str | None = None, weights: dict[str, float] | None = None) -> None:
        super().__init__(name)
        self.weights = {**WEIGHTS, **(weights or {})}

    def _score_batch(self, prompts, answers, references):
        out = []
        for ans, ref in zip(answers, references):
            if ref is None:
                out.append(np.full(len(ans), np.nan))
                continue
            out.append(np.array([sum(self.weights[k] * v for k, v in credit_parts(a, ref).items()) for a in ans]))
        return out
