"""The web tutor refuses what a classroom must never allow, each with its HTTP status and nothing stored:
impersonation, a cross-teacher read, a POST without a CSRF token, a brute-forced sign-in code, a hostile
hint; every route without the right session; oversized bodies; wrong passwords that say nothing about
whether an account exists; an export of a learner that does not exist; names and answers in the logs."""

from __future__ import annotations

import logging
import re

import pytest

pytest.importorskip("fastapi")
from typer.testing import CliRunner

from banditarena.curriculum.hints import HintResult
from banditarena.curriculum.recipe import PolicySpec
from banditarena.curriculum.tutor import Tutor
from banditarena.curriculum.web import PUBLIC_ROUTES, WRONG_CODE, WRONG_LOGIN, Limits
from banditarena.web import FailureThrottle, RateLimit, SessionSigner
from tests.curriculum.webkit import PASSWORD, SECRET, counts, csrf, make_classroom, q

HOSTILE = ('<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'
           '"><b>bold</b>')


class HostileHints:
    """A hint service whose model writes markup and script (and which the checks let through)."""

    scorer_name = "test"

    def hint(self, item, template, answer, grade):
        return HintResult(HOSTILE, "model", HOSTILE, [], None, latency_s=0.01)


@pytest.fixture()
def room(arith, tmp_path):
    tutor = Tutor(arith, tmp_path / "t.sqlite", PolicySpec(kind="zpdes"), HostileHints(), seed=1)
    return make_classroom(tutor)


def _post(client, path, data=None, page="/"):
    return client.post(path, data={**(data or {}), "csrf_token": csrf(client.get(page).text)})


def test_a_learner_cannot_act_as_another(room):
    ada = room.learner("Ada")
    bo_id = room.ids["Bo"]
    before = counts(room.tutor.path)
    # names and ids in URLs are gone: the old routes do not exist, nothing takes a learner from the URL
    assert ada.get("/learn/Bo").status_code == 404
    assert ada.post("/learn/Bo/answer", data={"answer": "1"}).status_code in (403, 404)
    # a session cookie edited to name Bo, or signed with another key, is not a session
    forged = SessionSigner(b"x" * 32).sign({"sid": "s", "role": "learner", "sub": bo_id})
    c = room.client()
    c.cookies.set("tutor_session", forged)
    assert c.get("/learn").url.path == "/"
    tok = room.token(c)
    assert c.post("/learn/answer", data={"answer": "1", "csrf_token": tok}).status_code == 401
    real = ada.cookies.get("tutor_session")
    payload, mac = real.split(".")
    import base64
    import json

    obj = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    obj["d"]["sub"] = bo_id
    edited = base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode() + "." + mac
    c2 = room.client()
    c2.cookies.set("tutor_session", edited)
    assert c2.post("/learn/answer", data={"answer": "1", "csrf_token": room.token(c2)}).status_code == 401
    # a learner's session opens no teacher page or API
    for path in ("/teacher", f"/api/learners/{bo_id}", f"/teacher/learners/{bo_id}/export.json"):
        r = ada.get(path, follow_redirects=False)
        assert r.status_code in (303, 401) and "Bo" not in r.text
    assert _post(ada, f"/teacher/learners/{bo_id}/delete", page="/learn").status_code == 401
    assert counts(room.tutor.path) == {**before, "learners": before["learners"]}
    assert room.tutor.learner_view(bo_id)["answers"] == 0


def test_a_teacher_cannot_read_or_change_another_teachers_learners(room):
    kim = room.teacher("mr-kim")
    ada, cls = room.ids["Ada"], room.classes["2B"]
    assert "Ada" not in kim.get("/teacher").text
    for path in (f"/api/learners/{ada}", f"/teacher/learners/{ada}/export.json",
                 f"/teacher/learners/{ada}/export.csv", f"/teacher/classes/{cls}"):
        r = kim.get(path)
        assert r.status_code == 404 and "Ada" not in r.text, path
    before = counts(room.tutor.path)
    for path, data in ((f"/teacher/learners/{ada}/delete", {}), (f"/teacher/learners/{ada}/code", {}),
                       (f"/teacher/classes/{cls}/learners", {"names": "Mallory"})):
        r = _post(kim, path, data, page="/teacher")
        assert r.status_code == 404 and "Ada" not in r.text, path
    assert counts(room.tutor.path) == before
    ada_client = room.learner("Ada")                    # her code still works: Kim could not reset it
    assert q(ada_client.get("/learn").text, "learner") == "Ada"


