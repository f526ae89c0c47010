"""combine(): both orders -> one battle, with the documented winner and margin rules."""

from __future__ import annotations

import pytest

from banditarena.errors import JudgeError
from banditarena.judges import combine
from banditarena.types import Judgment


def j(first: str, second: str, s1: float | None = None, s2: float | None = None, verdict: str | None = None,
      ok: bool = True) -> Judgment:
    return Judgment(judge="J", prompt_id="p", first=first, second=second, score_first=s1, score_second=s2,
                    verdict=verdict, ok=ok)


def test_consistent_orders_pick_the_winner_and_average_the_margin() -> None:
    b = combine(j("a", "b", 8, 4), j("b", "a", 5, 7), "a", "b", "J")
    assert b.winner == "model_a" and not b.inconsistent
    assert b.margin == pytest.approx(((8 - 4) + (7 - 5)) / 2)
    assert b.judgments[0].first == "a" and b.judgments[1].first == "b" and b.judge == "J"
    b = combine(j("a", "b", 2, 9), j("b", "a", 9, 1), "a", "b", "J")
    assert b.winner == "model_b" and b.margin == pytest.approx(-7.5)


def test_inconsistent_orders_become_a_recorded_tie() -> None:
    # pure position bias: the judge always prefers the answer shown first
    b = combine(j("a", "b", 8, 5), j("b", "a", 8, 5), "a", "b", "J")
    assert b.winner == "tie" and b.inconsistent and b.margin == pytest.approx(0.0)


def test_one_tie_and_one_preference_goes_to_the_preferred_model() -> None:
    b = combine(j("a", "b", 6, 6), j("b", "a", 4, 7), "a", "b", "J")
    assert b.winner == "model_a" and not b.inconsistent and b.margin == pytest.approx(1.5)
    b = combine(j("a", "b", 3, 5), j("b", "a", 6, 6), "a", "b", "J")
    assert b.winner == "model_b" and not b.inconsistent


def test_both_ties() -> None:
    b = combine(j("a", "b", 7, 7), j("b", "a", 7, 7), "a", "b", "J")
    assert b.winner == "tie" and not b.inconsistent and b.margin == 0


def test_invalid_judgment_gives_invalid_battle_never_a_tie() -> None:
    for bad in (j("a", "b", ok=False), j("a", "b")):  # failed, or ok but with nothing in it
        b = combine(bad, j("b", "a", 7, 7), "a", "b", "J")
        assert b.winner is None and b.margin is None and not b.inconsistent
    b = combine(j("a", "b", 9, 1), j("b", "a", ok=False), "a", "b", "J")
    assert b.winner is None


def test_verdicts_decide_winner_scores_decide_margin() -> None:
    # verdicts only: A>>B = +3, A>B = +1 from the first-shown answer's view
    b = combine(j("a", "b", verdict="A>>B"), j("b", "a", verdict="B>A"), "a", "b", "J")
    assert b.winner == "model_a" and b.margin == pytest.approx((3 + 1) / 2)
    b = combine(j("a", "b", verdict="A>B"), j("b", "a", verdict="A>B"), "a", "b", "J")
    assert b.winner == "tie" and b.inconsistent and b.margin == 0
    # scores and verdicts: margin from the scores, winner from the verdicts (even against the scores)
    b = combine(j("a", "b", 6, 7, "A>B"), j("b", "a", 7, 7, "B>A"), "a", "b", "J")
    assert b.winner == "model_a" and b.margin == pytest.approx(-0.5)
    # mixed: one order has scores, the other only a verdict
    b = combine(j("a", "b", 9, 5), j("b", "a", verdict="B>>A"), "a", "b", "J")
    assert b.winner == "model_a" and b.margin == pytest.approx((4 + 3) / 2)


def test_wrong_orders_are_rejected() -> None:
    with pytest.raises(JudgeError, match="expected orders"):
        combine(j("a", "b", 1, 2), j("a", "b", 1, 2), "a", "b", "J")
    other = j("b", "a", 1, 2)
    other.prompt_id = "q"
    with pytest.raises(JudgeError, match="different prompts"):
        combine(j("a", "b", 1, 2), other, "a", "b", "J")
