"""The web tutor end to end in headless Chromium (Playwright driving Debian's /usr/bin/chromium).

A child types a name, gets a problem chosen by ZPDES, types a word instead of a number (a clear message, the
same problem), answers right, sees the feedback and the next problem, asks for a hint (the model's text is
unsafe, so the template is shown), and the teacher page shows the learner's mastery, the policy's choices and
the rejected hint with its reason. Chromium comes from scripts/ensure-chromium.sh, as for the report tests.
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

from banditarena.curriculum.hints import HintService
from banditarena.curriculum.tutor import Tutor
from banditarena.curriculum.web import create_app

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


@pytest.fixture()
def server(arith, tmp_path, scripted):
    import uvicorn

    backend = scripted(["Call me at 415-555-0199 and I will tell you."])
    tutor = Tutor(arith, tmp_path / "tutor.sqlite", hints=HintService(backend), seed=2, default_grade=2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(tutor, "Test tutor"), host="127.0.0.1", port=port,
                                       log_level="warning", lifespan="off"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", tutor
    srv.should_exit = True
    th.join(timeout=10)


def test_a_child_learns_and_the_teacher_sees_it(chromium, server):
    base, tutor = server
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(15000)
        page.goto(base + "/")
        page.fill("#name", "Zoe")
        page.select_option("#grade", "2")
        page.click("#go")
        page.wait_for_url("**/learn/Zoe")
        question = page.inner_text("#question")
        cur = tutor.current("Zoe")
        assert question == cur["item"].question

        page.fill("#answer", "banana")
        page.click("#check")
        assert page.inner_text("#error") == "Please answer with a number, like 42."
        assert page.inner_text("#question") == question            # same problem, nothing stored
        assert tutor.decisions("Zoe") == []

        page.fill("#answer", cur["item"].answer_text)
        page.click("#check")
        page.wait_for_selector("#feedback")
        assert page.inner_text("#feedback").startswith("Well done!")
        assert tutor.current("Zoe")["step"] == 1

        page.click("#hint-button")
        hint = page.inner_text("#hint")
        act = tutor.current("Zoe")["activity"]
        assert hint == "Hint: " + tutor.curriculum.activities[tutor.curriculum.index[act]].hint
        assert "415" not in page.content()

        page.goto(base + "/teacher")
        card = page.locator(".learner[data-name='Zoe']")
        assert "1 answers" in card.inner_text() and "accuracy 100%" in card.inner_text()
        assert card.locator("table.recent tr").count() == 2        # header + the one answer
        reasons = page.inner_text("#hints")
        assert "Call me at 415-555-0199" in reasons and "safety unsafe: S7: pii: phone number" in reasons
        browser.close()
