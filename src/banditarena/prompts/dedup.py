"""MinHash near-duplicate removal for prompt pools, vectorised with numpy.

Pipeline
    1. Normalise (lower-case, keep word characters) and shingle each text: word n-grams (``shingle="word"``)
       or character n-grams of the space-joined words (``shingle="char"``). A text shorter than ``ngram``
       units is one shingle. Shingles are hashed to 64 bits (stable across processes: blake2b per distinct
       word, a polynomial roll over the window, a splitmix64 finaliser), all texts at once.
    2. MinHash signature of ``num_perm`` hashes per text with multiply-shift hash functions
       ``h_i(x) = (a_i * x + b_i mod 2**64) >> 32`` (``a_i`` odd), minimum over each text's shingles via
       ``np.minimum.reduceat`` on chunks of texts.
    3. LSH banding: ``bands x rows <= num_perm``, chosen to minimise a weighted sum of the false-positive
       and false-negative probability mass around ``threshold`` (Leskovec et al., *Mining of Massive
       Datasets* §3.4). Every candidate is checked in step 4, so a false positive costs only a comparison:
       the weights favour recall (``fp_weight=0.1``: a pair at the threshold is a candidate with p ~ 0.92,
       at threshold + 0.05 with p ~ 0.98, for 128 permutations at 0.7). Texts sharing a band bucket become
       candidate pairs.
    4. Each candidate pair's Jaccard similarity is estimated from the signatures; with ``verify=True``
       (default) pairs near the threshold are checked with the exact Jaccard of their shingle sets.
    5. Keep-first: texts are visited in pool order; a text is removed if it is a near-duplicate (similarity
       >= ``threshold``) of an earlier *kept* text, and mapped to the most similar such text. So every
       removed prompt maps to a kept prompt it really resembles (no chains through removed ones).

Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Literal, NamedTuple

import numpy as np

from banditarena.errors import ConfigError
from banditarena.types import Prompt

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_ROLL = np.uint64(0x100000001B3)  # FNV-64 prime, multiplier of the rolling window hash
_WORD = re.compile(r"\w+", re.UNICODE)
ShingleKind = Literal["word", "char"]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a bijective 64-bit mixer (wrapping uint64 arithmetic)."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _stable_hash64(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "little")


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    if len(x) < 2:
        return 0.0
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


@lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int, fp_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) with ``bands * rows <= num_perm`` minimising weighted FP + FN probability mass.

    A pair of Jaccard ``s`` becomes a candidate with probability ``1 - (1 - s**rows)**bands``; the false
    positive mass is its integral over ``[0, threshold]``, the false negative mass that of its complement
    over ``[threshold, 1]``.
    """
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"dedup threshold must be in (0, 1), got {threshold}")
    s = np.linspace(0.0, 1.0, 1001)
    lo, hi = s <= threshold, s >= threshold
    best, best_err = (1, num_perm), np.inf
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            p = 1.0 - (1.0 - s**r) ** b
            fp = _trapezoid(p[lo], s[lo])
            fn = _trapezoid(1.0 - p[hi], s[hi])
            err = fp_weight * fp + (1.0 - fp_weight) * fn
            if err < best_err - 1e-12:
                best, best_err = (b, r), err
    return best


