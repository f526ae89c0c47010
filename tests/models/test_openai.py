"""OpenAIBackend against a real local HTTP server that injects 429s, 500s and hangs."""

from __future__ import annotations

import asyncio
import time

import pytest

from banditarena.errors import ConfigError, ModelError
from banditarena.models.base import ChatRequest
from banditarena.models.llamacpp import free_port
from banditarena.models.openai import OpenAIBackend, _retry_after_s
from banditarena.types import Strategy
from tests.support.fault_server import FaultServer

FAST = {"timeout_s": 2.0, "backoff_base_s": 0.01, "backoff_max_s": 0.05, "jitter_seed": 0}


def reqs(n: int, seed: int | None = None) -> list[ChatRequest]:
    return [ChatRequest(f"p{i}", 0, [{"role": "user", "content": f"question {i}"}], seed=seed) for i in range(n)]


def test_missing_api_key_env_var_raises_naming_var_and_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BA_TEST_MISSING_KEY", raising=False)
    with pytest.raises(ModelError) as exc:
        OpenAIBackend("gpt-x", "http://127.0.0.1:9/v1", api_key_env="BA_TEST_MISSING_KEY")
    msg = str(exc.value)
    assert "BA_TEST_MISSING_KEY" in msg and "gpt-x" in msg and "\n" not in msg
    monkeypatch.setenv("BA_TEST_MISSING_KEY", "")
    with pytest.raises(ModelError, match="BA_TEST_MISSING_KEY"):
        OpenAIBackend("gpt-x", "http://127.0.0.1:9/v1", api_key_env="BA_TEST_MISSING_KEY")


def test_bad_settings_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        OpenAIBackend("m", "127.0.0.1:8000/v1")
    with pytest.raises(ConfigError, match="concurrency"):
        OpenAIBackend("m", "http://127.0.0.1:8000/v1", concurrency=0)
    with pytest.raises(ConfigError, match="timeout_s"):
        OpenAIBackend("m", "http://127.0.0.1:8000/v1", timeout_s=0)


def test_key_is_sent_but_never_part_of_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BA_TEST_KEY", "sekret-123")
    with FaultServer(api_key="sekret-123") as srv:
        b = OpenAIBackend("m", srv.base_url, api_key_env="BA_TEST_KEY", **FAST)
        out = b.complete(reqs(2), Strategy())
        assert all(c.ok for c in out) and srv.counts["401"] == 0
        monkeypatch.setenv("BA_TEST_KEY", "wrong")
        bad = OpenAIBackend("m", srv.base_url, api_key_env="BA_TEST_KEY", **FAST)
        (c,) = bad.complete(reqs(1), Strategy())
        assert not c.ok and "HTTP 401" in c.error and srv.counts["401"] == 1  # 4xx: no retry
    ident = repr(b.identity()) + repr(b)
    assert "sekret" not in ident and "sekret" not in (c.error or "")
    assert b.identity() == {"backend": "openai", "model": "m"}
    # the same model on another port shares the cache; decoding settings and extra_body do not
    other = OpenAIBackend("m", "http://10.0.0.1:9999/v1", concurrency=1, timeout_s=5)
    r = reqs(1)[0]
    assert other.cache_key(r, Strategy()) == b.cache_key(r, Strategy())
    assert other.cache_key(r, Strategy(temperature=0.5)) != b.cache_key(r, Strategy())
    tuned = OpenAIBackend("m", "http://10.0.0.1:9999/v1", extra_body={"top_k": 5})
    assert tuned.cache_key(r, Strategy()) != b.cache_key(r, Strategy())


def test_payload_carries_strategy_seed_and_system_prompt() -> None:
    with FaultServer() as srv:
        b = OpenAIBackend("m", srv.base_url, extra_body={"top_k": 3}, **FAST)
        s = Strategy(system_prompt="Be brief.", temperature=0.7, top_p=0.9, max_tokens=17)
        out = b.complete(reqs(1, seed=42) + reqs(1), s)
        assert [c.ok for c in out] == [True, True]
        assert out[0].text == "echo(m, seed=42): question 0" and out[0].tokens == 4 and out[0].latency_s > 0
        seeded, unseeded = sorted(srv.bodies, key=lambda body: "seed" not in body)
        assert seeded["seed"] == 42 and "seed" not in unseeded
        assert seeded["messages"][0] == {"role": "system", "content": "Be brief."}
        assert (seeded["temperature"], seeded["top_p"], seeded["max_tokens"], seeded["top_k"]) == (0.7, 0.9, 17, 3)