def test_posts_without_a_valid_csrf_token_are_refused_and_store_nothing(room):
    ada, lee = room.learner("Ada"), room.teacher("ms-lee")
    lid, cid = room.ids["Ada"], room.classes["2B"]
    item = room.tutor.current(lid)["item"]
    before = counts(room.tutor.path)
    cases = [(ada, "/learn/answer", {"answer": item.answer_text, "item_id": item.id}), (ada, "/learn/hint", {}),
             (ada, "/signout", {}), (lee, "/teacher/classes", {"name": "Evil"}),
             (lee, f"/teacher/classes/{cid}/learners", {"names": "Mallory"}),
             (lee, f"/teacher/learners/{lid}/delete", {}), (lee, f"/teacher/learners/{lid}/code", {}),
             (room.client(), "/signin", {"code": room.codes["Bo"]}),
             (room.client(), "/teacher/login", {"username": "ms-lee", "password": PASSWORD})]
    for client, path, data in cases:
        for token in (None, "forged-token", csrf(room.client().get("/").text)):   # missing, wrong, another's
            body = dict(data, **({"csrf_token": token} if token else {}))
            r = client.post(path, data=body, follow_redirects=False)
            assert r.status_code == 403, (path, token, r.status_code)
        r = client.post(path, data={**data, "csrf_token": csrf(client.get("/").text)},
                        headers={"origin": "http://evil.example"}, follow_redirects=False)
        assert r.status_code == 403, path
    assert counts(room.tutor.path) == before and room.tutor.current(lid)["step"] == 0
    assert q(ada.get("/learn").text, "learner") == "Ada"          # still signed in: signout was refused too


def test_a_brute_forced_sign_in_code_is_refused_and_counted(room):
    limits = room.app.state.limits
    c = room.client()
    statuses = []
    for k in range(14):
        r = _post(c, "/signin", {"code": f"AAAA-{k:04d}"})
        statuses.append(r.status_code)
        if r.status_code == 401:
            assert q(r.text, "error") == WRONG_CODE
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}   # 10 typos free, then slowed down
    assert "wait" in q(r.text, "error") and int(r.headers["retry-after"]) >= 1
    r = _post(c, "/signin", {"code": room.codes["Ada"]})                 # even the right code: wait first
    assert r.status_code == 429 and c.get("/learn").url.path == "/"
    assert limits.learner_failures.refused == 5 and limits.learner_failures.failures == 10
    lee = room.teacher("ms-lee")
    assert re.search(r"wrong codes slowed down 5<", lee.get("/teacher").text)
    assert counts(room.tutor.path)["events"] == 0


def test_sign_ins_are_rate_limited_per_address(arith, tmp_path):
    tutor = Tutor(arith, tmp_path / "t.sqlite", seed=1)
    lim = Limits(signin=RateLimit.of("sign-ins", (0.001, 50), (0.001, 3)))
    room = make_classroom(tutor, limits=lim)
    codes = [_post(room.client(), "/signin", {"code": room.codes[n]}).status_code for n in ("Ada", "Bo", "Cy")]
    assert codes == [200, 200, 200]
    assert _post(room.client(), "/signin", {"code": room.codes["Ada"]}).status_code == 429
    assert lim.signin.refused == 1


def test_answers_and_hints_are_rate_limited(arith, tmp_path):
    tutor = Tutor(arith, tmp_path / "t.sqlite", seed=1)
    lim = Limits(answers=RateLimit.of("answers", (0.001, 3), (0.001, 100)),
                 hints=RateLimit.of("hints", (0.001, 1), (0.001, 100)))
    room = make_classroom(tutor, limits=lim)
    ada, lid = room.learner("Ada"), room.ids["Ada"]
    got = []
    for _ in range(5):
        cur = room.tutor.current(lid)["item"]
        got.append(_post(ada, "/learn/answer", {"answer": cur.answer_text, "item_id": cur.id}, "/learn").status_code)
    assert got == [200, 200, 200, 429, 429] and counts(tutor.path)["events"] == 3
    assert [_post(ada, "/learn/hint", page="/learn").status_code for _ in range(2)] == [200, 429]
    assert counts(tutor.path)["hints"] == 1
    assert room.learner("Bo")          # other learners are not held up by Ada's bucket


