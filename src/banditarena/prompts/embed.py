"""Prompt embeddings: the embedders live with the other model loaders in :mod:`banditarena.models.embed`."""

from banditarena.models.embed import Embedder, HashEmbedder, TextEncoder, embedder_identity, prompt_texts

__all__ = ["Embedder", "HashEmbedder", "TextEncoder", "embedder_identity", "prompt_texts"]