def test_429_and_500_are_retried_then_succeed() -> None:
    with FaultServer(script=["429", "500", "500", "ok"]) as srv:
        b = OpenAIBackend("m", srv.base_url, max_retries=5, **FAST)
        (c,) = b.complete(reqs(1), Strategy())
        assert c.ok and c.text.endswith("question 0")
        assert srv.counts["received"] == 4 and b.stats["retries"] == 3
        assert b.stats["http_429"] == 1 and b.stats["http_500"] == 2


def test_other_4xx_fail_at_once_with_one_line_error() -> None:
    with FaultServer(script=["bad_request"]) as srv:
        b = OpenAIBackend("m", srv.base_url, max_retries=5, **FAST)
        (c,) = b.complete(reqs(1), Strategy())
        assert not c.ok and srv.counts["received"] == 1 and b.stats["retries"] == 0
        assert "HTTP 400" in c.error and "'m'" in c.error and srv.base_url in c.error and "\n" not in c.error


def test_retries_exhausted_give_error_completion_not_exception() -> None:
    with FaultServer(script=["500"] * 3) as srv:
        b = OpenAIBackend("m", srv.base_url, max_retries=2, **FAST)
        (c,) = b.complete(reqs(1), Strategy())
        assert not c.ok and "after 3 attempts" in c.error and "HTTP 500" in c.error
        assert srv.counts["received"] == 3 and b.stats["failed"] == 1


def test_retry_after_is_honoured() -> None:
    with FaultServer(script=["429", "ok"], retry_after="0.4") as srv:
        b = OpenAIBackend("m", srv.base_url, **FAST | {"backoff_max_s": 5.0})
        t0 = time.perf_counter()
        (c,) = b.complete(reqs(1), Strategy())
        assert c.ok and time.perf_counter() - t0 >= 0.4
    assert _retry_after_s("2") == 2.0 and _retry_after_s("soon") is None and _retry_after_s(None) is None
    assert _retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait


def test_backoff_is_exponential_with_full_jitter() -> None:
    b = OpenAIBackend("m", "http://127.0.0.1:9/v1", backoff_base_s=0.5, backoff_max_s=3.0, jitter_seed=1)
    draws = {a: [b._backoff_s(a, None) for _ in range(400)] for a in range(6)}
    for a, xs in draws.items():
        cap = min(3.0, 0.5 * 2**a)
        assert 0 <= min(xs) and max(xs) <= cap
        assert max(xs) > 0.9 * cap and min(xs) < 0.1 * cap  # full jitter spans [0, cap]
    assert sum(draws[2]) / 400 > 1.5 * sum(draws[0]) / 400  # grows with the attempt number
    assert b._backoff_s(0, 2.0) >= 2.0 and b._backoff_s(0, 100.0) == 3.0  # Retry-After, capped
    same = OpenAIBackend("m", "http://127.0.0.1:9/v1", backoff_base_s=0.5, backoff_max_s=3.0, jitter_seed=1)
    assert [same._backoff_s(0, None) for _ in range(400)] == draws[0]


def test_a_hang_times_out_and_is_retried() -> None:
    with FaultServer(script=["hang", "ok"], hang_s=5) as srv:
        b = OpenAIBackend("m", srv.base_url, **FAST | {"timeout_s": 0.3})
        t0 = time.perf_counter()
        (c,) = b.complete(reqs(1), Strategy())
        assert c.ok and b.stats["timeouts"] == 1 and time.perf_counter() - t0 < 3


def test_fault_mix_every_request_completes_or_is_a_counted_failure() -> None:
    n = 60
    with FaultServer(p_429=0.2, p_500=0.2, p_hang=0.05, seed=1, hang_s=3) as srv:
        b = OpenAIBackend("m", srv.base_url, concurrency=8, max_retries=6, **FAST | {"timeout_s": 0.3})
        done: list[int] = []
        out = asyncio.run(b.acomplete(reqs(n), Strategy(), progress=done.append))
    ok = [c for c in out if c.ok]
    failed = [c for c in out if not c.ok]
    assert len(out) == n and sum(done) == n
    assert srv.counts["429"] > 0 and srv.counts["500"] > 0 and srv.counts["hang"] > 0
    assert len(ok) + len(failed) == n and b.stats["failed"] == len(failed) and b.stats["ok"] == len(ok)
    assert len(ok) >= n - 2  # 7 attempts each: a request failing them all is very unlikely
    assert srv.counts["ok"] >= len(ok)  # (a late answer can arrive after its client timed out)
    for i, c in enumerate(out):
        if c.ok:
            assert c.text == f"echo(m, seed=None): question {i}"  # order preserved
        else:
            assert "'m'" in c.error and "\n" not in c.error
    assert b.stats["attempts"] == n + b.stats["retries"] and b.stats["attempts"] >= srv.counts["received"]


