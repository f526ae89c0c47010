"""Benchmark of banditarena.prompts: MinHash dedup, embeddings, decontamination, k-means.

    .venv/bin/python bench/testset.py [--repeat 3] [--skip-embed] [--cache-dir DIR]

Prints one table. Dedup runs on a ~10k pool made of every prompt in ../shared/data plus planted
near-duplicates (one word replaced), and is compared with datasketch's MinHashLSH (bench peer, see
bench/requirements-prompts.txt) on the same word-bigram shingles, threshold and num_perm. Timings are the
best of --repeat runs (the machine is shared: noisy).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from banditarena.prompts import (
    Embedder,
    decontaminate,
    dedup_prompts,
    kmeans,
    load_prompts,
    nearest_neighbours,
)
from banditarena.types import Prompt

ROWS: list[tuple[str, str, str]] = []


def row(what: str, value: str, note: str = "") -> None:
    ROWS.append((what, value, note))
    print(f"  {what:<52} {value:>14}  {note}", file=sys.stderr, flush=True)


def best(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times)), out


def pool_10k(n_planted: int = 300, seed: int = 0) -> tuple[list[Prompt], dict[str, str]]:
    pool: list[Prompt] = []
    for name in ["gsm8k:train", "gsm8k:test", "arena_hard", "arena_bench_v1", "mt_bench", "vicuna_bench"]:
        for p in load_prompts(name):
            p.id = f"{name}/{p.id}"
            pool.append(p)
    rng = np.random.default_rng(seed)
    planted = {}
    for j, i in enumerate(rng.choice(len(pool), n_planted, replace=False)):
        words = pool[i].text.split()
        if len(words) < 12:
            continue
        words[int(rng.integers(len(words)))] = "zzzz"
        planted[f"planted{j}"] = pool[i].id
        pool.append(Prompt(id=f"planted{j}", messages=[{"role": "user", "content": " ".join(words)}]))
    return pool, planted


def datasketch_dedup(texts: list[str], threshold: float, num_perm: int) -> set[int]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    removed = set()
    word = re.compile(r"\w+")
    for i, t in enumerate(texts):
        w = word.findall(t.lower())
        sh = [" ".join(w[k : k + 2]) for k in range(max(len(w) - 1, 1))]
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch([s.encode() for s in sh])
        if lsh.query(m):
            removed.add(i)
        else:
            lsh.insert(str(i), m)
    return removed


def rubric_section(n: int) -> None:
    """Difficulty rubric judged by the embedded default SmolLM2-135M-Instruct: parse rate and speed."""
    from banditarena.models.local import LocalBackend
    from banditarena.prompts import RubricScorer
    from banditarena.types import Strategy

    pool = load_prompts("vicuna_bench")[: n // 2] + load_prompts("arena_hard")[: n - n // 2]
    scorer = RubricScorer(LocalBackend(), Strategy(name="rubric", temperature=0.0, max_tokens=96))
    t0 = time.perf_counter()
    ds = scorer.score(pool)
    dt = time.perf_counter() - t0
    retried = sum(
        1 for d in ds.details.values() if d.get("attempts", 1) > 1 and not isinstance(d.get("raw"), list)
    )
    row(
        f"rubric on SmolLM2-135M, {len(pool)} prompts: parsed",
        f"{len(ds.scores)}/{len(pool)}",
        f"{dt:.0f} s; {retried} parsed on the retry; excluded {ds.summary()['excluded_by_reason']}",
    )
    if ds.scores:
        v = np.array(list(ds.scores.values()))
        row("  difficulty mean / min / max", f"{v.mean():.1f}", f"{v.min():.0f} / {v.max():.0f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-embed", action="store_true", help="only the model-free parts")
    ap.add_argument("--cache-dir", default=None, help="embedding cache for the decontamination part")
    ap.add_argument("--n-cold", type=int, default=300, help="texts for the cold MiniLM throughput")
    ap.add_argument(
        "--rubric", type=int, default=0, help="also score N prompts with the rubric on SmolLM2 (local)"
    )
    args = ap.parse_args()

    # ---------------------------------------------------------------- dedup
    pool, planted = pool_10k()
    texts = ["\n".join(p.user_turns) for p in pool]
    row("dedup pool size", f"{len(pool)}", f"{len(planted)} planted near-duplicates")
    tb, tm, res = best(lambda: dedup_prompts(pool, threshold=0.7, num_perm=128), args.repeat)
    found = sum(1 for k in planted if k in res.removed)
    row(
        "banditarena dedup_prompts (verify=True) s",
        f"{tb:.2f}",
        f"median {tm:.2f}; removed {len(res.removed)}",
    )
    row("  planted recall", f"{found}/{len(planted)}")
    tb2, tm2, res2 = best(lambda: dedup_prompts(pool, threshold=0.7, num_perm=128, verify=False), args.repeat)
    row(
        "banditarena dedup_prompts (verify=False) s",
        f"{tb2:.2f}",
        f"median {tm2:.2f}; removed {len(res2.removed)}",
    )
    pool20 = pool + [
        Prompt(id=f"x{p.id}", messages=[{"role": "user", "content": p.text + " Answer briefly."}])
        for p in pool
    ]
    tb3, _tm3, res3 = best(lambda: dedup_prompts(pool20, threshold=0.7), max(1, args.repeat - 1))
    row("banditarena dedup 20k (10k + suffixed copies) s", f"{tb3:.2f}", f"removed {len(res3.removed)}")
    try:
        tds, _tdm, rem = best(lambda: datasketch_dedup(texts, 0.7, 128), 1)
        ours = {i for i, p in enumerate(pool) if p.id in res.removed}
        found_ds = sum(1 for i, p in enumerate(pool) if p.id in planted and i in rem)
        row(
            "datasketch 2.0.0 MinHashLSH (same shingles) s",
            f"{tds:.2f}",
            f"removed {len(rem)}; planted {found_ds}/{len(planted)}; overlap with ours {len(rem & ours)}",
        )
    except ImportError:
        row("datasketch", "not installed", "pip install -r bench/requirements-prompts.txt")

    if args.rubric:
        rubric_section(args.rubric)
    if args.skip_embed:
        _print()
        return

    # ---------------------------------------------------------------- embeddings
    load1 = os.getloadavg()[0]
    cold = Embedder(cache_dir=tempfile.mkdtemp(prefix="ba-emb-cold-"))
    t0 = time.perf_counter()
    cold.encode(["warm up"])
    row(
        "MiniLM load s",
        f"{time.perf_counter() - t0:.2f}",
        f"load average {load1:.1f} on {os.cpu_count()} cores",
    )
    short = [p.text for p in load_prompts("gsm8k:test")][: args.n_cold]
    tb, tm, E_test = best(
        lambda: Embedder(cache_dir=tempfile.mkdtemp(prefix="ba-emb-cold-")).encode(short), args.repeat
    )
    row(
        f"MiniLM encode gsm8k:test[:{len(short)}] cold, texts/s",
        f"{len(short) / tb:.0f}",
        f"best {tb:.1f} s, median {tm:.1f} s; load average {os.getloadavg()[0]:.1f}",
    )
    cache = args.cache_dir or tempfile.mkdtemp(prefix="ba-emb-")
    Embedder(cache_dir=cache).encode(short)
    emb2 = Embedder(cache_dir=cache)
    tb, tm, E_again = best(lambda: emb2.encode(short), args.repeat)
    row(
        "  same texts again, fresh Embedder + disk cache s",
        f"{tb:.3f}",
        f"model calls {emb2.n_encoded}; equal {np.allclose(E_test, E_again, atol=1e-6)}",
    )

    emb = Embedder(cache_dir=cache)
    train = load_prompts("gsm8k:train")
    test = load_prompts("gsm8k:test")
    t0 = time.perf_counter()
    _, removed = decontaminate(train, test, emb, threshold=0.9)
    row(
        "decontaminate gsm8k:train vs gsm8k:test s",
        f"{time.perf_counter() - t0:.1f}",
        f"{len(removed)} removed at cos>=0.9; {emb.n_encoded} texts embedded, {emb.n_cached} from cache",
    )
    tb, tm, _ = best(lambda: decontaminate(train, test, emb, threshold=0.9), args.repeat)
    row("  again (all embeddings cached) s", f"{tb:.2f}", f"median {tm:.2f}")
    A, B = emb.encode_prompts(train), emb.encode_prompts(test)
    tb, tm, (j, cos) = best(lambda: nearest_neighbours(A, B), args.repeat)
    row("  nearest-neighbour search only (7473 x 1319) s", f"{tb:.3f}", f"median {tm:.3f}")
    top = int(np.argmax(cos))
    row(
        "  highest train->test cosine",
        f"{cos[top]:.3f}",
        f"{train[top].id} ~ {test[int(j[top])].id}; >=0.8: {int((cos >= 0.8).sum())}, >=0.85: {int((cos >= 0.85).sum())}",
    )

    ah = load_prompts("arena_hard")
    X = emb.encode([p.text for p in ah])
    tb, tm, cres = best(lambda: kmeans(X, 50, seed=0), args.repeat)
    row("k-means arena_hard (500 x 384, k=50) s", f"{tb:.2f}", f"median {tm:.2f}; inertia {cres.inertia:.1f}")
    _print()


def _print() -> None:
    print()
    print(f"| {'what':<52} | {'value':>14} | note")
    print(f"|{'-' * 54}|{'-' * 16}|------")
    for what, value, note in ROWS:
        print(f"| {what:<52} | {value:>14} | {note}")


if __name__ == "__main__":
    main()
