"""LocalBackend: batched generation on a tiny random llama (fast) and on the real SmolLM2 (one test)."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from banditarena.errors import ConfigError, ModelError
from banditarena.models.base import ChatRequest
from banditarena.models.local import LocalBackend, sample_token
from banditarena.types import Strategy

QUESTIONS = [
    "Hi",
    "What is the capital of France and why is it famous?",
    "Count to five.",
    "Write one long sentence about rivers, mountains, valleys and the sea in winter.",
    "2+2?",
    "Name a color.",
]


def reqs(seed0: int | None = 0) -> list[ChatRequest]:
    return [
        ChatRequest(f"q{i}", 0, [{"role": "user", "content": q}], seed=None if seed0 is None else seed0 + i)
        for i, q in enumerate(QUESTIONS)
    ]


def test_sample_token_greedy_nucleus_and_one_draw_per_token() -> None:
    import torch

    logits = torch.tensor([0.0, 3.0, 1.0, 2.9])
    g = torch.Generator().manual_seed(0)
    assert sample_token(logits, g, 0.0, 1.0) == 1
    assert all(sample_token(logits, torch.Generator().manual_seed(s), 1.0, 1e-6) == 1 for s in range(20))
    picks = {sample_token(logits, torch.Generator().manual_seed(s), 1.0, 1.0) for s in range(50)}
    assert picks >= {1, 3}
    nucleus = {sample_token(logits, torch.Generator().manual_seed(s), 1.0, 0.8) for s in range(200)}
    assert nucleus == {1, 3}  # tokens 0 and 2 lie outside the top-0.8 mass
    for top_p in (1.0, 0.8):  # exactly one uniform is consumed per sampled token
        g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        sample_token(logits, g1, 0.7, top_p)
        torch.rand(1, generator=g2, dtype=torch.float64)
        assert torch.rand(1, generator=g1).item() == torch.rand(1, generator=g2).item()


def test_batched_equals_alone_and_seed_fixes_the_sample(tiny_llama_dir: Path) -> None:
    b4 = LocalBackend(str(tiny_llama_dir), batch_size=4)
    b1 = LocalBackend(str(tiny_llama_dir), batch_size=1)
    for strategy in (Strategy(max_tokens=12), Strategy(temperature=0.9, top_p=0.95, max_tokens=12)):
        batched = b4.complete(reqs(), strategy)
        shuffled = b4.complete(list(reversed(reqs())), strategy)[::-1]
        alone = [b1.complete([r], strategy)[0] for r in reqs()]
        assert [c.text for c in batched] == [c.text for c in alone] == [c.text for c in shuffled]
        assert all(c.ok and 0 < c.tokens <= 12 and c.text for c in batched)
    sampled = Strategy(temperature=0.9, max_tokens=12)
    a = [c.text for c in b4.complete(reqs(0), sampled)]
    again = [c.text for c in b4.complete(reqs(0), sampled)]
    other = [c.text for c in b4.complete(reqs(100), sampled)]
    assert a == again and a != other
    # without a seed, the seed derives from the request: still reproducible
    assert [c.text for c in b4.complete(reqs(None), sampled)] == [c.text for c in b4.complete(reqs(None), sampled)]


def test_progress_per_batch_order_and_system_prompt(tiny_llama_dir: Path) -> None:
    b = LocalBackend(str(tiny_llama_dir), batch_size=4)
    done: list[int] = []
    out = asyncio.run(b.acomplete(reqs(), Strategy(max_tokens=4), progress=done.append))
    assert done == [4, 2] and len(out) == 6
    alone = b.complete([reqs()[3]], Strategy(max_tokens=4))[0]
    assert out[3].text == alone.text  # results come back in request order despite length sorting
    with_sys = b.complete([reqs()[1]], Strategy(system_prompt="You are a pirate.", max_tokens=8))[0]
    explicit = ChatRequest("q1", 0, [{"role": "system", "content": "You are a pirate."},
                                     {"role": "user", "content": QUESTIONS[1]}])
    assert with_sys.text == b.complete([explicit], Strategy(system_prompt="You are a pirate.", max_tokens=8))[0].text
    assert b.complete([], Strategy()) == []


def test_long_prompts_get_smaller_batches_with_the_same_answers(tiny_llama_dir: Path) -> None:
    long_q = "Describe this list: " + ", ".join(f"item number {i}" for i in range(120))  # ~700 tokens
    rs = reqs() + [ChatRequest("long", 0, [{"role": "user", "content": long_q}], seed=99)]
    b = LocalBackend(str(tiny_llama_dir), batch_size=8, max_batch_tokens=1024)
    lengths = [len(p) for p in b._encode_all(rs, Strategy())]
    order = sorted(range(len(rs)), key=lambda i: (lengths[i], i))
    batches = b._batches(order, lengths)
    assert batches[-1] == [len(rs) - 1]  # the long prompt alone: it would pad 7 short ones to its length
    assert all(len(x) * max(lengths[i] for i in x) <= 1024 or len(x) == 1 for x in batches)
    done: list[int] = []
    out = asyncio.run(b.acomplete(rs, Strategy(max_tokens=6), progress=done.append))
    assert done == [len(x) for x in batches]
    whole = LocalBackend(str(tiny_llama_dir), batch_size=8, max_batch_tokens=10**6).complete(rs, Strategy(max_tokens=6))
    assert [c.text for c in out] == [c.text for c in whole]
    with pytest.raises(ConfigError, match="max_batch_tokens"):
        LocalBackend(str(tiny_llama_dir), max_batch_tokens=0)


def test_model_loads_once_and_identity_fingerprints_the_checkpoint(tiny_llama_dir: Path, tmp_path: Path) -> None:
    b = LocalBackend(str(tiny_llama_dir))
    assert b.load()[0] is LocalBackend(str(tiny_llama_dir), batch_size=2).load()[0]
    copy = tmp_path / "copy"
    shutil.copytree(tiny_llama_dir, copy)
    same = LocalBackend(str(copy))
    assert same.identity()["fingerprint"] == b.identity()["fingerprint"]
    cfg = copy / "config.json"
    cfg.write_text(cfg.read_text().replace('"rms_norm_eps": 1e-06', '"rms_norm_eps": 1e-05'))
    assert LocalBackend(str(copy)).identity()["fingerprint"] != b.identity()["fingerprint"]
    default = LocalBackend("smollm2")
    assert default.identity() == {"backend": "local", "model": "smollm2-135m-instruct"}


def test_bad_model_or_batch_size(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no-such-model"):
        LocalBackend("no-such-model")
    with pytest.raises(ConfigError, match="batch_size"):
        LocalBackend("smollm2", batch_size=0)
    (tmp_path / "junk").mkdir()
    with pytest.raises(ModelError, match="cannot be loaded"):
        LocalBackend(str(tmp_path / "junk")).load()


@pytest.mark.slow
def test_real_smollm2_answers_and_is_batch_invariant() -> None:
    b = LocalBackend("smollm2-135m-instruct", batch_size=4)
    rs = [ChatRequest("a", 0, [{"role": "user", "content": "What is 2+2?"}], seed=1),
          ChatRequest("b", 0, [{"role": "user", "content": "Name three colors."}], seed=2)]
    greedy = b.complete(rs, Strategy(max_tokens=12))
    assert "4" in greedy[0].text and greedy[0].tokens <= 12
    t0 = time.perf_counter()
    sampled = b.complete(rs, Strategy(temperature=0.8, max_tokens=10))
    alone = b.complete(rs[1:], Strategy(temperature=0.8, max_tokens=10))
    assert sampled[1].text == alone[0].text and sampled[1].text
    assert time.perf_counter() - t0 < 120


def test_concurrent_calls_on_one_backend_match_separate_calls(tiny_llama_dir: Path) -> None:
    b = LocalBackend(str(tiny_llama_dir), batch_size=2)
    s1, s2 = Strategy(max_tokens=6), Strategy(temperature=0.8, max_tokens=6)

    async def both() -> list:
        return await asyncio.gather(b.acomplete(reqs()[:3], s1), b.acomplete(reqs()[3:], s2))

    one, two = asyncio.run(both())
    assert [c.text for c in one] == [c.text for c in b.complete(reqs()[:3], s1)]
    assert [c.text for c in two] == [c.text for c in b.complete(reqs()[3:], s2)]
