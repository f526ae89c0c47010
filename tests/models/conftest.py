"""Fixtures for the model-backend tests: a tiny random llama checkpoint and a real llama.cpp server."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer llama with SmolLM2's tokenizer (and chat template), saved to a tmp dir."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from banditarena.models import hub

    tok = AutoTokenizer.from_pretrained(str(hub.smollm2_checkpoint()))
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # sharper random logits: samples differ clearly between seeds
        model.model.embed_tokens.weight.mul_(40.0)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on the SmolLM2 GGUF; yields its base_url.

    Fails (does not skip) when llama-cpp-python is missing: ``make test`` installs it.
    """
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail("llama-cpp-python is not installed in this environment: run `make test` (it installs "
                    "'llama-cpp-python[server]') or pip install 'llama-cpp-python[server]'", pytrace=False)
    from banditarena.models.hub import smollm2_gguf
    from banditarena.models.llamacpp import LlamaCppServer

    server = LlamaCppServer(smollm2_gguf(), n_ctx=1024, n_threads=2, startup_timeout_s=240)
    server.start()
    try:
        yield server.base_url
    finally:
        server.stop()