class MinHasher:
    """MinHash signatures of texts (see the module doc for the shingling and hash functions).

    Args:
        num_perm: hash functions per signature.
        ngram: shingle length, in words (``shingle="word"``) or characters (``shingle="char"``).
        shingle: ``"word"`` or ``"char"``.
        seed: seeds the hash functions: same seed, same signatures.
    """

    def __init__(
        self, num_perm: int = 128, ngram: int = 2, shingle: ShingleKind = "word", seed: int = 0
    ) -> None:
        if num_perm < 2:
            raise ConfigError(f"dedup num_perm must be >= 2, got {num_perm}")
        if ngram < 1:
            raise ConfigError(f"dedup ngram must be >= 1, got {ngram}")
        if shingle not in ("word", "char"):
            raise ConfigError(f"dedup shingle must be 'word' or 'char', got {shingle!r}")
        self.num_perm, self.ngram, self.shingle, self.seed = int(num_perm), int(ngram), shingle, int(seed)
        rng = np.random.default_rng(seed)
        self._a = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self._b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)

    # ------------------------------------------------------------------ shingles
    def _units(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per-text unit hashes (words or characters) concatenated, and offsets (len n+1)."""
        vocab: dict[str, int] = {}
        ids: list[int] = []
        lens = np.zeros(len(texts), dtype=np.int64)
        for i, t in enumerate(texts):
            words = _WORD.findall(t.lower())
            if self.shingle == "word":
                units = words
            else:
                units = list(" ".join(words))
            lens[i] = len(units)
            for u in units:
                j = vocab.get(u)
                if j is None:
                    j = vocab[u] = len(vocab)
                ids.append(j)
        table = np.fromiter((_stable_hash64(u) for u in vocab), dtype=np.uint64, count=len(vocab))
        units_h = table[np.asarray(ids, dtype=np.int64)] if ids else np.zeros(0, dtype=np.uint64)
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        return units_h, offsets

    def shingles(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Hashed shingles of every text: (uint64 hashes concatenated, int64 offsets of length n+1).

        Every text has at least one shingle (an empty text has the hash of the empty sequence).
        """
        units, uoff = self._units(texts)
        n, k = len(texts), self.ngram
        lens = np.diff(uoff)
        n_sh = np.maximum(lens - k + 1, 1)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(n_sh, out=offsets[1:])
        out = np.zeros(int(offsets[-1]), dtype=np.uint64)
        with np.errstate(over="ignore"):
            # full windows: start positions i with i + k <= end of its text
            long_ = lens >= k
            if long_.any() and units.size:
                starts = np.concatenate(
                    [np.arange(uoff[d], uoff[d + 1] - k + 1) for d in np.flatnonzero(long_)]
                )
                h = np.zeros(starts.size, dtype=np.uint64)
                for j in range(k):
                    h = h * _ROLL + units[starts + j]
                dest = np.concatenate([np.arange(offsets[d], offsets[d + 1]) for d in np.flatnonzero(long_)])
                out[dest] = h
            # short texts: one shingle over all their units (k - len zero-padded so lengths differ)
            for d in np.flatnonzero(~long_):
                h = np.uint64(lens[d] + 1)
                for u in units[uoff[d] : uoff[d + 1]]:
                    h = h * _ROLL + u
                out[offsets[d]] = h
        return _splitmix64(out), offsets

    # ---------------------------------------------------------------- signatures
    def signatures(self, texts: Sequence[str], chunk: int = 1 << 15) -> np.ndarray:
        """MinHash signatures: uint32 array (n, num_perm)."""
        sh, off = self.shingles(texts)
        return self._signatures_from(sh, off, chunk)

    def _signatures_from(self, sh: np.ndarray, off: np.ndarray, chunk: int = 1 << 15) -> np.ndarray:
        n = len(off) - 1
        sig = np.empty((n, self.num_perm), dtype=np.uint32)
        d0 = 0
        while d0 < n:
            # as many texts as fit in `chunk` shingles (at least one)
            d1 = int(np.searchsorted(off, off[d0] + chunk, side="right")) - 1
            d1 = min(max(d1, d0 + 1), n)
            block = sh[off[d0] : off[d1]]
            with np.errstate(over="ignore"):
                hv = (block[:, None] * self._a[None, :] + self._b[None, :]) >> np.uint64(32)
            sig[d0:d1] = np.minimum.reduceat(hv, off[d0:d1] - off[d0], axis=0).astype(np.uint32)
            d0 = d1
        return sig


def _band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 bucket keys: a hash of each band's ``rows`` signature values."""
    n = sig.shape[0]
    keys = np.empty((n, bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for b in range(bands):
            h = np.full(n, np.uint64(b + 1), dtype=np.uint64)
            for c in sig[:, b * rows : (b + 1) * rows].T:
                h = h * _ROLL + c.astype(np.uint64)
            keys[:, b] = _splitmix64(h)
    return keys


def candidate_pairs(sig: np.ndarray, bands: int, rows: int, max_bucket: int = 200) -> np.ndarray:
    """Pairs (i < j) that share at least one LSH band bucket: int64 array (k, 2), sorted, unique.

    A bucket of ``m > max_bucket`` texts yields the pairs of every member with the bucket's first
    ``max_bucket`` members (in pool order) instead of all m(m-1)/2 pairs.
    """
    n = sig.shape[0]
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    keys = _band_keys(sig, bands, rows)
    codes: list[np.ndarray] = []
    tri_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for b in range(bands):
        k = keys[:, b]
        order = np.argsort(k, kind="stable")
        ks = k[order]
        brk = np.flatnonzero(ks[1:] != ks[:-1]) + 1
        starts = np.concatenate([[0], brk])
        ends = np.concatenate([brk, [n]])
        sizes = ends - starts
        for s, e, m in zip(starts[sizes > 1], ends[sizes > 1], sizes[sizes > 1]):
            members = order[s:e]  # ascending: stable sort of a permutation of arange
            if m <= max_bucket:
                if m not in tri_cache:
                    tri_cache[m] = np.triu_indices(m, 1)
                ii, jj = tri_cache[m]
                a, c = members[ii], members[jj]
            else:
                head = members[:max_bucket]
                a = np.repeat(head, m)
                c = np.tile(members, max_bucket)
                keep = a < c
                a, c = a[keep], c[keep]
            codes.append(a.astype(np.int64) * n + c)
    if not codes:
        return np.zeros((0, 2), dtype=np.int64)
    u = np.unique(np.concatenate(codes))
    return np.stack([u // n, u % n], axis=1)


def _exact_jaccard(sh: np.ndarray, off: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    sets: dict[int, np.ndarray] = {}

    def get(i: int) -> np.ndarray:
        s = sets.get(i)
        if s is None:
            s = sets[i] = np.unique(sh[off[i] : off[i + 1]])
        return s

    out = np.empty(len(pairs), dtype=np.float64)
    for t, (i, j) in enumerate(pairs):
        a, b = get(int(i)), get(int(j))
        inter = np.intersect1d(a, b, assume_unique=True).size
        out[t] = inter / (a.size + b.size - inter)
    return out


def near_duplicate_pairs(
    texts: Sequence[str],
    *,
    threshold: float = 0.7,
    num_perm: int = 128,
    ngram: int = 2,
    shingle: ShingleKind = "word",
    seed: int = 0,
    verify: bool = True,
    max_bucket: int = 200,
    fp_weight: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i < j) of texts with (estimated, or exact if ``verify``) Jaccard >= ``threshold``.

    ``fp_weight`` weighs false positives against false negatives when choosing the LSH bands
    (:func:`lsh_params`); low values favour recall. Returns ``(pairs, similarity)``: int64 (k, 2) and
    float64 (k,), sorted by (i, j).
    """
    hasher = MinHasher(num_perm=num_perm, ngram=ngram, shingle=shingle, seed=seed)
    sh, off = hasher.shingles(texts)
    sig = hasher._signatures_from(sh, off)
    bands, rows = lsh_params(threshold, num_perm, fp_weight)
    pairs = candidate_pairs(sig, bands, rows, max_bucket=max_bucket)
    if len(pairs) == 0:
        return pairs, np.zeros(0)
    est = np.empty(len(pairs), dtype=np.float64)
    for s in range(0, len(pairs), 8192):
        p = pairs[s : s + 8192]
        est[s : s + 8192] = (sig[p[:, 0]] == sig[p[:, 1]]).mean(axis=1)
    if verify:
        # the estimate's std is <= 0.5/sqrt(num_perm): look at everything within 4 std of the threshold
        slack = 2.0 / np.sqrt(num_perm)
        near = est >= threshold - slack
        pairs, est = pairs[near], est[near]
        sim = _exact_jaccard(sh, off, pairs)
    else:
        sim = est
    keep = sim >= threshold
    return pairs[keep], sim[keep]


class DedupResult(NamedTuple):
    """Kept prompts (pool order) and ``removed_id -> kept_id`` of the near-duplicate it was dropped for."""

    kept: list[Prompt]
    removed: dict[str, str]


TextOf = Callable[[Prompt], str] | Literal["first", "all"]


def _text_fn(text: TextOf) -> Callable[[Prompt], str]:
    if callable(text):
        return text
    if text == "first":
        return lambda p: p.text
    if text == "all":
        return lambda p: "\n".join(p.user_turns)
    raise ConfigError(f"dedup text must be 'first', 'all' or a function, got {text!r}")


def dedup_prompts(
    prompts: Iterable[Prompt],
    *,
    threshold: float = 0.7,
    num_perm: int = 128,
    ngram: int = 2,
    shingle: ShingleKind = "word",
    seed: int = 0,
    verify: bool = True,
    text: TextOf = "all",
) -> DedupResult:
    """Remove near-duplicate prompts, keeping the first of each group (see the module doc).

    Args:
        prompts: the pool (order matters: earlier prompts are kept).
        threshold: Jaccard similarity of shingle sets at or above which two prompts are near-duplicates.
        num_perm, ngram, shingle, seed: MinHash settings (:class:`MinHasher`).
        verify: confirm candidate pairs with the exact Jaccard (cheap; avoids MinHash estimation noise).
        text: what is compared: ``"all"`` user turns joined (default), ``"first"`` (:attr:`Prompt.text`),
            or a function of the prompt.

    Returns:
        ``DedupResult(kept, removed)``; unpacks as ``kept, removed = dedup_prompts(...)``.
    """
    pool = list(prompts)
    fn = _text_fn(text)
    pairs, sim = near_duplicate_pairs(
        [fn(p) for p in pool],
        threshold=threshold,
        num_perm=num_perm,
        ngram=ngram,
        shingle=shingle,
        seed=seed,
        verify=verify,
    )
    removed_for = _keep_first(len(pool), pairs, sim)
    kept = [p for i, p in enumerate(pool) if removed_for[i] < 0]
    removed = {pool[i].id: pool[int(removed_for[i])].id for i in np.flatnonzero(removed_for >= 0)}
    return DedupResult(kept, removed)


def _keep_first(n: int, pairs: np.ndarray, sim: np.ndarray) -> np.ndarray:
    """For each text the index of the earlier kept text it duplicates, or -1 if kept."""
    removed_for = np.full(n, -1, dtype=np.int64)
    if len(pairs) == 0:
        return removed_for
    # by j ascending, then similarity descending, then i ascending
    order = np.lexsort((pairs[:, 0], -sim, pairs[:, 1]))
    for i, j in pairs[order]:
        if removed_for[j] >= 0 or removed_for[i] >= 0:
            continue  # j already removed for a more similar kept text / i itself was removed
        removed_for[j] = i
    return removed_for
