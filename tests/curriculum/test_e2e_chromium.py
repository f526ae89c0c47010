"""The web tutor end to end in headless Chromium (Playwright driving Debian's /usr/bin/chromium).

A teacher signs in, makes a class and adds a learner, and reads the learner's sign-in code; the child signs
in with it, gets a problem chosen by ZPDES, types a word instead of a number (a clear message, the same
problem), answers right, sees the feedback and the next problem, asks for a hint (the model's text is
unsafe, so the template is shown), and the teacher page shows the learner's mastery, the policy's choices and
the rejected hint with its reason. A second test: a hint full of markup and script is shown as text and runs
nothing, on the learner's page and the teacher's. Chromium comes from scripts/ensure-chromium.sh, as for the
report tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api")

from banditarena.curriculum.hints import HintResult, HintService
from banditarena.curriculum.tutor import Tutor
from banditarena.curriculum.web import create_app
from banditarena.web import AdminToken

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("BANDITARENA_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def chromium() -> Path:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    script = ROOT / "scripts" / "ensure-chromium.sh"
    proc = subprocess.run([shutil.which("bash") or "/bin/bash", str(script)], capture_output=True, text=True,
                          timeout=1200, check=False)
    if proc.returncode != 0 or not CHROMIUM.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.fail(f"Chromium is missing at {CHROMIUM} and {script} failed (rc={proc.returncode}): {last}")
    return CHROMIUM


SECRET = b"e" * 32
PASSWORD = "chalk and blackboard"
HOSTILE = ('<script>window.__pwned = 1; document.title = "pwned"</script>'
           '<img src=x onerror="window.__pwned = 2; document.title = \'pwned\'"> Count the tens first.')


class HostileHints:
    scorer_name = "test"

    def hint(self, item, template, answer, grade):
        return HintResult(HOSTILE, "model", HOSTILE, [], None, latency_s=0.01)


def _serve(app):
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    return srv, th, f"http://127.0.0.1:{port}"


@pytest.fixture()
def server(arith, tmp_path, scripted, request):
    hints = HostileHints() if getattr(request, "param", "") == "hostile" else \
        HintService(scripted(["Call me at 415-555-0199 and I will tell you."]))
    tutor = Tutor(arith, tmp_path / "tutor.sqlite", hints=hints, seed=2, default_grade=2)
    token, plain = AdminToken.issue(ttl_s=600)
    srv, th, base = _serve(create_app(tutor, "Test tutor", secret=SECRET, setup_token=token))
    yield base, tutor, plain
    srv.should_exit = True
    th.join(timeout=10)


def _teacher_makes_a_class(page, base, token) -> str:
    """The one-time set-up link, a class, a learner; returns the learner's sign-in code."""
    page.goto(f"{base}/setup?token={token}")
    page.fill("#username", "ms-lee")
    page.fill("#password", PASSWORD)
    page.fill("#password2", PASSWORD)
    page.click("#setup-button")
    page.wait_for_url("**/teacher")
    page.fill("#class-name-input", "2B")
    page.click("#new-class-button")
    page.wait_for_url("**/teacher/classes/*")
    page.fill("#names", "Zoe")
    page.click("#add-button")
    code = page.inner_text("#new-codes .new-code .code")
    page.click("#signout-button")
    page.wait_for_url("**/teacher/login")
    return code


def test_a_child_signs_in_and_learns_and_the_teacher_sees_it(chromium, server):
    base, tutor, token = server
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(15000)
        code = _teacher_makes_a_class(page, base, token)
        assert len(code) == 9

        child = browser.new_context().new_page()          # another browser profile: the child's tablet
        child.set_default_timeout(15000)
        child.goto(base + "/")
        child.fill("#code", "WRONG-CODE")
        child.click("#go")
        assert child.inner_text("#error") == "That sign-in code did not work. Please check it and try again."
        child.fill("#code", code.lower())
        child.click("#go")
        child.wait_for_url("**/learn")
        assert child.inner_text("#learner") == "Zoe"
        (lid,) = tutor.class_learners([c["id"] for c in tutor._conn.execute("SELECT id FROM classes")])
        cookie = next(c for c in child.context.cookies() if c["name"] == "tutor_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        question = child.inner_text("#question")
        cur = tutor.current(lid)
        assert question == cur["item"].question

        child.fill("#answer", "banana")
        child.click("#check")
        assert child.inner_text("#error") == "Please answer with a number, like 42."
        assert child.inner_text("#question") == question            # same problem, nothing stored
        assert tutor.decisions(lid) == []

        child.fill("#answer", cur["item"].answer_text)
        child.click("#check")
        child.wait_for_selector("#feedback")
        assert child.inner_text("#feedback").startswith("Well done!")
        assert tutor.current(lid)["step"] == 1

        child.click("#hint-button")
        hint = child.inner_text("#hint")
        act = tutor.current(lid)["activity"]
        assert hint == "Hint: " + tutor.curriculum.activities[tutor.curriculum.index[act]].hint
        assert "415" not in child.content()
        child.goto(base + "/teacher")                                # a learner's session opens no teacher page
        assert child.url.endswith("/teacher/login")

        page.fill("#username", "ms-lee")
        page.fill("#password", PASSWORD)
        page.click("#login-button")
        page.wait_for_url("**/teacher")
        card = page.locator(".learner[data-name='Zoe']")
        assert "1 answers" in card.inner_text() and "accuracy 100%" in card.inner_text()
        assert card.locator("table.recent tr").count() == 2        # header + the one answer
        reasons = page.inner_text("#hints")
        assert "Call me at 415-555-0199" in reasons and "safety unsafe: S7: pii: phone number" in reasons
        browser.close()


@pytest.mark.parametrize("server", ["hostile"], indirect=True)
def test_a_hostile_hint_runs_no_script(chromium, server):
    base, _tutor, token = server
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(15000)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        code = _teacher_makes_a_class(page, base, token)
        page.goto(base + "/")
        page.fill("#code", code)
        page.click("#go")
        page.wait_for_url("**/learn")
        page.click("#hint-button")
        page.wait_for_selector("#hint")
        assert page.inner_text("#hint") == "Hint: " + HOSTILE                 # shown as text, every character
        assert page.locator("#hint script, #hint img").count() == 0
        page.wait_for_timeout(300)
        assert page.evaluate("window.__pwned") is None and page.title() != "pwned"
        page.click("#signout-button")
        page.goto(base + "/teacher/login")
        page.fill("#username", "ms-lee")
        page.fill("#password", PASSWORD)
        page.click("#login-button")
        page.wait_for_url("**/teacher")
        assert HOSTILE in page.inner_text("#hints")
        assert page.locator("#hints script, #hints img").count() == 0
        page.wait_for_timeout(300)
        assert page.evaluate("window.__pwned") is None and page.title() != "pwned"
        assert errors == []
        browser.close()
