"""parse_judgment on real-looking judge outputs; garbage is invalid, never a tie."""

from __future__ import annotations

import pytest

from banditarena.judges import parse_judgment

VALID = [
    # our own format
    ("Rationale: A explains the bug and fixes it; B misreads the question.\nScore A: 8\nScore B: 3", 8, 3),
    ("Rationale: Both are correct, A is more concise.\n\nScore A: 9\nScore B: 9", 9, 9),
    # "Assistant A: 7/10" style
    ("Assistant A: 7/10\nAssistant B: 4/10", 7, 4),
    ("Assistant A: 7 out of 10\nAssistant B: 5 out of 10", 7, 5),
    # markdown bold, decimals
    ("**Assistant A**: 8.5\n**Assistant B**: 6", 8.5, 6),
    ("**Score A:** 6.5\n**Score B:** 7.25", 6.5, 7.25),
    ("- **Score A**: **4**\n- **Score B**: **9**", 4, 9),
    ("`Score A: 2`  `Score B: 10`", 2, 10),
    # JSON, fenced or bare, several shapes
    ('```json\n{"rationale": "A is right", "score_a": 7, "score_b": 3}\n```', 7, 3),
    ('Here is my evaluation: {"scores": {"A": 7, "B": 9}}', 7, 9),
    ('{"scores": [7, 9], "explanation": "B is more complete"}', 7, 9),
    ('{"assistant_a": {"score": "7/10"}, "assistant_b": {"score": 4}}', 7, 4),
    ("{'Assistant A score': 6, 'Assistant B score': 8}", 6, 8),
    # double-bracket pair
    ("Both have merits. My scores: [[7, 5]]", 7, 5),
    ("[[7/10, 5/10]]", 7, 5),
    # other phrasings
    ("Score for Assistant A = 6\nScore for Assistant B = 6", 6, 6),
    ("Assistant A's score: 3\nAssistant B's score: 8", 3, 8),
    ("Assistant A receives a score of 9 while Assistant B receives a score of 2.", 9, 2),
    ("Scores: A=7, B=5", 7, 5),
    ("Rating (A): 6\nRating (B): 4", 6, 4),
    ("### Assistant A\nClear and correct.\nScore: 8/10\n\n### Assistant B\nWrong formula.\nScore: 3/10", 8, 3),
    (("**Assistant A's answer:**\nAssistant A explains; B skips a step.\nScore: 9/10\n\n"
      "**Assistant B's answer:**\nAssistant A was clearer.\nScore: 4/10"), 9, 4),
    # the last labelled score wins over one mentioned earlier in the rationale
    ("Rationale: at first I would give Assistant A: 5/10 but after checking the code...\nScore A: 8\nScore B: 4",
     8, 4),
    # reasoning blocks are ignored
    ("<think>maybe Score A: 2</think>\nScore A: 6\nScore B: 4", 6, 4),
]


@pytest.mark.parametrize("text,a,b", VALID)
def test_valid_outputs(text: str, a: float, b: float) -> None:
    p = parse_judgment(text)
    assert p.ok, (text, p.error)
    assert (p.score_a, p.score_b) == (a, b)
    assert p.error is None


def test_rationale_is_extracted() -> None:
    p = parse_judgment("Rationale: A is right.\nB is wrong.\nScore A: 7\nScore B: 2")
    assert p.rationale == "A is right. B is wrong."
    p = parse_judgment('{"score_a": 7, "score_b": 3, "rationale": "A cites the docs"}')
    assert p.rationale == "A cites the docs"


INVALID = [
    ("", "empty"),
    ("   \n ", "empty"),
    ("Both answers are equally good.", "no score"),
    ("I'd give them 7 and 7.", "no score"),
    ("Score A: <a number from 1 to 10>\nScore B: <a number from 1 to 10>", "no score"),  # echoed format
    ("Score A: 7", "Assistant B"),  # half a pair
    ("Score A: 11\nScore B: 5", "out of range"),
    ("Score A: 0\nScore B: 5", "out of range"),
    ("Score A: -2\nScore B: 5", "out of range"),
    ("Score A: 7/5\nScore B: 3/5", "/5 scale"),
    ("Assistant A: 70/100\nAssistant B: 50/100", "/100 scale"),
    ('{"score_a": 12, "score_b": 3}', "out of range"),
    ("Assistant A:\n1. correct\n2. clear\nAssistant B:\n1. wrong", "no score"),  # list numbers are not scores
    ("Plan A: 3 steps. Plan B: 5 steps.", "no score"),
    ("Here is my verdict: [[A>B]]", "no score"),  # verdict only, but scores were asked for
    ("{not json at all", "no score"),
]


@pytest.mark.parametrize("text,why", INVALID)
def test_invalid_outputs_are_never_ties(text: str, why: str) -> None:
    p = parse_judgment(text)
    assert not p.ok
    assert p.error and why in p.error
    # an invalid parse must not look like a tie to anyone reading the fields
    assert not (p.score_a is not None and p.score_a == p.score_b)


def test_verdict_mode() -> None:
    p = parse_judgment("Rationale: A is better.\nScore A: 7\nScore B: 5\nVerdict: [[A>B]]", verdict=True)
    assert p.ok and p.verdict == "A>B" and (p.score_a, p.score_b) == (7, 5)
    assert parse_judgment("My final verdict is: [[B>>A]]", verdict=True).verdict == "B>>A"
    assert parse_judgment("[[A<B]]", verdict=True).verdict == "B>A"
    assert parse_judgment("[[A<<B]]", verdict=True).verdict == "B>>A"
    assert parse_judgment("[[B=A]]", verdict=True).verdict == "A=B"
    assert parse_judgment("Verdict: A≫B", verdict=True).verdict == "A>>B"
    assert parse_judgment('{"score_a": 4, "score_b": 6, "verdict": "[[B>A]]"}', verdict=True).verdict == "B>A"
    # verdict asked but missing: invalid even with scores
    p = parse_judgment("Score A: 7\nScore B: 5", verdict=True)
    assert not p.ok and "verdict" in (p.error or "")
    # two different verdicts: invalid (as in Arena-Hard-Auto)
    p = parse_judgment("At first [[A>B]] but on reflection [[B>A]]", verdict=True)
    assert not p.ok and "conflicting" in (p.error or "")
    # the same verdict twice is fine
    assert parse_judgment("[[A=B]] ... so: [[A=B]]", verdict=True).verdict == "A=B"
    # verdict tags are ignored when only scores were asked for
    p = parse_judgment("Score A: 3\nScore B: 8\n[[A>>B]]", verdict=False)
    assert p.ok and p.verdict is None and (p.score_a, p.score_b) == (3, 8)


@pytest.mark.parametrize(
    "text",
    ["{" * 20000, '{"a": ' * 3000, "Assistant A " * 5000, "[[7, " * 5000, "Score A: " * 5000, "\x00\ufffd" * 100],
)
def test_pathological_outputs_are_invalid_not_crashes(text: str) -> None:
    p = parse_judgment(text)
    assert not p.ok and p.error
