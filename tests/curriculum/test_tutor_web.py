"""The web tutor through HTTP (FastAPI's test client): sessions in SQLite, resume, bad answers, the teacher page."""

from __future__ import annotations

import re
import sqlite3

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from banditarena.curriculum.hints import HintService
from banditarena.curriculum.recipe import PolicySpec
from banditarena.curriculum.tutor import Tutor
from banditarena.curriculum.web import build_tutor, create_app
from banditarena.errors import StoreError


def _q(html: str, id_: str) -> str | None:
    m = re.search(rf'id="{id_}"[^>]*>(.*?)</', html, re.DOTALL)
    return None if m is None else " ".join(m.group(1).split())


def _events(db) -> int:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT COUNT(*) FROM events").fetchone()[0]


@pytest.fixture()
def app_and_tutor(arith, tmp_path, scripted):
    backend = scripted(["Add the ones first: 7 and 8 make 15.", "Call 415-555-0199 for the answer."])
    tutor = Tutor(arith, tmp_path / "t.sqlite", PolicySpec(kind="zpdes"), HintService(backend), seed=1)
    return TestClient(create_app(tutor)), tutor


def test_a_learner_session_from_name_to_next_problem(app_and_tutor):
    client, tutor = app_and_tutor
    r = client.post("/start", data={"name": "Ada", "grade": "2"})
    assert r.status_code == 200 and r.url.path == "/learn/Ada"
    q = _q(r.text, "question")
    cur = tutor.current("Ada")
    assert q == cur["item"].question and cur["activity"] in ("decompose-1",)   # the only root of arith
    r = client.post("/learn/Ada/answer", data={"answer": cur["item"].answer_text, "item_id": cur["item"].id})
    assert r.status_code == 200 and "Well done" in _q(r.text, "feedback")
    nxt = tutor.current("Ada")
    assert nxt["step"] == 1
    r = client.post("/learn/Ada/answer", data={"answer": str(int(nxt["item"].answer) + 1), "item_id": nxt["item"].id})
    fb = _q(r.text, "feedback")
    assert "Not quite" in fb and nxt["item"].answer_text in fb
    row = tutor.decisions("Ada")
    assert [e["correct"] for e in row] == [1, 0] and all(0 < e["propensity"] <= 1 for e in row)
    arrays = tutor.decision_log("Ada").arrays()     # the bandit core's log, ready for ips/snips/doubly_robust
    assert arrays["rewards"].tolist() == [1.0, 0.0] and arrays["arms"][0] == tutor.curriculum.index["decompose-1"]


@pytest.mark.parametrize("answer, message", [("", "Please type an answer first."),
                                             ("seven", "Please answer with a number, like 42."),
                                             ("1" * 200, "That answer is too long.")])
def test_bad_answers_get_a_clear_message_and_nothing_is_stored(app_and_tutor, answer, message):
    client, tutor = app_and_tutor
    client.post("/start", data={"name": "Bo"})
    before = tutor.current("Bo")
    r = client.post("/learn/Bo/answer", data={"answer": answer, "item_id": before["item"].id})
    assert r.status_code == 422 and message in _q(r.text, "error")
    assert _events(tutor.path) == 0
    after = tutor.current("Bo")
    assert after["item"] == before["item"] and after["step"] == 0      # same problem, session goes on
    r = client.post("/learn/Bo/answer", data={"answer": before["item"].answer_text, "item_id": before["item"].id})
    assert r.status_code == 200 and _events(tutor.path) == 1


def test_a_form_sent_twice_is_counted_once(app_and_tutor):
    client, tutor = app_and_tutor
    client.post("/start", data={"name": "Cy"})
    cur = tutor.current("Cy")
    for _ in range(2):
        client.post("/learn/Cy/answer", data={"answer": cur["item"].answer_text, "item_id": cur["item"].id})
    assert _events(tutor.path) == 1


def test_names_are_checked(app_and_tutor):
    client, _ = app_and_tutor
    r = client.post("/start", data={"name": "   "})
    assert r.status_code == 400 and "type your name" in _q(r.text, "error")
    r = client.post("/start", data={"name": "<script>alert(1)</script>"})
    assert r.status_code == 400 and "<script>" not in r.text.split('id="name"')[1][:200].replace("&lt;", "")


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
    t2 = Tutor(arith, db, seed=4)                      # a new process: same learner, same problem, same policy
    assert t2.current("Dee")["item"] == pending["item"]
    again = t2.learner_view("Dee")
    assert again["zpd"] == state["zpd"] and again["answers"] == 12 and len(again["zpd"]) >= 2
    assert again["skills"][0]["mastery"] > 0.5         # 12 right answers raised the BKT estimate
    with pytest.raises(StoreError, match="another curriculum or policy"):
        Tutor(arith, db, PolicySpec(kind="expert"))


def test_hints_and_the_teacher_page(app_and_tutor):
    client, tutor = app_and_tutor
    client.post("/start", data={"name": "Eve", "grade": "3"})
    r = client.post("/learn/Eve/hint", data={"answer": ""})
    assert _q(r.text, "hint") == "Hint: Add the ones first: 7 and 8 make 15."
    cur = tutor.current("Eve")
    client.post("/learn/Eve/answer", data={"answer": cur["item"].answer_text, "item_id": cur["item"].id})
    r = client.post("/learn/Eve/hint", data={"answer": "12"})   # the backend now writes a phone number
    tmpl = tutor.curriculum.activities[tutor.curriculum.index[tutor.current("Eve")["activity"]]].hint
    assert _q(r.text, "hint") == f"Hint: {tmpl}"
    page = client.get("/teacher").text
    assert "Eve" in page and "Call 415-555-0199" in page and "safety unsafe: S7: pii: phone number" in page
    assert re.search(r'class="tag zpd">decompose-1<', page)
    assert client.get("/api/learners/Eve").json()["answers"] == 1
    assert client.get("/api/learners/Nobody").status_code == 404


def test_build_tutor_from_a_recipe(small_recipe, tmp_path):
    tutor, _ = build_tutor(small_recipe, tmp_path / "run")
    assert tutor.path == tmp_path / "run" / "tutor.sqlite" and tutor.hints.backend is None
    tutor.start("Flo")
    assert tutor.hint("Flo")["source"] == "template"
