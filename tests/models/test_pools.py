"""Replica pools: least-loaded routing, a dead replica ejected and probed back, one cache for all replicas."""

from __future__ import annotations

import threading
import time

from banditarena.models.base import ChatRequest
from banditarena.models.openai import OpenAIBackend
from banditarena.types import Strategy
from tests.support.fault_server import FaultServer


def reqs(n: int) -> list[ChatRequest]:
    return [ChatRequest(f"p{i}", 0, [{"role": "user", "content": f"question {i}"}]) for i in range(n)]


def test_a_replica_that_dies_mid_run_is_ejected_and_every_request_completes() -> None:
    servers = [FaultServer(delay_s=0.02).start() for _ in range(4)]
    try:
        b = OpenAIBackend("m", [s.base_url for s in servers], concurrency=2, timeout_s=2, max_retries=4,
                          backoff_base_s=0.01, breaker_cooldown_s=60, eject_after=2)
        def kill_when_busy() -> None:  # one replica dies mid-run, after it answered a few requests
            t0 = time.time()
            while servers[1].counts["ok"] < 5 and time.time() - t0 < 30:
                time.sleep(0.005)
            servers[1].kill()

        killer = threading.Thread(target=kill_when_busy)
        killer.start()
        out = b.complete(reqs(160), Strategy(max_tokens=8))
        killer.join()
        assert all(c.ok for c in out), [c.error for c in out if not c.ok][:3]
        answered = [s.counts["ok"] for s in servers]
        assert sum(answered) == 160  # no request was answered twice
        assert all(n > 0 for n in answered)  # everyone served, the dead one before it died
        assert b.stats["connection_errors"] >= 1 and b.stats["connection_errors"] <= 2 + 2 * 2  # ejected fast
        assert b.stats["ok"] == 160
    finally:
        for s in servers:
            s.stop()


def test_a_slow_replica_gets_less_work() -> None:
    fast = [FaultServer(delay_s=0.01).start() for _ in range(2)]
    slow = FaultServer(delay_s=0.3).start()
    try:
        b = OpenAIBackend("m", [*(s.base_url for s in fast), slow.base_url], concurrency=2, timeout_s=5,
                          backoff_base_s=0.01)
        out = b.complete(reqs(90), Strategy(max_tokens=8))
        assert all(c.ok for c in out)
        assert slow.counts["ok"] < min(s.counts["ok"] for s in fast) / 3, (slow.counts["ok"], [s.counts["ok"] for s in fast])
    finally:
        for s in (*fast, slow):
            s.stop()


def test_an_ejected_replica_is_probed_back_after_the_cooldown() -> None:
    a = FaultServer(script=["500"] * 2).start()  # fails twice, then answers
    b_srv = FaultServer().start()
    try:
        b = OpenAIBackend("m", [a.base_url, b_srv.base_url], concurrency=1, max_retries=3, backoff_base_s=0.01,
                          breaker_cooldown_s=0.2, eject_after=2)
        out = b.complete(reqs(6), Strategy(max_tokens=8))
        assert all(c.ok for c in out)
        served_a = a.counts["ok"]
        time.sleep(0.25)  # the cool-down passes: the next requests probe the replica, which now answers
        out = b.complete(reqs(8), Strategy(max_tokens=8))
        assert all(c.ok for c in out) and a.counts["ok"] > served_a
    finally:
        a.stop()
        b_srv.stop()


def test_every_replica_down_is_one_failure_line_per_request() -> None:
    servers = [FaultServer(p_500=1.0).start() for _ in range(2)]
    try:
        b = OpenAIBackend("m", [s.base_url for s in servers], max_retries=3, backoff_base_s=0.01, eject_after=1)
        out = b.complete(reqs(4), Strategy(max_tokens=8))
        assert all(not c.ok for c in out)
        assert all("\n" not in c.error and "pool[" in c.error for c in out)
        assert any("every replica is ejected" in c.error for c in out)
    finally:
        for s in servers:
            s.stop()
