"""Prompt embeddings: the embedders live with the other model loaders in :mod:`banditarena.models.embed`."""

from banditarena.models.embed import (
    Embedder,
    HashEmbedder,
    StaticEmbedder,
    TextEncoder,
    embedder_identity,
    make_embedder,
    prompt_texts,
)

__all__ = ["Embedder", "HashEmbedder", "StaticEmbedder", "TextEncoder", "embedder_identity", "make_embedder",
           "prompt_texts"]
