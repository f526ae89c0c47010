"""SIGKILL at random moments, then resume: the same leaderboard, and only requests in flight paid again."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.arena.test_arena_endpoints import recipe_text, write_recipe
from tests.reliability.test_commands import cli
from tests.support.openai_server import FakeOpenAIServer
from tests.support.shared import requires

ROOT = Path(__file__).resolve().parents[2]
SETTLE_S = 0.05  # a reply answered this long before a kill has been committed (a commit takes about a millisecond)


def kill_and_resume(srv: FakeOpenAIServer, recipe: Path, run_dir: Path, kills: int, seed: int) -> dict[str, int]:
    """Start the battle, SIGKILL it after a random number of newly answered requests, ``kills`` times; then
    run it to the end. Returns the paid requests per content hash and the requests in flight at the kills."""
    srv.requests.clear()
    rng = random.Random(seed)
    in_flight = 0
    for _ in range(kills):
        start = sum(srv.requests.values())
        target = start + rng.randint(1, 12)
        proc = subprocess.Popen([sys.executable, "-m", "banditarena.cli", "battle", str(recipe), "--run-dir",
                                 str(run_dir), "--no-progress"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        t0 = time.time()
        while sum(srv.requests.values()) < target and time.time() - t0 < 120 and proc.poll() is None:
            time.sleep(0.002)
        t_kill = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(0.3)  # let the server finish (and count) what the dead client had sent
        with srv._lock:
            # sent before the kill and not answered well before it: the client may not have committed it
            in_flight += sum(1 for _, t_in, t_out in srv.timeline
                             if t_in < t_kill and (t_out is None or t_out > t_kill - SETTLE_S))
    done = cli("battle", recipe, "--run-dir", run_dir, "--no-progress")
    assert done.returncode == 0, done.stderr
    repaid = sum(v - 1 for v in srv.requests.values())
    return {"unique": len(srv.requests), "repaid": repaid, "in_flight_at_kills": in_flight}


@requires("mt_bench/question.jsonl")
def test_five_random_sigkills_then_resume(tmp_path: Path) -> None:
    with FakeOpenAIServer(latency_s=0.03) as srv:
        p = write_recipe(tmp_path, recipe_text(srv.base_url, n=8, concurrency=2))
        ref = cli("battle", p, "--run-dir", tmp_path / "ref", "--no-progress")
        assert ref.returncode == 0, ref.stderr
        ref_unique = len(srv.requests)
        figures = kill_and_resume(srv, p, tmp_path / "killed", kills=5, seed=11)
    print("sigkill figures:", figures)
    lb = json.loads(cli("leaderboard", tmp_path / "killed", "--json").stdout)
    ref_lb = json.loads(cli("leaderboard", tmp_path / "ref", "--json").stdout)
    assert lb == ref_lb
    assert figures["unique"] == ref_unique  # the killed run asked exactly what an uninterrupted run asks
    assert figures["repaid"] <= figures["in_flight_at_kills"], figures
