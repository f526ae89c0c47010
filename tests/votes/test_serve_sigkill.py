"""`banditarena vote serve` as a person starts it (a subprocess on the shipped recipe): it binds 127.0.0.1,
stores an acknowledged vote before answering, loses none of them to a SIGKILL, and after a restart on the
same run directory (the killed holder's lock taken over) refuses the same ticket again."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "src" / "banditarena" / "recipes" / "vote-arena-hard.yaml"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(run_dir: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "BANDITARENA_VOTE_ADMIN_TOKEN": "a-test-admin-token-123"}
    proc = subprocess.Popen([sys.executable, "-m", "banditarena.cli", "vote", "serve", str(RECIPE), "--run-dir",
                             str(run_dir), "--port", str(port), "--no-progress"], cwd=ROOT, env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
    deadline = time.time() + 90
    while time.time() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/static/vote.css", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("vote serve did not start: " + log.read_text())


def _listening_on(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) listening on ``port``."""
    out = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, p = local.split(":")
        if int(p, 16) == port and state == "0A":
            out.add(addr)
    return out


def _votes(run_dir: Path) -> list[str]:
    with sqlite3.connect(f"file:{run_dir / 'run.sqlite'}?mode=ro", uri=True) as con:
        return [r[0] for r in con.execute("SELECT vote_id FROM votes ORDER BY rowid")]


def test_acknowledged_votes_survive_sigkill(tmp_path):
    run_dir, port, log = tmp_path / "run", _port(), tmp_path / "serve.log"
    proc = _start(run_dir, port, log)
    try:
        out = log.read_text()
        assert f"serving http://127.0.0.1:{port}/" in out and "a-test-admin-token" not in out
        if Path("/proc/net/tcp").is_file():
            assert _listening_on(port) == {"0100007F"}              # 127.0.0.1 only, no other interface
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        acked, forms = [], []
        for choice in ("a", "b", "tie"):
            page = c.get("/").text
            form = {"ticket": re.search(r'name="ticket" value="([^"]+)"', page).group(1),
                    "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1), "choice": choice}
            r = c.post("/vote", data=form, headers={"accept": "application/json"})
            assert r.status_code == 200
            acked.append(r.json()["vote_id"])
            forms.append(form)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert _votes(run_dir) == acked                       # every acknowledged vote, once, in order
        proc = _start(run_dir, port, log)                      # the same run directory: the lock is taken over
        r = c.post("/vote", data=forms[0], headers={"accept": "application/json"})
        assert r.status_code == 409 and r.json()["reason"] == "already voted"
        assert "3 votes stored" in log.read_text()                # the restarted server counts them
        admin = c.get("/admin", headers={"authorization": "Bearer a-test-admin-token-123"})
        assert admin.status_code == 200 and "already voted" in admin.text
        assert _votes(run_dir) == acked
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
