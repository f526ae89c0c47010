"""Combine the two orders of one pair into a battle.

Rules (Arena-Hard-Auto style, kept simple):

* **Invalid.** If either judgment is not ``ok`` (or has neither both scores nor a verdict), the battle's
  ``winner`` is ``None`` and ``margin`` is ``None``: an invalid battle, counted, never a tie.
* **Preference of one order.** The verdict decides it when present (``A>>B``/``A>B`` prefer the answer
  shown first, ``A=B`` is a tie); otherwise the scores do (higher score wins, equal scores tie).
* **Winner.** Each order votes +1 for model_a, -1 for model_b, 0 for a tie.
  - the two orders prefer different models (+1 and -1): ``tie`` with ``inconsistent=True``;
  - one order is a tie and the other prefers a model: that model wins (the swap did not reverse it);
  - both prefer the same model: that model; both ties: ``tie``.
* **Margin** (> 0 favours model_a): the mean over both orders of (value of model_a - value of model_b),
  where an order's value difference is its score difference when it has both scores, and otherwise its
  verdict mapped as ``A>>B`` = +3, ``A>B`` = +1, ``A=B`` = 0, ``B>A`` = -1, ``B>>A`` = -3 (the strong verdict
  counts three times, as Arena-Hard-Auto weights it). So with both scores and verdicts, the scores decide
  the margin and the verdicts decide the winner; margin and winner can then disagree in sign, which is
  kept as the judge said it.
* **Outcome** (graded judges only): when both judgments carry ``prob_first`` (the judge's probability that
  the first-shown answer wins), ``outcome = (P_ab + 1 - P_ba) / 2`` is ``P(model_a beats model_b)``; the
  leaderboard fits it instead of the winner (:mod:`banditarena.ratings.graded`). A pointwise judge gives
  ``P_ba = 1 - P_ab``, so its outcome is exact and position-free.
"""

from __future__ import annotations

from banditarena.errors import JudgeError
from banditarena.types import Battle, Judgment

#: Margin of one order when only a verdict exists (from the first-shown answer's point of view).
VERDICT_MARGIN = {"A>>B": 3.0, "A>B": 1.0, "A=B": 0.0, "B>A": -1.0, "B>>A": -3.0}


def _first_minus_second(j: Judgment) -> float | None:
    if j.score_first is not None and j.score_second is not None:
        return float(j.score_first) - float(j.score_second)
    if j.verdict is not None:
        return VERDICT_MARGIN.get(j.verdict)
    return None


def _vote(j: Judgment) -> int | None:
    pref = j.preferred
    return None if pref is None else {"first": 1, "second": -1, "tie": 0}[pref]


def combine(j_ab: Judgment, j_ba: Judgment, model_a: str, model_b: str, judge: str) -> Battle:
    """One battle from two judgments: ``j_ab`` showed ``model_a`` first, ``j_ba`` showed ``model_b`` first.

    See the module docstring for the rules. Raises :class:`JudgeError` when the judgments do not show
    the two models in the stated orders or are about different prompts.
    """
    if (j_ab.first, j_ab.second) != (model_a, model_b) or (j_ba.first, j_ba.second) != (model_b, model_a):
        raise JudgeError(
            f"combine: expected orders ({model_a}, {model_b}) and ({model_b}, {model_a}), got "
            f"({j_ab.first}, {j_ab.second}) and ({j_ba.first}, {j_ba.second})"
        )
    if j_ab.prompt_id != j_ba.prompt_id:
        raise JudgeError(f"combine: judgments are for different prompts '{j_ab.prompt_id}' and '{j_ba.prompt_id}'")
    battle = Battle(prompt_id=j_ab.prompt_id, model_a=model_a, model_b=model_b, winner=None, judge=judge,
                    judgments=[j_ab, j_ba])
    v1, v2 = _vote(j_ab), _vote(j_ba)
    d1, d2 = _first_minus_second(j_ab), _first_minus_second(j_ba)
    if not (j_ab.ok and j_ba.ok) or v1 is None or v2 is None or d1 is None or d2 is None:
        return battle
    v2 = -v2  # j_ba's "first" is model_b: flip to model_a's point of view
    battle.margin = (d1 - d2) / 2.0
    if j_ab.prob_first is not None and j_ba.prob_first is not None:
        battle.outcome = min(1.0, max(0.0, (float(j_ab.prob_first) + 1.0 - float(j_ba.prob_first)) / 2.0))
    if v1 * v2 < 0:
        battle.winner, battle.inconsistent = "tie", True
    else:
        s = v1 + v2
        battle.winner = "model_a" if s > 0 else "model_b" if s < 0 else "tie"
    return battle
