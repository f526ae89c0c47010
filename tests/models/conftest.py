"""Fixtures for the model-backend tests: a tiny random llama checkpoint and a real llama.cpp server."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_llama_dir(tiny_llama: Path) -> Path:
    """A randomly initialised 2-layer llama with SmolLM2's tokenizer (the project-wide tiny model)."""
    return tiny_llama


@pytest.fixture(scope="session")
def llama_server() -> Iterator[Any]:
    """llama-cpp-python's OpenAI-compatible server on the SmolLM2 GGUF; yields the running
    :class:`~banditarena.models.llamacpp.LlamaCppServer` (its backends report a dead process by signal).

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
        yield server
    finally:
        server.stop()
