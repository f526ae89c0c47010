"""The screenshot of docs/votes.md: the vote page on the shipped recipe (vote-arena-hard.yaml) in headless
Chromium, then the page after a vote (names revealed) and the leaderboard page.

    .venv/bin/python scripts/vote_screenshot.py docs/img
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "src" / "banditarena" / "recipes" / "vote-arena-hard.yaml"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def main(out: Path) -> None:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from banditarena.votes.service import build_service
    from banditarena.votes.web import create_app

    out.mkdir(parents=True, exist_ok=True)
    run = Path(tempfile.mkdtemp(prefix="vote-shot-")) / "run"
    svc = build_service(RECIPE, run, b"s" * 32, seed=4)
    app = create_app(svc, secret=b"s" * 32, title="banditarena arena: vote-arena-hard")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    threading.Thread(target=srv.run, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/")
        page.screenshot(path=str(out / "vote-page.png"))
        page.click("#vote-a")
        page.wait_for_url("**/battle/*")
        page.screenshot(path=str(out / "vote-result.png"))
        browser.close()
    srv.should_exit = True
    svc.store.close()
    print(out / "vote-page.png", out / "vote-result.png")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
