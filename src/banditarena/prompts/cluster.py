"""k-means over prompt embeddings.

:func:`kmeans` clusters L2-normalised embeddings with scikit-learn (``KMeans``; ``MiniBatchKMeans`` for
large pools) and returns labels, centroids and each point's distance to its centroid. Labels are
renumbered by cluster size (largest first, ties by smallest member index) so they do not depend on
sklearn's internal numbering. :func:`assign_clusters` embeds a pool and writes the labels into
``Prompt.cluster`` (as strings) for prompts that have none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from banditarena.errors import ConfigError
from banditarena.types import Prompt


@dataclass
class ClusterResult:
    """Labels (n,) int64 in ``0..k-1``, centroids (k, d) float32, distances (n,) to the own centroid."""

    labels: np.ndarray
    centroids: np.ndarray
    distances: np.ndarray
    inertia: float

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def members(self, label: int) -> np.ndarray:
        """Indices of the points in cluster ``label``, nearest to the centroid first."""
        idx = np.flatnonzero(self.labels == label)
        return idx[np.lexsort((idx, self.distances[idx]))]

    def sizes(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.k)


def kmeans(
    embeddings: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    algorithm: Literal["auto", "kmeans", "minibatch"] = "auto",
    n_init: int = 3,
    max_iter: int = 300,
) -> ClusterResult:
    """Cluster rows of ``embeddings`` into ``k`` clusters (deterministic given ``seed``).

    Args:
        embeddings: (n, d) array, usually L2-normalised (then Euclidean k-means ranks like cosine).
        k: number of clusters, ``1 <= k <= n``.
        seed: random state of k-means++ initialisation.
        algorithm: ``"kmeans"`` (Lloyd), ``"minibatch"`` (MiniBatchKMeans) or ``"auto"`` (minibatch above
            20,000 points).
        n_init: k-means++ restarts; the best inertia wins.
        max_iter: iteration cap.
    """
    X = np.asarray(embeddings, dtype=np.float32)
    if X.ndim != 2:
        raise ConfigError(f"embeddings must be a 2-D array, got shape {X.shape}")
    n = X.shape[0]
    if not 1 <= k <= n:
        raise ConfigError(f"n_clusters must be between 1 and the pool size {n}, got {k}")
    if algorithm not in ("auto", "kmeans", "minibatch"):
        raise ConfigError(f"algorithm must be 'auto', 'kmeans' or 'minibatch', got {algorithm!r}")
    use_mb = algorithm == "minibatch" or (algorithm == "auto" and n > 20_000)
    if use_mb:
        from sklearn.cluster import MiniBatchKMeans

        model: Any = MiniBatchKMeans(
            n_clusters=k, random_state=seed, n_init=n_init, max_iter=max_iter, batch_size=4096
        )
    else:
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=k, random_state=seed, n_init=n_init, max_iter=max_iter)
    import warnings

    with warnings.catch_warnings():
        # duplicate points can leave fewer distinct clusters than k; sklearn warns, we still return k labels
        warnings.simplefilter("ignore", category=UserWarning)
        warnings.simplefilter("ignore", category=RuntimeWarning)
        raw = model.fit_predict(X).astype(np.int64)
    cents = np.asarray(model.cluster_centers_, dtype=np.float32)
    # canonical numbering: larger clusters first, ties by their smallest member index
    sizes = np.bincount(raw, minlength=k)
    first = np.full(k, n, dtype=np.int64)
    np.minimum.at(first, raw, np.arange(n))
    order = np.lexsort((first, -sizes))
    remap = np.empty(k, dtype=np.int64)
    remap[order] = np.arange(k)
    labels = remap[raw]
    cents = cents[order]
    dist = np.linalg.norm(X - cents[labels], axis=1).astype(np.float32)
    return ClusterResult(labels=labels, centroids=cents, distances=dist, inertia=float(np.sum(dist**2)))


def assign_clusters(
    prompts: Sequence[Prompt],
    k: int,
    embedder: Any,
    seed: int = 0,
    *,
    overwrite: bool = False,
    prefix: str = "",
) -> ClusterResult:
    """Embed ``prompts`` (:attr:`Prompt.text`), run :func:`kmeans`, and set ``Prompt.cluster`` in place.

    The labels are ``f"{prefix}{label}"``. Prompts that already have a cluster (e.g. Arena-Hard topics) keep
    it unless ``overwrite=True``; every prompt still takes part in the clustering. Returns the
    :class:`ClusterResult` (label ``i`` of the result is prompt ``prompts[i]``).
    """
    if not prompts:
        raise ConfigError("cannot cluster an empty prompt pool")
    X = embedder.encode([p.text for p in prompts])
    res = kmeans(X, k, seed=seed)
    for p, lab in zip(prompts, res.labels):
        if overwrite or p.cluster is None:
            p.cluster = f"{prefix}{int(lab)}"
    return res
