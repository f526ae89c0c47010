"""k-means over embeddings and Prompt.cluster assignment."""

from __future__ import annotations

import numpy as np
import pytest

from banditarena.errors import ConfigError
from banditarena.prompts import HashEmbedder, assign_clusters, kmeans
from banditarena.types import Prompt


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.eye(8, dtype=np.float32)[:4] * 5
    sizes = [30, 20, 15, 10]
    X = np.concatenate([c + 0.1 * rng.standard_normal((s, 8)) for c, s in zip(centers, sizes)])
    y = np.repeat(np.arange(4), sizes)
    return X.astype(np.float32), y


def test_kmeans_recovers_blobs_with_canonical_labels():
    X, y = blobs()
    r = kmeans(X, 4, seed=0)
    # canonical numbering: largest cluster first -> labels equal the blob index exactly
    assert np.array_equal(r.labels, y)
    assert r.centroids.shape == (4, 8) and r.sizes().tolist() == [30, 20, 15, 10]
    assert np.allclose(r.distances, np.linalg.norm(X - r.centroids[r.labels], axis=1), atol=1e-5)
    m = r.members(3)
    assert set(m.tolist()) == set(np.flatnonzero(y == 3).tolist())
    assert np.all(np.diff(r.distances[m]) >= 0)
    r2 = kmeans(X, 4, seed=0, algorithm="minibatch", max_iter=50)
    assert np.array_equal(r2.labels, y)
    with pytest.raises(ConfigError, match="between 1 and the pool size"):
        kmeans(X, 1000)


def test_assign_clusters_sets_str_labels_and_keeps_existing():
    topics = {
        "cooking": ["bake bread flour yeast oven", "flour yeast dough bread oven", "oven bake bread dough"],
        "network": [
            "tcp udp packet network port",
            "network packet tcp socket port",
            "udp socket packet port",
        ],
    }
    prompts = [
        Prompt(id=f"{t}{i}", messages=[{"role": "user", "content": s}])
        for t, ss in topics.items()
        for i, s in enumerate(ss)
    ]
    prompts[0].cluster = "given"
    r = assign_clusters(prompts, 2, HashEmbedder(dim=256), seed=0)
    assert prompts[0].cluster == "given"
    assert all(isinstance(p.cluster, str) for p in prompts)
    assert len({p.cluster for p in prompts[1:3]}) == 1 and len({p.cluster for p in prompts[3:]}) == 1
    assert prompts[1].cluster != prompts[3].cluster
    assert r.labels[0] == r.labels[1]  # the pre-labelled prompt still took part in the clustering
    assign_clusters(prompts, 2, HashEmbedder(dim=256), seed=0, overwrite=True, prefix="k")
    assert prompts[0].cluster.startswith("k")
