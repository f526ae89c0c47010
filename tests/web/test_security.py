"""The shared web-security module: signed sessions, CSRF, rate limits, throttles, passwords, admin tokens,
size limits and headers, alone and wired into a small FastAPI app."""

from __future__ import annotations

import re

import pytest

from banditarena.web import (
    AdminToken,
    CookieSettings,
    FailureThrottle,
    RateLimit,
    RateLimiter,
    Session,
    SessionSigner,
    WebSecurity,
    csrf_token,
    hash_password,
    load_or_create_secret,
    new_secret,
    verify_csrf,
    verify_password,
)

fastapi = pytest.importorskip("fastapi")
from fastapi import Depends, FastAPI, Form, Request
from fastapi.testclient import TestClient

SECRET = b"k" * 32


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_signed_tokens_refuse_tampering_other_keys_and_age():
    s = SessionSigner(SECRET, max_age_s=60)
    tok = s.sign({"sid": "abc", "role": "teacher", "sub": "1"}, now=1000)
    assert s.unsign(tok, now=1030) == {"sid": "abc", "role": "teacher", "sub": "1"}
    assert s.unsign(tok, now=1061) is None                                   # expired
    payload, mac = tok.split(".")
    forged = SessionSigner(b"x" * 32).sign({"sid": "abc", "role": "teacher", "sub": "2"}, now=1000)
    assert s.unsign(forged, now=1000) is None                                # another secret
    assert s.unsign(forged.split(".")[0] + "." + mac, now=1000) is None      # swapped payload
    assert s.unsign(payload + "." + mac[:-2] + "AA", now=1000) is None
    for junk in ("", "a", "a.b.c", "!!.??", "x" * 5000, None):
        assert s.unsign(junk, now=1000) is None
    assert SessionSigner(SECRET, purpose="other").unsign(tok, now=1000) is None
    with pytest.raises(ValueError):
        SessionSigner(b"short")


def test_session_sign_in_rotates_the_id_and_the_cookie_is_httponly_samesite():
    s = Session.from_payload(None)
    assert s.dirty and s.role is None
    old = s.id
    s.sign_in("learner", "l_1")
    assert s.id != old and s.role == "learner" and s.subject == "l_1"
    h = CookieSettings(secure=True).header("v")
    assert "HttpOnly" in h and "SameSite=Lax" in h and "Secure" in h and "Max-Age=43200" in h


def test_csrf_tokens_are_bound_to_the_session():
    t = csrf_token("sid-1", SECRET)
    assert verify_csrf("sid-1", t, SECRET)
    assert not verify_csrf("sid-2", t, SECRET)
    assert not verify_csrf("sid-1", t, b"y" * 32)
    assert not verify_csrf("sid-1", None, SECRET) and not verify_csrf("sid-1", "", SECRET)


def test_token_bucket_refuses_and_counts_then_refills():
    clock = Clock()
    rl = RateLimiter(rate_per_s=0.5, burst=3, clock=clock)
    assert [rl.allow("a") for _ in range(4)] == [True, True, True, False]
    assert rl.allow("b")                                     # keys are separate
    assert rl.refused == 1 and rl.refused_by_key == {"a": 1}
    assert rl.retry_after("a") == pytest.approx(2.0)
    clock.t += 2.0
    assert rl.allow("a") and not rl.allow("a")


def test_rate_limit_checks_session_then_address():
    clock = Clock()
    lim = RateLimit("answers", RateLimiter(1, 2, clock=clock), RateLimiter(1, 3, clock=clock))
    assert lim.check("s1", "10.0.0.1") == 0 and lim.check("s1", "10.0.0.1") == 0
    assert lim.check("s1", "10.0.0.1") > 0                   # this session is out
    assert lim.check("s2", "10.0.0.1") == 0                  # another session, same address: 3rd token
    assert lim.check("s3", "10.0.0.1") > 0                   # the address is out
    assert lim.refused == 2


def test_failure_throttle_slows_repeated_failures_and_counts_refusals():
    clock = Clock()
    th = FailureThrottle(free=3, base_s=1.0, max_s=10.0, window_s=3600, clock=clock)
    for _ in range(3):
        assert th.wait_s("ip") == 0
        th.failure("ip")
    assert th.wait_s("ip") == pytest.approx(1.0)             # the 4th try waits 1 s
    clock.t += 1.0
    assert th.wait_s("ip") == 0
    th.failure("ip")
    assert th.wait_s("ip") == pytest.approx(2.0)             # then 2 s, 4 s, ... capped at 10 s
    for _ in range(10):
        th.failure("ip")
    assert th.wait_s("ip") == pytest.approx(10.0)
    assert th.refused == 3 and th.failures == 14
    th.success("ip")
    assert th.wait_s("ip") == 0


