"""The vote page end to end in headless Chromium (Playwright driving /usr/bin/chromium, the tutor's fixture).

A person opens the arena, reads a prompt and two anonymous answers, clicks "B is better", sees both names and
their vote, and the vote is in the run store as a human battle; the leaderboard page lists the models. A
second test: an answer full of markup and script is shown as text and runs nothing. The first test also
saves the page screenshot of docs/votes.md when BANDITARENA_SCREENSHOT names a file.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api")

from banditarena.votes.web import create_app
from tests.curriculum.test_e2e_chromium import ARGS, _serve, chromium  # noqa: F401  (the Chromium fixture)
from tests.votes.conftest import HOSTILE, MODELS, SECRET, make_service


@pytest.fixture()
def arena(tmp_path, request):
    hostile = HOSTILE if getattr(request, "param", "") == "hostile" else None
    svc = make_service(tmp_path / "run", hostile=hostile, n_prompts=2 if hostile else 6)
    srv, th, base = _serve(create_app(svc, secret=SECRET, title="banditarena arena"))
    yield base, svc
    srv.should_exit = True
    th.join(timeout=10)
    svc.store.close()


def test_a_person_votes_and_sees_the_names(chromium, arena):  # noqa: F811
    base, svc = arena
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/")
        assert page.inner_text("#answer-a h2") == "Model A" and page.inner_text("#answer-b h2") == "Model B"
        body = page.inner_text("main")
        assert not any(m in body for m in MODELS)
        assert "active sampling" in page.inner_text("#sampler")
        assert page.locator("#answer-a li").count() == 2              # the answer's markdown list, rendered
        shot = os.environ.get("BANDITARENA_SCREENSHOT")
        if shot:
            page.screenshot(path=shot, full_page=True)
        cookie = next(c for c in page.context.cookies() if c["name"] == "vote_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        ticket = page.get_attribute("input[name=ticket]", "value")
        csrf = page.get_attribute("input[name=csrf_token]", "value")
        page.click("#vote-b")
        page.wait_for_url("**/battle/h_*")
        assert page.inner_text("#said") == "B is better"
        a, b = page.inner_text("#name-a"), page.inner_text("#name-b")
        assert {a, b} <= set(MODELS) and a != b
        (v,) = svc.store.votes().to_dict("records")
        assert (v["model_a"], v["model_b"], v["type"]) == (a, b, "rightvote")
        assert list(svc.store.battles(judge="human")["winner"]) == ["model_b"]
        page.click("#next")
        page.wait_for_selector("#vote-form")
        page.click("#vote-tie")
        page.wait_for_url("**/battle/h_*")
        assert page.inner_text("#said") == "a tie" and len(svc.store.votes()) == 2
        page.click("#nav-leaderboard")
        page.wait_for_selector("#board")
        voted = set(svc.store.votes()["model_a"]) | set(svc.store.votes()["model_b"])
        assert page.locator("#board tbody tr").count() == len(voted)
        # the first battle's form sent again from this browser (its cookie, its CSRF token): refused, not stored
        again = page.request.post(base + "/vote", form={"csrf_token": csrf, "ticket": ticket, "choice": "a"},
                                  headers={"accept": "application/json"})
        assert again.status == 409 and again.json()["reason"] == "already voted"
        assert len(svc.store.votes()) == 2
        assert errors == []
        browser.close()


@pytest.mark.parametrize("arena", ["hostile"], indirect=True)
def test_a_hostile_answer_runs_no_script(chromium, arena):  # noqa: F811
    base, svc = arena
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(15000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        for _ in range(20):                              # until the hostile model is on the page
            page.goto(base + "/")
            if "__pwned" in page.inner_text("main"):
                break
        text = page.inner_text("main")
        assert "<script>window.__pwned = 1;" in text and "<img src=x onerror=" in text   # shown as text
        assert page.locator("main script, main img, main iframe").count() == 0
        assert page.locator("main a[href^='javascript']").count() == 0
        page.wait_for_timeout(300)
        assert page.evaluate("window.__pwned") is None and page.title() != "pwned"
        side = "#vote-a" if "__pwned" in page.inner_text("#answer-a") else "#vote-b"
        page.click(side)
        page.wait_for_url("**/battle/h_*")
        assert "__pwned" in page.inner_text("main")           # the result page shows it again, as text
        assert page.locator("main script, main img, main iframe").count() == 0
        page.wait_for_timeout(300)
        assert page.evaluate("window.__pwned") is None and page.title() != "pwned"
        assert errors == [] and len(svc.store.votes()) == 1
        browser.close()
