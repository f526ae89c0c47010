"""The web tutor through HTTP (FastAPI's test client): a learner signed in with their code, answers, bad
answers, resume after a restart, hints and the teacher's pages, export and deletion."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3

import pytest

pytest.importorskip("fastapi")

from banditarena.curriculum.hints import HintService
from banditarena.curriculum.recipe import PolicySpec
from banditarena.curriculum.tutor import Tutor
from banditarena.curriculum.web import build_tutor
from banditarena.errors import StoreError
from tests.curriculum.webkit import counts, csrf, make_classroom, q


@pytest.fixture()
def room(arith, tmp_path, scripted):
    backend = scripted(["Add the ones first: 7 and 8 make 15.", "Call 415-555-0199 for the answer."])
    tutor = Tutor(arith, tmp_path / "t.sqlite", PolicySpec(kind="zpdes"), HintService(backend), seed=1)
    return make_classroom(tutor)


def _answer(client, text: str, item_id: str):
    page = client.get("/learn").text
    return client.post("/learn/answer", data={"answer": text, "item_id": item_id, "csrf_token": csrf(page)})


def test_a_learner_signs_in_with_their_code_and_gets_the_next_problem(room):
    ada = room.learner("Ada")
    lid = room.ids["Ada"]
    r = ada.get("/learn")
    assert q(r.text, "learner") == "Ada" and "Ada" not in str(r.url)
    cur = room.tutor.current(lid)
    assert q(r.text, "question") == cur["item"].question and cur["activity"] == "decompose-1"
    r = _answer(ada, cur["item"].answer_text, cur["item"].id)
    assert r.status_code == 200 and "Well done" in q(r.text, "feedback")
    nxt = room.tutor.current(lid)
    r = _answer(ada, str(int(nxt["item"].answer) + 1), nxt["item"].id)
    assert "Not quite" in q(r.text, "feedback") and nxt["item"].answer_text in q(r.text, "feedback")
    assert [e["correct"] for e in room.tutor.decisions(lid)] == [1, 0]
    arrays = room.tutor.decision_log(lid).arrays()
    assert arrays["rewards"].tolist() == [1.0, 0.0] and arrays["arms"][0] == room.tutor.curriculum.index["decompose-1"]
    # codes are typed any way a child types them
    c = room.client()
    r = c.post("/signin", data={"code": room.codes["Bo"].lower().replace("-", " "), "csrf_token": room.token(c)})
    assert r.url.path == "/learn" and q(r.text, "learner") == "Bo"


@pytest.mark.parametrize("answer, message", [("", "Please type an answer first."),
                                             ("seven", "Please answer with a number, like 42."),
                                             ("1" * 200, "That answer is too long.")])
def test_bad_answers_get_a_clear_message_and_nothing_is_stored(room, answer, message):
    bo, lid = room.learner("Bo"), room.ids["Bo"]
    before = room.tutor.current(lid)
    r = _answer(bo, answer, before["item"].id)
    assert r.status_code == 422 and message in q(r.text, "error")
    assert counts(room.tutor.path)["events"] == 0
    after = room.tutor.current(lid)
    assert after["item"] == before["item"] and after["step"] == 0
    assert _answer(bo, before["item"].answer_text, before["item"].id).status_code == 200
    assert counts(room.tutor.path)["events"] == 1


def test_a_form_sent_twice_is_counted_once(room):
    cy, lid = room.learner("Cy"), room.ids["Cy"]
    cur = room.tutor.current(lid)
    tok = csrf(cy.get("/learn").text)
    for _ in range(2):
        cy.post("/learn/answer", data={"answer": cur["item"].answer_text, "item_id": cur["item"].id,
                                       "csrf_token": tok})
    assert counts(room.tutor.path)["events"] == 1


def test_teachers_add_learners_with_checked_names_and_get_codes_once(room):
    lee = room.teacher("ms-lee")
    cid = room.classes["2B"]
    page = lee.get(f"/teacher/classes/{cid}").text
    before = counts(room.tutor.path)["learners"]
    r = lee.post(f"/teacher/classes/{cid}/learners", data={"names": "Dee\n<script>alert(1)</script>",
                                                           "grade": "2", "csrf_token": csrf(page)})
    assert r.status_code == 422 and "line 2" in q(r.text, "error") and "<script>alert" not in r.text
    assert counts(room.tutor.path)["learners"] == before                   # nothing added
    r = lee.post(f"/teacher/classes/{cid}/learners", data={"names": "Dee\nEli", "grade": "1",
                                                           "csrf_token": csrf(page)})
    codes = {m.group(1): m.group(2)
             for m in re.finditer(r'<td>(\w+)</td><td class="code">([A-Z0-9-]+)</td>', r.text)}
    assert set(codes) == {"Dee", "Eli"} and all(len(c) == 9 for c in codes.values())
    assert codes["Dee"] not in lee.get(f"/teacher/classes/{cid}").text     # shown once
    with sqlite3.connect(room.tutor.path) as con:            # only keyed hashes are stored
        stored = [r[0] for r in con.execute("SELECT code_hash FROM learners")]
    assert codes["Dee"].replace("-", "") not in " ".join(stored)
    room.codes["Dee"] = codes["Dee"]
    assert q(room.learner("Dee").get("/learn").text, "learner") == "Dee"


def test_a_new_code_replaces_the_old_one(room):
    lee = room.teacher("ms-lee")
    lid = room.ids["Ada"]
    tok = csrf(lee.get(f"/teacher/classes/{room.classes['2B']}").text)
    r = lee.post(f"/teacher/learners/{lid}/code", data={"csrf_token": tok})
    new = re.search(r'class="code">([A-Z0-9-]+)<', r.text).group(1)
    old, room.codes["Ada"] = room.codes["Ada"], new
    room.learner("Ada")
    c = room.client()
    assert c.post("/signin", data={"code": old, "csrf_token": room.token(c)}).status_code == 401


def test_sessions_persist_and_resume_after_a_restart(arith, tmp_path):
    db = tmp_path / "t.sqlite"
    t1 = Tutor(arith, db, seed=4)
    t1.start("Dee", 1)
    for _ in range(12):
        cur = t1.current("Dee")
        t1.answer("Dee", cur["item"].answer_text)
    pending = t1.current("Dee")
    state = t1.learner_view("Dee")
    t1.close()
    t2 = Tutor(arith, db, seed=4)
    assert t2.current("Dee")["item"] == pending["item"]
    again = t2.learner_view("Dee")
    assert again["zpd"] == state["zpd"] and again["answers"] == 12 and len(again["zpd"]) >= 2
    assert again["skills"][0]["mastery"] > 0.5
    with pytest.raises(StoreError, match="another curriculum or policy"):
        Tutor(arith, db, PolicySpec(kind="expert"))


def test_a_signed_in_learner_resumes_after_a_server_restart(room, arith):
    ada, lid = room.learner("Ada"), room.ids["Ada"]
    cur = room.tutor.current(lid)
    _answer(ada, cur["item"].answer_text, cur["item"].id)
    pending = room.tutor.current(lid)["item"]
    room.tutor.close()
    t2 = Tutor(arith, room.tutor.path, PolicySpec(kind="zpdes"), seed=1)
    room2 = make_classroom(t2, learners=())                                # same secret: the cookie still works
    again = room2.client()
    again.cookies.update(ada.cookies)
    r = again.get("/learn")
    assert r.status_code == 200 and q(r.text, "question") == pending.question


def test_hints_and_the_teacher_page(room):
    eve_id = room.ids["Ada"]
    ada = room.learner("Ada")
    r = ada.post("/learn/hint", data={"answer": "", "csrf_token": csrf(ada.get("/learn").text)})
    assert q(r.text, "hint") == "Hint: Add the ones first: 7 and 8 make 15."
    cur = room.tutor.current(eve_id)
    _answer(ada, cur["item"].answer_text, cur["item"].id)
    r = ada.post("/learn/hint", data={"answer": "12", "csrf_token": csrf(ada.get("/learn").text)})
    tmpl = room.tutor.curriculum.activities[room.tutor.curriculum.index[room.tutor.current(eve_id)["activity"]]].hint
    assert q(r.text, "hint") == f"Hint: {tmpl}"
    lee = room.teacher("ms-lee")
    page = lee.get("/teacher").text
    assert "Ada" in page and "Bo" in page and "Cy" not in page                 # only her classes
    assert "Call 415-555-0199" in page and "safety unsafe: S7: pii: phone number" in page
    assert re.search(r'class="tag zpd">decompose-1<', page)
    assert lee.get(f"/api/learners/{eve_id}").json()["answers"] == 1
    assert lee.get("/api/learners/l_0000000000000000").status_code == 404


def test_export_json_and_csv_and_delete(room):
    ada, lid = room.learner("Ada"), room.ids["Ada"]
    cur = room.tutor.current(lid)
    _answer(ada, "=1+2", cur["item"].id)                                   # not a number: refused
    _answer(ada, cur["item"].answer_text, cur["item"].id)
    ada.post("/learn/hint", data={"csrf_token": csrf(ada.get("/learn").text)})
    lee = room.teacher("ms-lee")
    r = lee.get(f"/teacher/learners/{lid}/export.json")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    data = json.loads(r.text)
    assert data["learner"]["name"] == "Ada" and len(data["answers"]) == 1 and len(data["hints"]) == 1
    assert {s["skill"] for s in data["mastery"]} >= {"decompose"}
    rows = list(csv.DictReader(io.StringIO(lee.get(f"/teacher/learners/{lid}/export.csv").text)))
    assert len(rows) == 1 and rows[0]["name"] == "Ada" and rows[0]["correct"] == "1"
    tok = csrf(lee.get(f"/teacher/classes/{room.classes['2B']}").text)
    before = counts(room.tutor.path)
    r = lee.post(f"/teacher/learners/{lid}/delete", data={"csrf_token": tok})
    assert r.status_code == 200 and "Ada" not in r.text
    after = counts(room.tutor.path)
    assert after["learners"] == before["learners"] - 1 and after["events"] == 0 and after["hints"] == 0
    assert ada.get("/learn").url.path == "/"                                 # her session is over
    assert lee.get(f"/teacher/learners/{lid}/export.json").status_code == 404


def test_build_tutor_from_a_recipe(small_recipe, tmp_path):
    tutor, _ = build_tutor(small_recipe, tmp_path / "run")
    assert tutor.path == tmp_path / "run" / "tutor.sqlite" and tutor.hints.backend is None
    tutor.start("Flo")
    assert tutor.hint("Flo")["source"] == "template"


def test_learners_inactive_past_the_retention_period_are_deleted(room):
    import time

    assert room.tutor.purge_inactive(30) == 0
    n = counts(room.tutor.path)["learners"]
    assert room.tutor.purge_inactive(30, now=time.time() + 31 * 86400) == n
    assert counts(room.tutor.path)["learners"] == 0
