"""Curricula as data: the built-in curricula, generators with known answers, GSM8K grouping, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from banditarena.curriculum.items import AnswerError, classify_solution, is_correct, parse_answer
from banditarena.curriculum.spec import load_curriculum
from banditarena.errors import ConfigError
from banditarena.paths import data_dir


def _eval(question: str) -> float:
    m = re.fullmatch(r"(\d+) ([+\-x]) (\d+) = \?", question)
    if m:
        a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
        return {"+": a + b, "-": a - b, "x": a * b}[op]
    m = re.fullmatch(r"(\d+) = (\d+) \+ \?", question)
    if m:
        return int(m.group(1)) - int(m.group(2))
    m = re.fullmatch(r"(\d+) = \? tens and (\d+) ones\. How many tens\?", question)
    if m:
        return int(m.group(1)) // 10
    m = re.fullmatch(r"(\d+) = (\d+) tens and \? ones\. How many ones\?", question)
    assert m, question
    return int(m.group(1)) % 10


def test_arith_items_have_the_right_answers_and_respect_their_activity(arith):
    rng = np.random.default_rng(0)
    for a in arith.activities:
        for _ in range(200):
            it = arith.item(a.index, rng)
            assert it.answer == _eval(it.question), (a.id, it)
            nums = [int(x) for x in re.findall(r"\d+", it.question)]
            if a.id == "add-3":      # a carry in the ones
                assert nums[0] % 10 + nums[1] % 10 >= 10 and nums[0] >= 10 and nums[1] >= 10
            if a.id == "add-2":      # no carry anywhere
                assert all(int(x) + int(y) <= 9 for x, y in zip(str(nums[0]).zfill(2), str(nums[1]).zfill(2)))
            if a.id in ("sub-3", "sub-4"):  # a borrow in the ones, never negative
                assert nums[0] % 10 < nums[1] % 10 and it.answer >= 0
            if a.id == "times-1":
                assert {2, 5, 10} & set(nums[:2])


def test_items_are_reproducible_from_the_seed(arith):
    one = [arith.item(k % 14, np.random.default_rng(5)).question for k in range(14)]
    two = [arith.item(k % 14, np.random.default_rng(5)).question for k in range(14)]
    assert one == two


def test_prerequisite_graph_and_expert_sequence(arith):
    ids = arith.activity_ids
    req = {a.id: sorted(ids[r] for r in a.requires) for a in arith.activities}
    assert req["add-1"] == ["decompose-1"]           # from the skill's prereqs
    assert req["add-3"] == ["add-2"]                 # previous level
    assert req["sub-3"] == ["add-3", "sub-2"]        # explicit requires
    anc = arith.ancestors[arith.index["sub-3"]]
    assert {ids[i] for i in np.flatnonzero(anc)} >= {"add-1", "decompose-3", "decompose-1", "sub-1"}
    seen: set[str] = set()
    for i in arith.expert_sequence:  # every prerequisite comes before its activity
        assert set(req[ids[i]]) <= seen
        seen.add(ids[i])


@pytest.mark.skipif(not (data_dir() / "gsm8k" / "train.jsonl").exists(), reason="needs ../shared/data/gsm8k")
def test_gsm8k_curriculum_groups_by_operations_and_steps():
    cur = load_curriculum("gsm8k")
    assert cur.n_activities == 10
    a = cur.activities[cur.index["add-sub-2"]]
    assert len(a.bank) > 100
    assert all(it.answer == it.answer for it in a.bank)
    m = cur.activities[cur.index["mixed-1"]]
    assert len(m.bank) > 500


def test_classify_solution_reads_the_calculator_annotations():
    ans = "She has 48/2 = <<48/2=24>>24.\nSo 48+24 = <<48+24=72>>72 in all.\n#### 72"
    assert classify_solution(ans) == (frozenset({"div", "add"}), 2)
    assert classify_solution("<<-3*4=-12>>-12\n#### -12") == (frozenset({"mul"}), 1)


def _write(tmp_path: Path, doc: dict) -> Path:
    p = tmp_path / "cur.yaml"
    p.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return p


BASE = {"name": "t", "skills": [{"id": "a"}, {"id": "b", "prereqs": ["a"]}],
        "activities": [{"id": "a-1", "skill": "a", "level": 1, "generator": {"kind": "add", "digits": 1}},
                       {"id": "b-1", "skill": "b", "level": 1, "generator": {"kind": "sub", "digits": 1}}]}


@pytest.mark.parametrize("change, message", [
    (lambda d: d["activities"][0].update(requires=["b-1"]), "prerequisite cycle a-1 -> b-1 -> a-1"),
    (lambda d: d["activities"][1].update(skill="c"), "activity 'b-1': unknown skill 'c'"),
    (lambda d: d["activities"][1].update(generator=None, bank={"kind": "items", "items": []}),
     "activity 'b-1': item bank is empty"),
    (lambda d: d["activities"][0]["generator"].update(size=3), "activity 'a-1': generator 'add' has no parameter 'size'"),
    (lambda d: d["skills"][1].update(prereqs=["zz"]), "skill 'b': prerequisite 'zz' names an unknown skill 'zz'"),
    (lambda d: d.update(expert_sequence=["a-1"]), "expert_sequence: activity 'b-1' is missing"),
])
def test_bad_curricula_fail_with_one_line_naming_file_and_item(tmp_path, change, message):
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    change(doc)
    p = _write(tmp_path, doc)
    with pytest.raises(ConfigError) as exc:
        load_curriculum(str(p))
    text = str(exc.value)
    assert "\n" not in text and str(p) in text and message in text


def test_a_gsm8k_filter_that_matches_nothing_is_an_empty_bank(tmp_path):
    path = tmp_path / "mini.jsonl"
    path.write_text('{"question": "q", "answer": "1+1 = <<1+1=2>>2\\n#### 2"}\n', encoding="utf-8")
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    doc["activities"][1].pop("generator")
    doc["activities"][1]["bank"] = {"kind": "gsm8k", "path": str(path), "ops_only": ["mul"]}
    with pytest.raises(ConfigError, match=r"activity 'b-1': item bank is empty \(no item matches in .*mini.jsonl\)"):
        load_curriculum(str(_write(tmp_path, doc)))


@pytest.mark.parametrize("text, value", [("42", 42), (" 7 ", 7), ("-3", -3), ("2.5", 2.5), ("1,000", 1000),
                                          ("$12", 12), ("3/4", 0.75), ("50%", 50)])
def test_answers_that_are_numbers(text, value):
    assert parse_answer(text) == value


@pytest.mark.parametrize("text, says", [("", "type an answer"), ("   ", "type an answer"), (None, "type an answer"),
                                        ("twelve", "number"), ("12 apples", "number"), ("1/0", "bottom"),
                                        ("9" * 33, "too long"), ("nan", "number"), ("inf", "number")])
def test_answers_that_are_refused_say_why_to_the_learner(text, says):
    with pytest.raises(AnswerError, match=says):
        parse_answer(text)


def test_marking(arith):
    it = arith.item(0, np.random.default_rng(1))
    assert is_correct(it, it.answer) and not is_correct(it, it.answer + 1)
