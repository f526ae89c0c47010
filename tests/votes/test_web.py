"""The vote page through FastAPI's test client: a vote end to end, and every refusal of the security layer,
each with its status, its counter, and nothing stored."""

from __future__ import annotations

import base64
import json

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from banditarena.votes.web import VoteLimits, create_app
from banditarena.web import AdminToken, RateLimit
from tests.votes.conftest import HOSTILE, MODELS, SECRET, field, make_service, vote_rows

ADMIN = "an admin token of some length"


def app_for(service, **kw):
    token = AdminToken.from_env("NO_SUCH_VARIABLE_X") or AdminToken(AdminToken._hash(ADMIN))
    return create_app(service, secret=SECRET, admin_token=token, **kw)


def test_a_vote_end_to_end_names_hidden_then_revealed(service):
    c = TestClient(app_for(service))
    page = c.get("/")
    assert page.status_code == 200
    assert not any(m in page.text for m in MODELS)                       # anonymous until the vote
    assert "active sampling" in page.text and "variance" in page.text   # the about box says which sampler
    payload = field(page.text, "ticket").split(".")[0]
    seen = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert not any(m in seen for m in MODELS)                            # the ticket names no model ...
    assert not any(g.cache_key in seen for g in service.answers.values())  # ... nor an answer's content hash
    assert set(json.loads(seen)["d"]) == {"id", "v", "a", "b"}
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "script-src" not in page.headers["content-security-policy"]     # default-src 'none': no script at all
    r = c.post("/vote", data={"csrf_token": field(page.text, "csrf_token"), "ticket": field(page.text, "ticket"),
                              "choice": "b"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/battle/h_")
    shown = c.get(r.headers["location"])
    assert shown.status_code == 200 and "B is better" in shown.text
    votes = service.store.votes()
    assert len(votes) == 1
    v = votes.iloc[0]
    assert v["type"] == "rightvote" and v["voter"].startswith("v_") and "127.0.0.1" not in v["voter"]
    assert f'id="name-a">{v["model_a"]}<' in shown.text and f'id="name-b">{v["model_b"]}<' in shown.text
    b = service.store.battles(judge="human")
    assert list(b["winner"]) == ["model_b"] and list(b["model_a"]) == [v["model_a"]]
    # another browser cannot open this voter's result
    assert TestClient(app_for(service)).get(r.headers["location"]).status_code == 404


def _ticket_and_csrf(c):
    page = c.get("/")
    return field(page.text, "ticket"), field(page.text, "csrf_token")


def test_replayed_forged_and_foreign_votes_are_refused_and_counted(service, tmp_path):
    c = TestClient(app_for(service))
    ticket, csrf = _ticket_and_csrf(c)
    ok = c.post("/vote", data={"csrf_token": csrf, "ticket": ticket, "choice": "a"},
                headers={"accept": "application/json"})
    assert ok.status_code == 200 and ok.json()["stored"] is True
    again = c.post("/vote", data={"csrf_token": csrf, "ticket": ticket, "choice": "b"},
                   headers={"accept": "application/json"})
    assert again.status_code == 409 and again.json()["reason"] == "already voted"
    body, mac = ticket.rsplit(".", 1)
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
    r = c.post("/vote", data={"csrf_token": csrf, "ticket": forged, "choice": "a"},
               headers={"accept": "application/json"})
    assert r.status_code == 403 and r.json()["reason"] == "forged or expired ticket"
    other = TestClient(app_for(service))                                  # a second voter with the first's ticket
    _, csrf2 = _ticket_and_csrf(other)
    r = other.post("/vote", data={"csrf_token": csrf2, "ticket": ticket, "choice": "a"},
                   headers={"accept": "application/json"})
    assert r.status_code == 403 and r.json()["reason"] == "not shown to this voter"
    bad = c.post("/vote", data={"csrf_token": csrf, "ticket": _ticket_and_csrf(c)[0], "choice": "A>>B"},
                 headers={"accept": "application/json"})
    assert bad.status_code == 422
    assert vote_rows(service.store.run_dir) == 1
    assert service.refused == {"already voted": 1, "forged or expired ticket": 1, "not shown to this voter": 1,
                               "unknown choice": 1}
    # a browser form (no JSON) gets the page back with the reason and a fresh battle
    page = c.post("/vote", data={"csrf_token": csrf, "ticket": ticket, "choice": "a"})
    assert page.status_code == 409 and "already voted" in page.text and 'name="ticket"' in page.text


def test_csrf_origin_and_cookie_less_votes_are_refused(service):
    app = app_for(service)
    c = TestClient(app)
    ticket, csrf = _ticket_and_csrf(c)
    assert c.post("/vote", data={"ticket": ticket, "choice": "a"}).status_code == 403            # no CSRF token
    assert c.post("/vote", data={"csrf_token": "x" * 40, "ticket": ticket, "choice": "a"}).status_code == 403
    r = c.post("/vote", data={"csrf_token": csrf, "ticket": ticket, "choice": "a"},
               headers={"origin": "https://evil.example"})
    assert r.status_code == 403
    fresh = TestClient(app)                                                # no cookie at all
    assert fresh.post("/vote", data={"csrf_token": csrf, "ticket": ticket, "choice": "a"}).status_code == 403
    assert vote_rows(service.store.run_dir) == 0
    assert app.state.security.csrf_refused == 4 and sum(service.refused.values()) == 0


def test_rate_limits_per_voter_and_body_size(service):
    limits = VoteLimits(votes=RateLimit.of("votes", (0.001, 2), (0.001, 100)))
    app = app_for(service, limits=limits)
    c = TestClient(app)
    codes = []
    for _ in range(3):
        ticket, csrf = _ticket_and_csrf(c)
        codes.append(c.post("/vote", data={"csrf_token": csrf, "ticket": ticket, "choice": "tie"},
                            headers={"accept": "application/json"}).status_code)
    assert codes == [200, 200, 429]
    assert vote_rows(service.store.run_dir) == 2 and limits.votes.refused == 1
    ticket, csrf = _ticket_and_csrf(c)
    big = c.post("/vote", data={"csrf_token": csrf, "ticket": ticket, "choice": "a", "pad": "x" * 9000})
    assert big.status_code == 413 and vote_rows(service.store.run_dir) == 2


def test_per_address_limit_across_voters(service):
    limits = VoteLimits(pages=RateLimit.of("pages", (10.0, 100), (0.001, 3)))
    app = app_for(service, limits=limits)
    codes = [TestClient(app).get("/").status_code for _ in range(4)]       # four voters, one address
    assert codes == [200, 200, 200, 429]


def test_admin_pages_and_exports_need_the_token(service):
    app = app_for(service)
    c = TestClient(app)
    ticket, csrf = _ticket_and_csrf(c)
    c.post("/vote", data={"csrf_token": csrf, "ticket": ticket, "choice": "a"})
    for path in ("/admin", "/admin/export/conv.jsonl", "/admin/export/clean_battle.json"):
        assert c.get(path).status_code == 401
        assert c.get(path, headers={"authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
    r = c.get("/admin/export/conv.jsonl", headers={"authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200 and r.text.count("\n") == 1 and '"type": "leftvote"' in r.text
    login = c.get("/admin/login")
    bad = c.post("/admin/login", data={"csrf_token": field(login.text, "csrf_token"), "token": "nope"})
    assert bad.status_code == 401
    ok = c.post("/admin/login", data={"csrf_token": field(login.text, "csrf_token"), "token": ADMIN})
    assert ok.status_code == 200 and ok.url.path == "/admin" and 'id="refusals"' in ok.text
    assert c.get("/admin").status_code == 200
    # with no admin token configured, the admin pages do not exist
    off = TestClient(create_app(service, secret=SECRET, admin_token=None))
    assert off.get("/admin", headers={"authorization": f"Bearer {ADMIN}"}).status_code == 401
    assert off.get("/admin/login").status_code == 404


def test_a_hostile_answer_is_escaped_in_the_html(tmp_path):
    svc = make_service(tmp_path / "run", hostile=HOSTILE, n_prompts=2)
    try:
        c = TestClient(app_for(svc))
        seen = False
        for _ in range(20):
            page = c.get("/").text
            if "window.__pwned" in page:
                seen = True
                assert "<script" not in page and "<img" not in page and "<iframe" not in page
                assert 'href="javascript' not in page and "&lt;script&gt;" in page and "<strong>bold</strong>" in page
        assert seen
    finally:
        svc.store.close()


def test_a_voter_never_gets_the_same_matchup_twice(tmp_path):
    svc = make_service(tmp_path / "run", n_prompts=2)           # 2 prompts x 3 pairs = 6 matchups
    try:
        c = TestClient(app_for(svc))
        for _ in range(6):
            ticket, csrf = _ticket_and_csrf(c)
            assert c.post("/vote", data={"csrf_token": csrf, "ticket": ticket, "choice": "a"},
                          headers={"accept": "application/json"}).status_code == 200
        assert "voted on every battle" in c.get("/").text
        assert svc.store.votes()["matchup"].nunique() == 6
    finally:
        svc.store.close()


def test_leaderboard_page(service):
    c = TestClient(app_for(service))
    assert "No votes yet" in c.get("/leaderboard").text
    for _ in range(6):
        ticket, csrf = _ticket_and_csrf(c)
        c.post("/vote", data={"csrf_token": csrf, "ticket": ticket, "choice": "a"})
    board = c.get("/leaderboard").text
    assert 'id="board"' in board and all(m in board for m in MODELS)


def test_the_uncertain_sampler_sends_people_where_the_judge_cannot_decide(tmp_path):
    from collections import Counter

    from banditarena.store import RunStore
    from banditarena.types import Battle
    from banditarena.votes.service import VoteService
    from tests.votes.conftest import fill_store, make_prompts

    store = RunStore(tmp_path / "run")
    prompts = make_prompts(6)
    answers = fill_store(store, prompts)
    rows = []
    for k, p in enumerate(prompts):         # p0, p1: a coin flip for the judge; the rest: settled (0.99)
        for i, a in enumerate(MODELS):
            for b in MODELS[i + 1:]:
                out = 0.5 if p.id in ("p0", "p1") else 0.99
                rows.append((f"ai{k}{a}{b}", Battle(p.id, a, b, "model_a" if out > 0.5 else "tie", 0.0, False,
                                                    "learned", outcome=out), len(rows), ("", "", "", "")))
    store.put_battles(rows, tag="arena")
    svc = VoteService(store, prompts, answers, SECRET, sampler="uncertain", seed=0)
    try:
        shown = Counter(svc.pick(f"v_{i:016x}").prompt.id for i in range(3000))
        share = (shown["p0"] + shown["p1"]) / 3000
        # weight 1.0 for the 2 uncertain prompts, 0.05 + 0.95 * 0.02 for the 4 settled ones
        settled = 0.05 + 0.95 * 0.02
        assert share == pytest.approx(2 / (2 + 4 * settled), abs=0.03)
        assert "least certain" in svc.about and "learned" in svc.about
    finally:
        store.close()