def test_passwords_hash_with_argon2id_and_unknown_accounts_fail_the_same_way():
    h = hash_password("correct horse battery")
    assert h.startswith("$argon2id$") and "correct" not in h
    assert verify_password(h, "correct horse battery")
    assert not verify_password(h, "wrong horse battery")
    assert not verify_password(None, "correct horse battery")
    assert not verify_password("not a hash", "x")


def test_admin_tokens_are_one_time_and_expire():
    tok, plain = AdminToken.issue(ttl_s=60)
    assert not tok.verify("nope") and tok.verify(plain)
    assert tok.consume(plain) and not tok.consume(plain)
    old, plain2 = AdminToken.issue(ttl_s=-1)
    assert not old.verify(plain2)


def test_secret_file_is_private_and_stable(tmp_path):
    p = tmp_path / "a" / "web.secret"
    k = load_or_create_secret(p)
    assert len(k) == 32 and load_or_create_secret(p) == k and (p.stat().st_mode & 0o777) == 0o600
    p.write_text("zz")
    with pytest.raises(ValueError, match="web.secret"):
        load_or_create_secret(p)
    assert new_secret() != new_secret()


# ------------------------------------------------------------------------------------------- in an app
@pytest.fixture()
def app_client():
    sec = WebSecurity(SECRET, max_body_bytes=2048)
    app = FastAPI(dependencies=[Depends(sec.guard)])
    sec.install(app)
    votes = RateLimit.of("votes", (0.001, 3), (0.001, 100))
    stored: list[str] = []

    @app.get("/form")
    def form(request: Request) -> dict:
        return {"csrf": sec.csrf_token(WebSecurity.session(request))}

    @app.post("/login")
    def login(request: Request) -> dict:
        WebSecurity.session(request).sign_in("voter", "v1")
        return {"ok": True}

    @app.post("/vote", dependencies=[Depends(sec.limit(votes, "votes"))])
    def vote(request: Request, choice: str = Form("")) -> dict:
        stored.append(sec.require(request, "voter") + ":" + choice)
        return {"ok": True}

    return TestClient(app), stored, sec


def _csrf(client) -> str:
    return client.get("/form").json()["csrf"]


def test_app_sets_a_signed_httponly_cookie_and_security_headers(app_client):
    client, _, _ = app_client
    r = client.get("/form")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("ba_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src" not in csp and "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
    assert "set-cookie" not in client.get("/form").headers          # unchanged session: not rewritten


def test_post_without_or_with_a_wrong_csrf_token_is_refused_and_nothing_runs(app_client):
    client, stored, sec = app_client
    tok = _csrf(client)
    assert client.post("/login", data={}).status_code == 403
    assert client.post("/login", data={"csrf_token": "x" * 43}).status_code == 403
    assert client.post("/login", data={"csrf_token": tok}, headers={"origin": "http://evil.example"}
                       ).status_code == 403
    assert client.post("/login", data={"csrf_token": tok}).status_code == 200
    # sign-in rotated the session: the old token is dead, the new one works (as a header too)
    assert client.post("/vote", data={"csrf_token": tok, "choice": "a"}).status_code == 403
    assert stored == [] and sec.csrf_refused == 4
    assert client.post("/vote", data={"choice": "a"}, headers={"x-csrf-token": _csrf(client)}).status_code == 200
    assert stored == ["v1:a"]


def test_a_forged_cookie_is_a_new_anonymous_session(app_client):
    client, stored, _ = app_client
    forged = SessionSigner(b"z" * 32).sign({"sid": "s", "role": "voter", "sub": "v9"})
    client.cookies.set("ba_session", forged)
    r = client.post("/vote", data={"choice": "a"}, headers={"x-csrf-token": _csrf(client)})
    assert r.status_code == 401 and stored == []


def test_rate_limit_and_body_size_limit(app_client):
    client, stored, _ = app_client
    client.post("/login", data={"csrf_token": _csrf(client)})
    tok = _csrf(client)
    codes = [client.post("/vote", data={"csrf_token": tok, "choice": str(i)}).status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429] and len(stored) == 3
    r = client.post("/vote", data={"csrf_token": tok})
    assert int(r.headers["retry-after"]) >= 1 and re.search(r"wait \d+ seconds", r.json()["error"])
    r = client.post("/vote", data={"csrf_token": tok, "choice": "x" * 5000})
    assert r.status_code == 413 and len(stored) == 3

    def chunks():
        for _ in range(10):
            yield b"choice=" + b"y" * 500

    r = client.post("/vote", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded",
                                                        "x-csrf-token": tok})
    assert r.status_code == 413 and len(stored) == 3
