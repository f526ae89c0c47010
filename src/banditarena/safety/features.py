"""Text features of the trained safety classifier: hashed word n-grams (no vocabulary, no fitted state).

Each text becomes a sparse, L2-normalised vector of ``log(1 + count)`` of its lower-cased word unigrams and
bigrams, hashed (MurmurHash3, scikit-learn's ``HashingVectorizer``) into ``n_features`` buckets: the same
text gives the same vector on every machine and version, so the artifact stores only weights.

An answer judged in the context of its prompt is ``[f(answer), f(prompt), f(prompt) * f(answer)]``: the
product block lets words shared by question and answer count differently from words of either alone.

Why lexical features and not MiniLM sentence embeddings: measured in ``docs/safety.md``. Under 5-fold
grouped cross-validation they catch as many harmful XSTest answers (AUC 0.95 against MiniLM's 0.93), agree
as often with HH-RLHF's human choices, and run about 100 times faster on 2 CPU cores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FEATURE_SET = "hashed-word-ngrams-1"


class HashedNgrams:
    """Hashed word uni/bigram features (log term frequency, L2-normalised)."""

    def __init__(self, n_features: int = 2**17, ngram_max: int = 2) -> None:
        if n_features < 16 or n_features & (n_features - 1):
            raise ValueError(f"n_features must be a power of two >= 16, got {n_features}")
        if ngram_max not in (1, 2, 3):
            raise ValueError(f"ngram_max must be 1, 2 or 3, got {ngram_max}")
        self.n_features = int(n_features)
        self.ngram_max = int(ngram_max)
        self._vec: Any = None

    def identity(self) -> dict[str, Any]:
        return {"features": FEATURE_SET, "n_features": self.n_features, "ngram_max": self.ngram_max,
                "hash": "murmurhash3 (sklearn HashingVectorizer, alternate_sign=False)", "tf": "log1p", "norm": "l2"}

    def _vectorizer(self) -> Any:
        if self._vec is None:
            from sklearn.feature_extraction.text import HashingVectorizer

            self._vec = HashingVectorizer(n_features=self.n_features, ngram_range=(1, self.ngram_max),
                                          alternate_sign=False, norm=None, lowercase=True, dtype=np.float32)
        return self._vec

    def encode(self, texts: list[str]) -> Any:
        """A CSR matrix (len(texts), n_features), float32, rows of norm 1 (an empty text: a zero row)."""
        from sklearn.preprocessing import normalize

        X = self._vectorizer().transform(texts).tocsr()
        X.data = np.log1p(X.data).astype(np.float32)
        return normalize(X, norm="l2", copy=False)

    def text_block(self, texts: list[str]) -> Any:
        return self.encode(texts)

    def response_block(self, prompts: list[str], answers: list[str], *, encoded: tuple[Any, Any] | None = None) -> Any:
        """``[f(answer), f(prompt), f(prompt) * f(answer)]`` as one CSR matrix (len, 3 * n_features)."""
        from scipy import sparse

        fp, fa = encoded if encoded is not None else (self.encode(prompts), self.encode(answers))
        return sparse.hstack([fa, fp, fp.multiply(fa)], format="csr", dtype=np.float32)