def test_a_hostile_hint_is_shown_as_text(room):
    ada = room.learner("Ada")
    page = _post(ada, "/learn/hint", page="/learn").text
    assert "<script>" not in page and "<img" not in page and "&lt;script&gt;" in page
    assert "script-src" not in ada.get("/learn").headers["content-security-policy"]    # default-src 'none'
    teacher = room.teacher("ms-lee").get("/teacher").text
    assert "<script>document" not in teacher and "onerror=\"document" not in teacher
    assert teacher.count("&lt;script&gt;") >= 1


def test_every_route_refuses_a_request_without_the_right_session(room):
    """Walk all routes of the app: without a session, with the wrong role, each non-public route refuses
    (401, a redirect to sign-in, or 404 for another teacher's ids) and shows no learner's data."""
    from starlette.routing import Mount

    lid, cid = room.ids["Ada"], room.classes["2B"]
    routes = []
    for r in room.app.routes:
        if isinstance(r, Mount):
            assert r.path == "/static"
            continue
        routes += [(m, r.path) for m in r.methods if m != "HEAD"]
    assert len(routes) >= 18
    assert {("GET", "/learn"), ("POST", "/learn/answer"), ("GET", "/api/learners/{lid}")} <= set(routes)
    anon = room.client()
    learner, teacher_other = room.learner("Bo"), room.teacher("mr-kim")
    sessions = {"anonymous": anon, "learner": learner, "other teacher": teacher_other}
    before = counts(room.tutor.path)
    checked = 0
    for method, path in routes:
        if (method, path) in PUBLIC_ROUTES:
            continue
        url = path.replace("{lid}", lid).replace("{cid}", cid)
        needs = "learner" if path.startswith(("/learn", "/signout")) else "teacher"
        for who, client in sessions.items():
            if (needs == "learner" and who == "learner") or (path == "/signout" and who != "anonymous"):
                continue
            if needs == "teacher" and who == "other teacher" and "{" not in path:
                continue        # his own pages: allowed, and they show only his classes (other tests)
            if method == "GET":
                r = client.get(url, follow_redirects=False)
                ok = r.status_code in (401, 404) or (r.status_code == 303 and r.headers["location"] in
                                                     ("/", "/teacher/login"))
            else:
                tok = csrf(client.get("/").text)
                r = client.post(url, data={"csrf_token": tok, "names": "Mallory", "name": "x", "answer": "1"},
                                follow_redirects=False)
                ok = r.status_code in (401, 404)
            assert ok, (who, method, url, r.status_code)
            assert "Ada" not in r.text, (who, method, url)
            checked += 1
    assert checked >= 30 and counts(room.tutor.path) == before
    # the public ones: sign-in pages and the style sheet; /setup only with its one-time token
    assert anon.get("/static/tutor.css").status_code == 200
    assert anon.get("/setup", follow_redirects=False).status_code == 403
    assert anon.get("/setup?token=wrong", follow_redirects=False).status_code == 403


def test_one_time_setup_link_creates_one_teacher(arith, tmp_path):
    tutor = Tutor(arith, tmp_path / "t.sqlite", seed=1)
    room = make_classroom(tutor, learners=())
    token = room.setup[1]
    c = room.client()
    page = c.get(f"/setup?token={token}").text
    r = c.post("/setup", data={"token": token, "username": "head", "password": "short", "password2": "short",
                               "csrf_token": csrf(page)})
    assert r.status_code == 422 and "at least 10" in q(r.text, "error") and counts(tutor.path)["teachers"] == 0
    r = c.post("/setup", data={"token": token, "username": "head", "password": PASSWORD, "password2": PASSWORD,
                               "csrf_token": csrf(page)})
    assert r.status_code == 200 and r.url.path == "/teacher" and counts(tutor.path)["teachers"] == 1
    c2 = room.client()
    r = c2.post("/setup", data={"token": token, "username": "evil", "password": PASSWORD, "password2": PASSWORD,
                                "csrf_token": room.token(c2)})
    assert r.status_code == 403 and counts(tutor.path)["teachers"] == 1      # used up


