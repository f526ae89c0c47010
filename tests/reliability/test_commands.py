"""Failing commands change nothing stored; bad input is one line with exit status 2; one writer per run."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from banditarena.errors import StoreError
from banditarena.store import RunStore
from tests.arena.test_arena_endpoints import recipe_text, write_recipe
from tests.support.openai_server import FakeOpenAIServer
from tests.support.shared import requires

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "banditarena.cli", *map(str, args)], check=False, capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=timeout)


def snapshot(d: Path) -> dict[str, str]:
    """Every file under ``d`` (the lock file aside) by content hash."""
    return {str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file() and p.name != "run.lock"}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A finished small arena run (recipe, run dir, server base_url no longer served)."""
    tmp = tmp_path_factory.mktemp("done")
    with FakeOpenAIServer() as srv:
        p = write_recipe(tmp, recipe_text(srv.base_url, n=3))
        out = cli("battle", p, "--run-dir", tmp / "run", "--no-progress")
        assert out.returncode == 0, out.stderr
    return p, tmp / "run", srv.base_url


def _bad_cases(tmp: Path, recipe: Path, run: Path) -> list[tuple[str, list[str | Path], str]]:
    text = recipe.read_text()
    bad_utf8 = tmp / "bad.jsonl"
    bad_utf8.write_bytes(b"".join(b'{"id": "p%d", "prompt": "hello %d"}\n' % (i, i) for i in range(3))
                         + b'{"id": "p3", "prompt": "caf\xe9"}\n')
    r_utf8 = write_recipe(tmp / "u", text.replace("source: mt_bench", f"source: {bad_utf8}")) if (tmp / "u").mkdir() is None else None
    os.environ.pop("BA_RELIABILITY_NO_KEY", None)
    r_key = tmp / "key.yaml"
    r_key.write_text(text.replace("timeout_s: 5.0", "timeout_s: 5.0, api_key_env: BA_RELIABILITY_NO_KEY", 1))
    fly = tmp / "fly.yaml"
    fly.write_text(
        "name: f\ntarget: {name: t, backend: replay, model: t, path: data:arena_bench_v1/model_answer/vicuna-33b-v1.3.jsonl}\n"
        "opponents: [{name: o, backend: replay, model: o, path: data:arena_bench_v1/model_answer/claude-2.jsonl}]\n"
        "pool: {source: data:arena_bench_v1/question.jsonl}\ncluster_field: 'kmeans:many'\n"
        "training: {enabled: false}\n")
    return [
        ("anchor not a number", ["leaderboard", run, "--anchor", "a=abc"], "--anchor 'a=abc'"),
        ("anchor without =", ["leaderboard", run, "--anchor", "gpt4"], "MODEL=RATING"),
        ("anchor unknown model", ["leaderboard", run, "--anchor", "nobody=1000"], "no model 'nobody'"),
        ("kmeans:many", ["flywheel", fly, "--run-dir", run], "kmeans:many"),
        ("non-UTF-8 on line 4", ["battle", r_utf8, "--run-dir", run], "bad.jsonl:4: not UTF-8"),
        ("missing API key", ["battle", r_key, "--run-dir", run], "BA_RELIABILITY_NO_KEY"),
    ]


@requires("mt_bench/question.jsonl", "arena_bench_v1/question.jsonl")
def test_bad_input_is_one_line_exit_2_and_changes_nothing(tmp_path: Path, finished_run) -> None:
    recipe, run, _ = finished_run
    before = snapshot(run)
    for name, args, needle in _bad_cases(tmp_path, recipe, run):
        out = cli(*args)
        assert out.returncode == 2, (name, out.returncode, out.stderr)
        err = out.stderr.strip()
        assert err.count("\n") == 0 and "Traceback" not in err, (name, err)
        assert needle in err, (name, err)
        assert snapshot(run) == before, name


