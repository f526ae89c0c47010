"""Unusable replies are transient faults: retried within the run, counted by kind, never stored as answers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from banditarena.arena.service import run_battles
from banditarena.config import load_recipe
from banditarena.models.base import ChatRequest
from banditarena.models.openai import OpenAIBackend
from banditarena.types import Strategy
from tests.arena.test_arena_endpoints import recipe_text, write_recipe
from tests.support.fault_server import FaultServer
from tests.support.openai_server import FakeOpenAIServer
from tests.support.shared import requires

# every reply fault the arena must survive within one run (key_echo is a 401: not retried, see test_secrets)
KINDS = ["malformed", "no_choices", "empty_choices", "null_content", "trickle", "reset", "endless", "oversized"]
STAT = {"malformed": "unusable_bad_json", "no_choices": "unusable_no_choices", "empty_choices": "unusable_empty_choices",
        "null_content": "unusable_null_content", "trickle": "timeouts", "reset": "connection_errors",
        "endless": "unusable_oversized", "oversized": "unusable_oversized"}


def _run(tmp_path: Path, faults: dict[str, float], seed: int = 0):
    with FakeOpenAIServer(faults=faults, seed=seed, trickle_s=3.0) as srv:
        text = recipe_text(srv.base_url, n=4, timeout=1.0, retries=10)
        rec = load_recipe(write_recipe(tmp_path, text))
        t0 = time.perf_counter()
        res, store = run_battles(rec, tmp_path / "run", progress=False)
        return res, store, srv, time.perf_counter() - t0


@requires("mt_bench/question.jsonl")
@pytest.mark.parametrize("kind", [*KINDS, "mixed"])
def test_every_battle_completes_in_the_first_run_with_20_percent_faults(tmp_path: Path, kind: str) -> None:
    faults = {k: 0.2 / len(KINDS) for k in KINDS} if kind == "mixed" else {kind: 0.2}
    res, store, srv, _ = _run(tmp_path, faults, seed=3)
    assert sum(v for k, v in srv.counts.items() if k in KINDS) > 0, "faults really happened"
    assert len(res.battles) == 12, res.skipped  # 4 prompts x 3 pairs, all in the first run
    assert res.n_generation_failures == 0 and res.n_judge_failures == 0
    # counted by kind
    kinds = [kind] if kind != "mixed" else KINDS
    for k in kinds:
        if srv.counts[k]:
            assert res.request_stats[STAT[k]] >= 1, (k, res.request_stats)
    # nothing garbage stored: every stored answer is a real echo answer of the fake server, no null/oversized
    gens = store.generations()
    assert all(t and all(x.startswith("[") and len(x) < 2000 for x in t) for t in gens["turns"]), gens["turns"]
    rows = store.conn.execute("SELECT text, finish_reason FROM completions").fetchall()
    assert rows and all(len(t) < 2000 and f == "stop" for t, f in rows)
    assert store.counts()["invalid_judgments"] == 0


def test_a_huge_reply_does_not_make_other_requests_time_out() -> None:
    """Oversized and endless bodies are cut off at the byte limit; the event loop stays free for the rest."""
    script = ["oversized", "endless"] + ["ok"] * 30
    with FaultServer(script=script, delay_s=0.05, oversized_bytes=20_000_000) as srv:
        b = OpenAIBackend("m", srv.base_url, concurrency=8, timeout_s=2.0, max_retries=3, backoff_base_s=0.01)
        reqs = [ChatRequest(f"p{i}", 0, [{"role": "user", "content": f"q{i}"}]) for i in range(30)]
        t0 = time.perf_counter()
        out = b.complete(reqs, Strategy(max_tokens=64))
        wall = time.perf_counter() - t0
    assert all(c.ok for c in out)
    assert b.stats["timeouts"] == 0 and b.stats["unusable_oversized"] == 2
    assert wall < 10, wall


def test_reply_limits_follow_max_tokens() -> None:
    b = OpenAIBackend("m", "http://127.0.0.1:9/v1")
    small, large = Strategy(max_tokens=64), Strategy(max_tokens=4096)
    assert b.reply_char_limit(small) < b.reply_char_limit(large)
    assert b.reply_byte_limit(small) < 5_000_000 <= b.reply_byte_limit(Strategy(max_tokens=32_768))


def test_null_content_is_retried_and_a_clean_answer_stored() -> None:
    with FaultServer(script=["null_content", "null_content", "ok"]) as srv:
        b = OpenAIBackend("m", srv.base_url, max_retries=3, backoff_base_s=0.01)
        (c,) = b.complete([ChatRequest("p", 0, [{"role": "user", "content": "hi"}])], Strategy(max_tokens=16))
    assert c.ok and c.text.startswith("echo(") and c.finish_reason == "stop"
    assert b.stats["unusable_null_content"] == 2 and b.stats["retries"] == 2


def test_unusable_replies_fail_after_the_last_retry_with_their_kind() -> None:
    with FaultServer(faults={"empty_choices": 1.0}) as srv:
        b = OpenAIBackend("m", srv.base_url, max_retries=2, backoff_base_s=0.01)
        (c,) = asyncio.run(_one(b))
    assert not c.ok and "empty_choices" in c.error and b.stats["attempts"] == 3


async def _one(b: OpenAIBackend):
    try:
        return await b.acomplete([ChatRequest("p", 0, [{"role": "user", "content": "hi"}])], Strategy(max_tokens=8))
    finally:
        await b.aclose()