def test_wrong_passwords_say_nothing_about_the_account_and_slow_down(room):
    c = room.client()
    r1 = _post(c, "/teacher/login", {"username": "ms-lee", "password": "not her password"}, "/teacher/login")
    r2 = _post(c, "/teacher/login", {"username": "nobody", "password": "not her password"}, "/teacher/login")
    assert r1.status_code == r2.status_code == 401 and q(r1.text, "error") == q(r2.text, "error") == WRONG_LOGIN
    statuses = [_post(c, "/teacher/login", {"username": "ms-lee", "password": f"guess {k}"}, "/teacher/login"
                      ).status_code for k in range(6)]
    assert statuses[:3] == [401] * 3 and statuses[-1] == 429           # 5 failures free per address
    # failures are also counted per username, so guessing one account from many addresses slows down too
    lim = room.app.state.limits
    assert lim.teacher_failures._fails["u:ms-lee"][0] == 4 and lim.teacher_failures._fails["u:nobody"][0] == 1
    assert lim.teacher_failures.refused == 3


def test_oversized_requests_are_refused_with_413_and_nothing_stored(room):
    ada, lid = room.learner("Ada"), room.ids["Ada"]
    item = room.tutor.current(lid)["item"]
    r = _post(ada, "/learn/answer", {"answer": "1" * 20_000, "item_id": item.id}, "/learn")
    assert r.status_code == 413 and counts(room.tutor.path)["events"] == 0


def test_export_of_a_learner_that_does_not_exist(room, tmp_path, small_recipe):
    lee = room.teacher("ms-lee")
    for ext in ("json", "csv"):
        assert lee.get(f"/teacher/learners/l_ffffffffffffffff/export.{ext}").status_code == 404
    from banditarena.cli import app

    run_dir = tmp_path / "run"
    runner = CliRunner()
    r = runner.invoke(app, ["tutor", "admin", "create-teacher", str(small_recipe), "--run-dir", str(run_dir),
                            "--username", "ms-lee", "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["tutor", "admin", "create-teacher", str(small_recipe), "--run-dir", str(run_dir),
                            "--username", "ms-lee", "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 2 and "exists already" in r.output and len(r.output.strip().splitlines()) == 1
    out = tmp_path / "export.json"
    r = runner.invoke(app, ["tutor", "admin", "export", str(small_recipe), "--run-dir", str(run_dir),
                            "--learner", "l_nobody", "--out", str(out)])
    assert r.exit_code == 2 and not out.exists()
    assert r.output.strip() == f"error: --learner: no learner 'l_nobody' in {run_dir / 'tutor.sqlite'}"
    r = runner.invoke(app, ["tutor", "admin", "export", str(small_recipe), "--run-dir", str(tmp_path / "none"),
                            "--learner", "l_x", "--out", str(out)])
    assert r.exit_code == 2 and "no tutor database" in r.output and not out.exists()


def test_the_log_holds_no_names_codes_or_answers(room, caplog):
    caplog.set_level(logging.DEBUG)
    ada, lid = room.learner("Ada"), room.ids["Ada"]
    item = room.tutor.current(lid)["item"]
    _post(ada, "/learn/answer", {"answer": "98765", "item_id": item.id}, "/learn")
    c = room.client()
    for _ in range(12):
        _post(c, "/signin", {"code": "ZZZZ-ZZZZ"})
    _post(c, "/teacher/login", {"username": "ms-lee", "password": "wrong password!"}, "/teacher/login")
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert "sign-in refused" in text                       # refusals are logged ...
    for secret in ("Ada", "98765", "ZZZZ", room.codes["Ada"], "ms-lee", "testclient"):
        assert secret not in text                          # ... without names, codes, answers or addresses


def test_the_app_is_built_on_the_shared_web_security_module(room):
    assert isinstance(room.app.state.limits.learner_failures, FailureThrottle)
    assert room.app.state.security.signer.unsign(room.learner("Ada").cookies.get("tutor_session")) is not None
    assert SECRET not in room.learner("Bo").cookies.get("tutor_session").encode()