def test_concurrency_limit_is_shared_by_backends_of_one_endpoint() -> None:
    with FaultServer(delay_s=0.1) as srv:
        a = OpenAIBackend("a", srv.base_url, concurrency=3, **FAST)
        b = OpenAIBackend("b", srv.base_url, concurrency=5, **FAST)

        async def both() -> list:
            try:
                return await asyncio.gather(a.acomplete(reqs(8), Strategy()), b.acomplete(reqs(8), Strategy()))
            finally:
                await a.aclose()
                await b.aclose()

        outs = asyncio.run(both())
        assert all(c.ok for out in outs for c in out)
        assert srv.peak_in_flight == 3  # the smallest limit wins, and it is used

    with FaultServer(delay_s=0.1) as srv1, FaultServer(delay_s=0.1) as srv2:
        a = OpenAIBackend("a", srv1.base_url, concurrency=2, **FAST)
        b = OpenAIBackend("b", srv2.base_url, concurrency=4, **FAST)

        async def separate() -> None:
            await asyncio.gather(a.acomplete(reqs(8), Strategy()), b.acomplete(reqs(8), Strategy()))

        asyncio.run(separate())
        assert (srv1.peak_in_flight, srv2.peak_in_flight) == (2, 4)  # other endpoints are independent


def test_endpoint_that_is_down_gives_error_completions_quickly() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    b = OpenAIBackend("down-model", url, max_retries=3, breaker_threshold=8, **FAST)
    t0 = time.perf_counter()
    out = b.complete(reqs(40), Strategy())
    assert time.perf_counter() - t0 < 5
    assert all(not c.ok for c in out) and b.stats["failed"] == 40
    for c in out:
        assert "'down-model'" in c.error and url in c.error and "\n" not in c.error
    assert any("ConnectError" in c.error for c in out)
    assert b.stats["breaker_rejections"] > 0  # once the breaker opened, the rest were not even sent


def test_hanging_endpoint_opens_the_breaker() -> None:
    with FaultServer(p_hang=1.0, hang_s=3) as srv:
        b = OpenAIBackend("m", srv.base_url, concurrency=4, max_retries=1, breaker_threshold=2,
                          **FAST | {"timeout_s": 0.2})
        t0 = time.perf_counter()
        out = b.complete(reqs(30), Strategy())
        assert time.perf_counter() - t0 < 4
        assert all(not c.ok for c in out)
        assert srv.counts["received"] <= 4  # one round of hung attempts, then the breaker holds
        assert any("timeout" in c.error for c in out) and any("circuit open" in c.error for c in out)


def test_breaker_closes_again_after_cooldown_and_429_proves_alive() -> None:
    with FaultServer(script=["500"] * 3 + ["429", "500"] * 2 + ["500", "500"]) as srv:
        b = OpenAIBackend("m", srv.base_url, concurrency=1, max_retries=1, breaker_threshold=3,
                          breaker_cooldown_s=0.3, **FAST)
        (c,) = b.complete(reqs(1), Strategy())  # 500, 500
        assert not c.ok and "HTTP 500" in c.error
        (c,) = b.complete(reqs(1), Strategy())  # 500 -> 3 in a row: open, the retry is not sent
        assert not c.ok and "circuit open" in c.error and "last: HTTP 500" in c.error
        assert srv.counts["received"] == 3
        (c,) = b.complete(reqs(1), Strategy())  # still open: not sent at all
        assert not c.ok and "circuit open" in c.error and srv.counts["received"] == 3
        time.sleep(0.35)
        for _ in range(2):  # 429 (alive: count reset), 500 -> failed, count 1; twice
            (c,) = b.complete(reqs(1), Strategy())
            assert not c.ok and "HTTP 500" in c.error
        assert srv.counts["received"] == 7
        (c,) = b.complete(reqs(1), Strategy())  # 500, 500: count 3 -> open again
        (c,) = b.complete(reqs(1), Strategy())
        assert "circuit open" in c.error and srv.counts["received"] == 9
