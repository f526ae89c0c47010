"""Embedder (real MiniLM) and HashEmbedder."""

from __future__ import annotations

import numpy as np
import pytest

from banditarena.errors import ModelError
from banditarena.prompts import Embedder, HashEmbedder


def test_minilm_shape_norm_and_semantics(minilm):
    X = minilm.encode(
        ["How do I bake bread?", "What is a good recipe for homemade bread?", "Explain TCP vs UDP."]
    )
    assert X.shape == (3, 384) and X.dtype == np.float32
    assert np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    assert X[0] @ X[1] > X[0] @ X[2] + 0.3
    one = minilm.encode("How do I bake bread?")
    assert one.shape == (1, 384) and np.allclose(one[0], X[0], atol=1e-5)
    assert minilm.encode([]).shape == (0, 384)


def test_disk_cache_makes_reembedding_free(minilm, tmp_path):
    texts = [f"prompt number {i} about topic {i % 3}" for i in range(20)]
    e1 = Embedder(cache_dir=tmp_path)
    A = e1.encode(texts + texts[:5])  # repeats inside one call are embedded once
    assert e1.n_encoded == 20 and e1.n_cached == 0
    B = e1.encode(texts)
    assert e1.n_encoded == 20 and e1.n_cached == 20
    e2 = Embedder(cache_dir=tmp_path)  # a fresh object (e.g. another process) reads the same cache
    C = e2.encode(texts[::-1] + ["a new text"])
    assert e2.n_encoded == 1 and e2.n_cached == 20
    assert np.array_equal(A[:20], B) and np.array_equal(C[:20], B[::-1])
    assert np.allclose(C[20], minilm.encode(["a new text"])[0], atol=1e-5)
    e1.close()
    e2.close()


def test_unknown_model_is_a_model_error():
    with pytest.raises(ModelError, match="embedding model 'no-such-model' not found"):
        Embedder("no-such-model").encode(["x"])


def test_hash_embedder():
    h = HashEmbedder(dim=128)
    X = h.encode(["the cat sat on the mat", "the cat sat on a mat", "quantum chromodynamics", ""])
    assert X.shape == (4, 128) and X.dtype == np.float32
    assert np.allclose(np.linalg.norm(X[:3], axis=1), 1.0, atol=1e-5) and not X[3].any()
    assert X[0] @ X[1] > 0.5 > abs(X[0] @ X[2])
    assert np.array_equal(
        X,
        HashEmbedder(dim=128).encode(
            ["the cat sat on the mat", "the cat sat on a mat", "quantum chromodynamics", ""]
        ),
    )
