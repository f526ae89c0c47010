"""MinHash near-duplicate removal."""

from __future__ import annotations

import numpy as np
import pytest

from banditarena.errors import ConfigError
from banditarena.paths import data_file
from banditarena.prompts import MinHasher, dedup_prompts, load_prompts, lsh_params, near_duplicate_pairs
from banditarena.prompts.dedup import candidate_pairs
from banditarena.types import Prompt


def P(i: str, text: str) -> Prompt:
    return Prompt(id=i, messages=[{"role": "user", "content": text}])


BASE = [
    "How can I improve my time management skills when working from home with small children?",
    "Write a Python function that returns the n-th Fibonacci number using memoisation and explain it.",
    "Explain the difference between TCP and UDP, with examples of applications that use each protocol.",
    "Compose a short poem about the sea at night, in the style of Emily Dickinson, with a slant rhyme.",
    "What were the main causes of the French Revolution and how did they interact with each other?",
    "Give me a recipe for a vegetarian lasagna that can be prepared the evening before a dinner party.",
]


def planted_pool() -> tuple[list[Prompt], dict[str, str]]:
    """Six distinct prompts plus near-duplicates: case/punctuation changes, one word edited, a copy."""
    pool = [P(f"b{i}", t) for i, t in enumerate(BASE)]
    dups = {
        "d0": ("b0", BASE[0].upper().replace("?", "!!")),  # case + punctuation only
        "d1": ("b1", BASE[1].replace("memoisation", "memoization")),  # one word edited
        "d2": ("b2", BASE[2] + " "),  # exact copy modulo whitespace
        "d3": ("b3", "  " + BASE[3].replace("short", "brief")),
    }
    pool += [P(k, t) for k, (_, t) in dups.items()]
    return pool, {k: v for k, (v, _) in dups.items()}


def test_finds_planted_near_duplicates_and_keeps_distinct():
    pool, expected = planted_pool()
    kept, removed = dedup_prompts(pool, threshold=0.7, seed=0)
    assert removed == expected
    assert [p.id for p in kept] == [f"b{i}" for i in range(len(BASE))]


def test_keep_first_maps_to_a_kept_similar_prompt():
    # a chain a ~ b ~ c where a and c are not similar: c must not be mapped to a removed prompt
    words = [f"w{i}" for i in range(40)]
    a = " ".join(words)
    b = " ".join(words[:34] + [f"x{i}" for i in range(6)])
    c = " ".join(words[:28] + [f"x{i}" for i in range(6)] + [f"y{i}" for i in range(6)])
    kept, removed = dedup_prompts([P("a", a), P("b", b), P("c", c)], threshold=0.7)
    assert removed["b"] == "a"
    assert set(removed.values()) <= {p.id for p in kept}


def test_deterministic_and_seed_controls_signatures():
    texts = [p.text for p in planted_pool()[0]]
    s1 = MinHasher(seed=3).signatures(texts)
    s2 = MinHasher(seed=3).signatures(texts)
    s3 = MinHasher(seed=4).signatures(texts)
    assert s1.dtype == np.uint32 and s1.shape == (len(texts), 128)
    assert np.array_equal(s1, s2) and not np.array_equal(s1, s3)


def test_signature_agreement_estimates_jaccard():
    rng = np.random.default_rng(0)
    vocab = [f"tok{i}" for i in range(500)]
    base = list(rng.choice(vocab, 300))
    other = base[:200] + list(rng.choice(vocab, 100))
    h = MinHasher(num_perm=256, ngram=1, seed=0)
    sh, off = h.shingles([" ".join(base), " ".join(other)])
    a, b = set(sh[off[0] : off[1]].tolist()), set(sh[off[1] : off[2]].tolist())
    exact = len(a & b) / len(a | b)
    sig = h.signatures([" ".join(base), " ".join(other)])
    est = float((sig[0] == sig[1]).mean())
    assert abs(est - exact) < 0.1


def test_char_shingles_and_short_texts():
    pool = [P("a", "hi"), P("b", "Hi!"), P("c", "hello world"), P("d", "hello world."), P("e", "")]
    _kept, removed = dedup_prompts(pool, shingle="char", ngram=3, threshold=0.8)
    assert removed == {"b": "a", "d": "c"}
    pairs, sims = near_duplicate_pairs(["a b", "a b", "c"], ngram=5)  # shorter than the n-gram
    assert pairs.tolist() == [[0, 1]] and sims.tolist() == [1.0]


def test_lsh_params_and_candidate_pairs():
    b, r = lsh_params(0.7, 128)
    assert b * r <= 128
    s = 1 - (1 - 0.9**r) ** b  # a 0.9-similar pair is almost surely a candidate
    assert s > 0.99 and 1 - (1 - 0.3**r) ** b < 0.05
    sig = np.array([[1, 2, 3, 4], [1, 2, 9, 9], [7, 7, 3, 4], [5, 6, 7, 8]], dtype=np.uint32)
    assert candidate_pairs(sig, 2, 2).tolist() == [[0, 1], [0, 2]]
    with pytest.raises(ConfigError):
        lsh_params(1.5, 128)
    with pytest.raises(ConfigError):
        MinHasher(shingle="byte")  # type: ignore[arg-type]


@pytest.mark.skipif(not (data_file("gsm8k/test.jsonl")).exists(), reason="shared data not found: gsm8k/test.jsonl")
def test_real_pool_with_planted_copies_is_fast_and_exact():
    import time

    pool = load_prompts("gsm8k:test")
    rng = np.random.default_rng(1)
    src = rng.choice(len(pool), 50, replace=False)
    planted = {}
    for j, i in enumerate(src):
        words = pool[i].text.split()
        words[len(words) // 2] = "zzz"  # one word replaced in the middle
        planted[f"copy{j}"] = pool[i].id
        pool.append(P(f"copy{j}", " ".join(words)))
    t0 = time.perf_counter()
    kept, removed = dedup_prompts(pool)
    assert time.perf_counter() - t0 < 20  # generous: the benchmark measures the real speed
    for cid, orig in planted.items():
        assert cid in removed
        if orig not in removed:
            assert removed[cid] == orig
    assert len(kept) + len(removed) == len(pool)
    assert len(removed) < 60  # only the planted copies and a handful of real near-duplicates
