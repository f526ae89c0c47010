"""Shared fixtures for the prompts tests: the real MiniLM embedder is loaded once per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def minilm():
    """The real all-MiniLM-L6-v2 (embedded default), shared by every test of the session."""
    from banditarena.prompts import Embedder

    emb = Embedder()
    emb.encode(["warm up"])  # load once
    return emb


@pytest.fixture()
def hash_embedder():
    from banditarena.prompts import HashEmbedder

    return HashEmbedder(dim=256)