@requires("mt_bench/question.jsonl")
def test_read_only_commands_never_write_and_a_damaged_store_is_one_line(tmp_path: Path, finished_run) -> None:
    _, run, _ = finished_run
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "run.sqlite").write_bytes(b"")
    out = cli("leaderboard", empty)
    assert out.returncode == 2 and "empty file, not a run store" in out.stderr
    assert (empty / "run.sqlite").stat().st_size == 0 and sorted(p.name for p in empty.iterdir()) == ["run.sqlite"]

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    with RunStore(run) as s:  # the WAL holds recent pages; fold them into the main file before copying
        s.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    blob = bytearray((run / "run.sqlite").read_bytes())
    page = 4096  # page 1 (the header and the schema) stays: garbage from the second page on
    blob[page:] = os.urandom(len(blob) - page)
    (damaged / "run.sqlite").write_bytes(bytes(blob))
    before = snapshot(damaged)
    for cmd in (["leaderboard", damaged], ["audit", damaged]):
        out = cli(*cmd)
        assert out.returncode == 2, (cmd, out.stderr)
        err = out.stderr.strip()
        assert err.count("\n") == 0 and "Traceback" not in err and "run.sqlite" in err and "sqlite3 says" in err, err
    assert snapshot(damaged) == before


@requires("mt_bench/question.jsonl")
def test_a_second_writer_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    with FakeOpenAIServer(latency_s=0.2) as srv:
        p = write_recipe(tmp_path, recipe_text(srv.base_url, n=3, concurrency=1))
        first = subprocess.Popen([sys.executable, "-m", "banditarena.cli", "battle", str(p), "--run-dir",
                                  str(tmp_path / "run"), "--no-progress"], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        t0 = time.time()
        while srv.attempts < 2 and time.time() - t0 < 60:
            time.sleep(0.05)
        second = cli("battle", p, "--run-dir", tmp_path / "run", "--no-progress")
        assert second.returncode == 2, second.stderr
        err = second.stderr.strip()
        assert err.count("\n") == 0 and f"pid {first.pid} on host" in err and "since" in err, err
        assert first.wait(timeout=300) == 0, first.stderr.read()
        assert max(srv.requests.values()) == 1  # nothing was paid twice


@requires("mt_bench/question.jsonl")
def test_a_lock_left_by_a_killed_writer_is_taken_over(tmp_path: Path) -> None:
    with FakeOpenAIServer(latency_s=0.1) as srv:
        p = write_recipe(tmp_path, recipe_text(srv.base_url, n=3, concurrency=1))
        proc = subprocess.Popen([sys.executable, "-m", "banditarena.cli", "battle", str(p), "--run-dir",
                                 str(tmp_path / "run"), "--no-progress"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        t0 = time.time()
        while srv.attempts < 3 and time.time() - t0 < 60:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert (tmp_path / "run" / "run.lock").exists()
        out = cli("battle", p, "--run-dir", tmp_path / "run", "--no-progress")
        assert out.returncode == 0, out.stderr
        assert str(os.getpid()) not in (tmp_path / "run" / "run.lock").read_text()


def test_in_process_stores_share_the_lock_and_release_it(tmp_path: Path) -> None:
    a = RunStore(tmp_path)
    b = RunStore(tmp_path)  # the flywheel and the arena it drives: one process, one writer
    a.close()
    b.set_meta("k", "v")
    b.close()
    reader = RunStore(tmp_path, create=False)
    assert reader.get_meta("k") == "v"
    with pytest.raises(StoreError, match="read-only"):
        reader.set_meta("k", "w")
    reader.close()


@requires("mt_bench/question.jsonl")
def test_a_run_where_every_request_failed_exits_non_zero(tmp_path: Path) -> None:
    srv = FakeOpenAIServer(down=True).start()
    try:
        p = write_recipe(tmp_path, recipe_text(srv.base_url, n=2, timeout=0.5, retries=1))
        out = cli("battle", p, "--run-dir", tmp_path / "run", "--no-progress")
    finally:
        srv.stop()
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "every request of this run failed" in out.stderr and "0 battles" in out.stdout
