"""The arena end to end against real HTTP: a deterministic OpenAI-compatible server, with faults."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from banditarena.arena.service import leaderboard, run_battles
from banditarena.config import load_recipe
from banditarena.errors import ModelError
from tests.support.openai_server import FakeOpenAIServer
from tests.support.shared import requires

ROOT = Path(__file__).resolve().parents[2]


def recipe_text(base_url: str, *, n: int = 6, timeout: float = 5.0, retries: int = 5, key_env: str | None = None,
                concurrency: int = 4) -> str:
    key = f", api_key_env: {key_env}" if key_env else ""
    ep = f'backend: openai, base_url: "{base_url}", timeout_s: {timeout}, max_retries: {retries}, concurrency: {concurrency}{key}'
    return textwrap.dedent(f"""
        name: fake
        seed: 3
        prompts: {{source: mt_bench, limit: {n}}}
        contestants:
          - {{name: weak, model: weak-1, {ep}, strategy: {{max_tokens: 32}}}}
          - {{name: strong, model: strong-1, {ep}, strategy: {{max_tokens: 32}}}}
          - {{name: mid, model: mid-1, {ep}, strategy: {{max_tokens: 32, temperature: 0.7}}}}
        judge:
          kind: llm
          name: fake-judge
          endpoint: {{model: judge-1, {ep}}}
        leaderboard: {{bootstrap: 20}}
    """)


def write_recipe(tmp_path, text):
    p = tmp_path / "recipe.yaml"
    p.write_text(text)
    return p


@requires("mt_bench/question.jsonl")
def test_full_run_then_rerun_pays_nothing(tmp_path):
    with FakeOpenAIServer() as srv:
        rec = load_recipe(write_recipe(tmp_path, recipe_text(srv.base_url)))
        res, store = run_battles(rec, tmp_path / "run", progress=False)
        # 6 MT-Bench prompts (2 turns each) x 3 contestants; 3 pairs x 6 prompts battles, judged in both orders
        assert len(res.battles) == 18 and res.n_invalid == 0
        assert res.paid_generations == 6 * 3 * 2
        assert res.paid_judgments == 36
        assert sum(srv.requests.values()) == 36 + 36 and max(srv.requests.values()) == 1
        lb1 = leaderboard(store, bootstrap=20, seed=0)
        before = srv.attempts
        res2, store2 = run_battles(rec, tmp_path / "run", progress=False)
        assert srv.attempts == before, "a rerun must not send any request"
        assert res2.paid_generations == 0 and res2.paid_judgments == 0 and len(res2.battles) == 18
        assert leaderboard(store2, bootstrap=20, seed=0).equals(lb1)
        # multi-turn: the second turn saw the model's own first answer
        g = store2.generations()
        assert all(len(t) == 2 for t in g["turns"])


@requires("mt_bench/question.jsonl")
def test_faults_are_retried_and_counted(tmp_path):
    with FakeOpenAIServer(fail_rate=0.3, hang_s=1.0, seed=1) as srv:
        rec = load_recipe(write_recipe(tmp_path, recipe_text(srv.base_url, timeout=0.5, retries=8)))
        res, _store = run_battles(rec, tmp_path / "run", progress=False)
        assert sum(srv.failures.values()) > 5  # faults really happened: 429, 500 and hangs
        assert len(res.battles) == 18, res.skipped
        assert res.n_generation_failures == 0 and res.n_judge_failures == 0


@requires("mt_bench/question.jsonl")
def test_endpoint_down_is_recorded_and_resumable(tmp_path):
    srv = FakeOpenAIServer(down=True).start()
    try:
        rec = load_recipe(write_recipe(tmp_path, recipe_text(srv.base_url, timeout=0.5, retries=1)))
        res, store = run_battles(rec, tmp_path / "run", progress=False)
        assert len(res.battles) == 0 and res.n_generation_failures > 0
        assert len(store.unresolved_failures()) > 0 and res.skipped
        srv.down = False  # the endpoint comes back: the same command, rerun (a new process), finishes the run
        import banditarena.models.openai as oa

        oa._HEALTH.clear()  # a rerun is a new process: no circuit-breaker memory of the outage
        res2, store2 = run_battles(rec, tmp_path / "run", progress=False)
        assert len(res2.battles) == 18 and len(store2.unresolved_failures()) == 0
    finally:
        srv.stop()


@requires("mt_bench/question.jsonl")
def test_missing_api_key_env_is_one_clear_line(tmp_path):
    os.environ.pop("BA_TEST_MISSING_KEY", None)
    p = write_recipe(tmp_path, recipe_text("http://127.0.0.1:9/v1", key_env="BA_TEST_MISSING_KEY"))
    with pytest.raises(ModelError, match="BA_TEST_MISSING_KEY"):
        run_battles(load_recipe(p), tmp_path / "run", progress=False)
    out = subprocess.run([sys.executable, "-m", "banditarena.cli", "battle", str(p), "--run-dir", str(tmp_path / "r2")],
                         check=False, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "BA_TEST_MISSING_KEY" in out.stderr
    assert "Traceback" not in out.stderr


def _cli(recipe, run_dir, **kw):
    return subprocess.Popen([sys.executable, "-m", "banditarena.cli", "battle", str(recipe), "--run-dir", str(run_dir),
                             "--no-progress"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@requires("mt_bench/question.jsonl")
def test_sigkill_resume_equals_uninterrupted_run(tmp_path):
    with FakeOpenAIServer(latency_s=0.05) as srv:
        p = write_recipe(tmp_path, recipe_text(srv.base_url, n=8, concurrency=2))
        ref = _cli(p, tmp_path / "ref")
        assert ref.wait(timeout=300) == 0, ref.stderr.read()
        ref_lb = subprocess.run([sys.executable, "-m", "banditarena.cli", "leaderboard", str(tmp_path / "ref"), "--json"],
                                capture_output=True, text=True, cwd=ROOT, check=True).stdout

        unique_before = len(srv.requests)
        srv.requests.clear()
        # kill the run at several points: during generation and during judging
        run_dir = tmp_path / "killed"
        for wait_requests in (10, 45):
            proc = _cli(p, run_dir)
            t0 = time.time()
            while sum(srv.requests.values()) < wait_requests and time.time() - t0 < 120:
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        done = _cli(p, run_dir)
        assert done.wait(timeout=300) == 0, done.stderr.read()
        lb = subprocess.run([sys.executable, "-m", "banditarena.cli", "leaderboard", str(run_dir), "--json"],
                            capture_output=True, text=True, cwd=ROOT, check=True).stdout
        assert json.loads(lb) == json.loads(ref_lb)
        # everything answered for the killed run was requested by it (the reference run had its own copies);
        # at most the requests in flight at each kill (concurrency 2 per endpoint) were answered twice
        assert len(srv.requests) == unique_before
        repeats = sum(v - 1 for v in srv.requests.values())
        assert repeats <= 2 * 2 * 2, repeats


def test_a_request_cut_off_after_its_headers_is_not_answered():
    """A client killed between the headers and the body (what SIGKILL does to an in-flight request) must not
    count as a served completion: the test server answers 400, as real servers do."""
    import socket
    from urllib.parse import urlparse

    with FakeOpenAIServer() as srv:
        u = urlparse(srv.base_url)
        with socket.create_connection((u.hostname, u.port)) as s:
            s.sendall(f"POST {u.path.rstrip('/')}/chat/completions HTTP/1.1\r\nHost: x\r\n"
                      "Content-Type: application/json\r\nContent-Length: 120\r\n\r\n".encode())
            s.shutdown(socket.SHUT_WR)
            reply = s.recv(4096).decode()
        assert reply.startswith("HTTP/1.") and " 400 " in reply.splitlines()[0]
        assert not srv.requests
