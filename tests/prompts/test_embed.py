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


# ---------------------------------------------------------------- static token embeddings distilled from MiniLM


@pytest.fixture(scope="module")
def static_cache(tmp_path_factory: pytest.TempPathFactory):
    """A StaticEmbedder whose table is distilled from the real MiniLM into a fresh folder (once per module)."""
    from banditarena.prompts import StaticEmbedder

    d = tmp_path_factory.mktemp("static")
    emb = StaticEmbedder(cache_dir=d)
    emb.encode("warm up")
    return emb, d


def test_static_embedder_is_a_distilled_table_kept_on_disk_and_reused(static_cache, monkeypatch) -> None:
    from banditarena.models import embed as embed_mod
    from banditarena.prompts import StaticEmbedder

    emb, d = static_cache
    files = list(d.glob("static-*.npy"))
    assert len(files) == 1 and files[0] == emb.table_file()
    table = np.load(files[0])
    assert table.shape == (30522, 256) and table.dtype == np.float32
    # a second embedder of the same model and settings reads the file: distilling again would fail here
    monkeypatch.setattr(embed_mod, "_STATIC", {})
    monkeypatch.setattr(embed_mod, "distil_static_table", lambda *a, **k: pytest.fail("distilled twice"))
    again = StaticEmbedder(cache_dir=d)
    texts = ["How do I bake bread?", "Explain the French Revolution in two sentences."]
    assert np.array_equal(again.encode(texts), emb.encode(texts))
    # other settings are another table, not a wrong reuse of this one
    assert StaticEmbedder(cache_dir=d, dims=128).table_file() != emb.table_file()


def test_static_embedder_vectors_carry_meaning(static_cache) -> None:
    emb, _ = static_cache
    X = emb.encode(["The cat sat on the mat.", "A kitten is sitting on a rug.",
                    "Quarterly revenue grew by eight percent.", ""])
    assert X.shape == (4, 256) and X.dtype == np.float32
    assert np.allclose(np.linalg.norm(X[:3], axis=1), 1.0, atol=1e-5)
    assert not X[3].any()  # no tokens: a zero row, no NaN
    assert X[0] @ X[1] > X[0] @ X[2] + 0.2  # the paraphrase is much closer than the unrelated sentence
    # order and batching do not change a text's vector
    assert np.allclose(emb.encode(["A kitten is sitting on a rug."])[0], X[1], atol=1e-6)
    # the table does not cut a long text at MiniLM's 256 tokens: a change after token 300 moves the vector
    long = " ".join(["word"] * 270)
    a, b = emb.encode([long + " tax law courts judges appeals statutes " * 4,
                       long + " bananas mangoes apples pears grapes " * 4])
    assert a @ b < 0.999


def test_make_embedder_reads_static_names() -> None:
    from banditarena.prompts import Embedder, StaticEmbedder, make_embedder

    s = make_embedder("static:all-MiniLM-L6-v2")
    assert isinstance(s, StaticEmbedder) and s.model == "all-MiniLM-L6-v2" and s.identity()["embedder"] == "static"
    e = make_embedder("all-MiniLM-L6-v2", max_seq_length=128)
    assert isinstance(e, Embedder) and e.max_seq_length == 128
    with pytest.raises(ValueError, match="dims"):
        StaticEmbedder(dims=1)
