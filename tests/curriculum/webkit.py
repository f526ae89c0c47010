"""Helpers for the web tutor's tests: an app with a teacher, a class and learners, and signed-in clients."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from banditarena.curriculum.web import create_app
from banditarena.web import AdminToken

SECRET = b"s" * 32
PASSWORD = "a long enough password"


def q(html: str, id_: str) -> str | None:
    m = re.search(rf'id="{id_}"[^>]*>(.*?)</', html, re.DOTALL)
    return None if m is None else " ".join(m.group(1).split())


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def counts(db) -> dict[str, int]:
    with sqlite3.connect(db) as con:
        return {t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("learners", "events", "hints", "teachers", "classes")}


@dataclass
class Classroom:
    tutor: Any
    app: Any
    accounts: Any
    teachers: dict[str, int] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)       # learner name -> sign-in code
    ids: dict[str, str] = field(default_factory=dict)         # learner name -> learner id
    setup: tuple[AdminToken, str] | None = None

    def client(self) -> TestClient:
        return TestClient(self.app, follow_redirects=True)

    def token(self, client: TestClient, path: str = "/") -> str:
        return csrf(client.get(path).text)

    def learner(self, name: str) -> TestClient:
        c = self.client()
        r = c.post("/signin", data={"code": self.codes[name], "csrf_token": self.token(c)})
        assert r.status_code == 200 and r.url.path == "/learn", r.text[:300]
        return c

    def teacher(self, username: str) -> TestClient:
        c = self.client()
        r = c.post("/teacher/login", data={"username": username, "password": PASSWORD,
                                           "csrf_token": self.token(c, "/teacher/login")})
        assert r.status_code == 200 and r.url.path == "/teacher", r.text[:300]
        return c


def make_classroom(tutor, limits=None, learners=(("ms-lee", "2B", ("Ada", "Bo")), ("mr-kim", "3A", ("Cy",))),
                   **kw) -> Classroom:
    setup = AdminToken.issue(ttl_s=600)
    app = create_app(tutor, "Test tutor", secret=SECRET, limits=limits, setup_token=setup[0], **kw)
    room = Classroom(tutor, app, app.state.accounts, setup=setup)
    for username, klass, names in learners:
        tid = room.accounts.create_teacher(username, PASSWORD)
        cid = room.accounts.create_class(tid, klass)
        room.teachers[username], room.classes[klass] = tid, cid
        for made in room.accounts.add_learners(tid, cid, "\n".join(names), 2):
            room.codes[made["name"]], room.ids[made["name"]] = made["code"], made["id"]
    return room
