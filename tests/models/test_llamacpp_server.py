"""Integration: OpenAIBackend against llama-cpp-python's real OpenAI-compatible server (SmolLM2 GGUF)."""

from __future__ import annotations

import asyncio

import pytest

from banditarena.models import OpenAIBackend
from banditarena.models.base import ChatRequest
from banditarena.models.llamacpp import LlamaCppServer
from banditarena.types import Strategy

pytestmark = [pytest.mark.server, pytest.mark.slow]


def test_openai_backend_against_llama_cpp_server(llama_server: LlamaCppServer) -> None:
    # made by the server: if its process dies (e.g. SIGILL from a non-portable build), the failure says so
    b = llama_server.backend("smollm2-135m-instruct", concurrency=2, timeout_s=120, max_retries=2)
    rs = [ChatRequest("sum", 0, [{"role": "user", "content": "What is 2+2? Answer with a number."}]),
          ChatRequest("col", 0, [{"role": "user", "content": "Name one color."}])]
    done: list[int] = []

    async def run() -> list:
        try:
            return await b.acomplete(rs, Strategy(system_prompt="Answer briefly.", max_tokens=12),
                                     progress=done.append)
        finally:
            await b.aclose()

    out = asyncio.run(run())
    assert all(c.ok for c in out), [c.error for c in out]
    assert done == [1, 1] and all(0 < c.tokens <= 12 and c.text.strip() and c.latency_s > 0 for c in out)
    assert "4" in out[0].text
    assert b.complete(rs[:1], Strategy(system_prompt="Answer briefly.", max_tokens=12))[0].text == out[0].text

    seeded = [ChatRequest("col", 0, rs[1].messages, seed=s) for s in (7, 7)]
    a, b2 = b.complete(seeded, Strategy(temperature=1.0, max_tokens=8))
    assert a.ok and b2.ok and a.text == b2.text  # the seed is sent and fixes the sample

    bad = OpenAIBackend("smollm2", llama_server.base_url.replace("/v1", "/nope"), max_retries=3, timeout_s=30)
    (c,) = bad.complete(rs[:1], Strategy(max_tokens=4))
    assert not c.ok and "HTTP 404" in c.error and bad.stats["attempts"] == 1  # a 4xx is not retried
