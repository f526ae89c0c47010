"""Offline test sets, WizardArena style: Offline-Diverse, Offline-Hard, and decontamination.

Offline-Diverse (:func:`offline_diverse`)
    The pool is embedded and clustered with k-means; from every cluster we take ``per_cluster`` prompts.
    ``method="centroid"`` (default, as WizardArena) takes the prompts nearest the cluster centroid, the most
    typical prompts of each topic; ``method="random"`` draws them uniformly within the cluster (seeded).
    ``n_clusters=None`` uses the clusters already in ``Prompt.cluster`` (e.g. Arena-Hard's topics).

Offline-Hard (:func:`offline_hard`)
    The ``n`` prompts with the highest difficulty score. Scores come from a scorer:

    * :class:`RubricScorer`: an LLM (any :class:`~banditarena.models.base.Backend`) rates each prompt 1-10
      on our rubric (specificity, domain knowledge, complexity, problem solving, creativity, precision,
      real-world stakes) and ends with ``Difficulty: N``. Output that cannot be parsed is retried once with
      a reminder of the format; still unparsable (or a failed request) -> the prompt is excluded, counted,
      and its raw output kept in ``details``.
    * :class:`MarginScorer`: observed battles (columns ``prompt_id, model_a, model_b, winner, margin``).
      ``mode="decisive"`` (default): difficulty = mean |margin| over the prompt's valid battles, i.e. the
      prompts whose judged answers differ most - those that *separate* strong models from weak ones, the
      property Arena-Hard-Auto selects for. ``mode="contested"``: difficulty = -mean |margin|, the prompts
      whose battles are closest (ties and near-ties). Battles with no winner (invalid) are ignored;
      without a ``margin`` column the margin is +1 / -1 / 0 from the winner.
    * a mapping ``prompt_id -> score`` or a :class:`DifficultyScores`.

    Ties in score are broken by pool order.

Decontamination (:func:`decontaminate`)
    Drops training prompts whose nearest test prompt (cosine of normalised embeddings, computed in chunks)
    is at or above ``threshold``, reporting that test id and cosine.

Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

import numpy as np

from banditarena.errors import ConfigError, DataError
from banditarena.paths import write_text_atomic
from banditarena.prompts.cluster import kmeans
from banditarena.prompts.embed import embedder_identity
from banditarena.types import Prompt

# ------------------------------------------------------------------------------------------ helpers


def _copy(p: Prompt, **testset_meta: Any) -> Prompt:
    q = copy.deepcopy(p)
    q.meta["testset"] = {**q.meta.get("testset", {}), **testset_meta}
    return q


def _encode(embedder: Any, prompts: Sequence[Prompt]) -> np.ndarray:
    if embedder is None:
        raise ConfigError("an embedder is needed (e.g. banditarena.prompts.Embedder())")
    X = np.asarray(embedder.encode([p.text for p in prompts]), dtype=np.float32)
    if X.shape[0] != len(prompts):
        raise ConfigError(f"embedder returned {X.shape[0]} rows for {len(prompts)} prompts")
    return X


def _check_unique_ids(prompts: Sequence[Prompt], what: str) -> None:
    seen: set[str] = set()
    for p in prompts:
        if p.id in seen:
            raise DataError(f"{what}: duplicate prompt id '{p.id}'")
        seen.add(p.id)


# ---------------------------------------------------------------------------------------- diverse


def offline_diverse(
    prompts: Sequence[Prompt],
    n_clusters: int | None,
    per_cluster: int,
    embedder: Any = None,
    seed: int = 0,
    *,
    method: Literal["centroid", "random"] = "centroid",
    limit: int | None = None,
) -> list[Prompt]:
    """A few prompts from every cluster of the pool (see the module doc).

    Args:
        prompts: the pool.
        n_clusters: k for k-means, or None to use the existing ``Prompt.cluster`` labels.
        per_cluster: prompts taken per cluster (a smaller cluster gives all it has).
        embedder: anything with ``encode(texts) -> (n, d)`` (needed unless ``n_clusters`` is None and
            ``method="random"``).
        seed: seeds k-means and the random draws.
        method: ``"centroid"`` (nearest the centroid) or ``"random"``.
        limit: keep at most this many: the rank-0 pick of every cluster first, then rank 1, ...

    Returns:
        Copies of the chosen prompts ordered by cluster, then rank. Each has ``meta["testset"]`` =
        ``{"subset": "diverse", "cluster", "rank", "distance"}``; a prompt without a cluster gets the
        k-means label (as str) in ``Prompt.cluster``.
    """
    pool = list(prompts)
    if per_cluster < 1:
        raise ConfigError(f"per_cluster must be >= 1, got {per_cluster}")
    if method not in ("centroid", "random"):
        raise ConfigError(f"diverse method must be 'centroid' or 'random', got {method!r}")
    if not pool:
        return []
    _check_unique_ids(pool, "offline_diverse")
    rng = np.random.default_rng(seed)
    X: np.ndarray | None = None
    if n_clusters is None:
        missing = [p.id for p in pool if p.cluster is None]
        if missing:
            raise ConfigError(
                f"n_clusters=None needs Prompt.cluster on every prompt; {len(missing)} have none (e.g. '{missing[0]}')"
            )
        names = sorted({str(p.cluster) for p in pool})
        index = {c: i for i, c in enumerate(names)}
        labels = np.array([index[str(p.cluster)] for p in pool], dtype=np.int64)
        if method == "centroid":
            X = _encode(embedder, pool)
            cents = np.zeros((len(names), X.shape[1]), dtype=np.float32)
            np.add.at(cents, labels, X)
            cents /= np.bincount(labels, minlength=len(names))[:, None]
            dist = np.linalg.norm(X - cents[labels], axis=1)
        else:
            dist = np.zeros(len(pool))
        label_names = names
    else:
        X = _encode(embedder, pool)
        res = kmeans(X, int(n_clusters), seed=seed)
        labels, dist = res.labels, res.distances
        label_names = [str(i) for i in range(res.k)]

    picks: list[tuple[int, int, int, float]] = []  # (rank, cluster, index, distance)
    for c in range(len(label_names)):
        idx = np.flatnonzero(labels == c)
        if idx.size == 0:
            continue
        if method == "centroid":
            idx = idx[np.lexsort((idx, dist[idx]))]
        else:
            idx = rng.permutation(idx)
        for r, i in enumerate(idx[:per_cluster]):
            picks.append((r, c, int(i), float(dist[i])))
    if limit is not None:
        picks = sorted(picks)[: max(0, int(limit))]
    picks.sort(key=lambda t: (t[1], t[0]))
    out = []
    for r, c, i, d in picks:
        q = _copy(
            pool[i], subset="diverse", cluster=label_names[c], rank=r, distance=round(d, 6), method=method
        )
        if q.cluster is None:
            q.cluster = label_names[c]
        out.append(q)
    return out


# ------------------------------------------------------------------------------------------- hard


@dataclass
class DifficultyScores:
    """Difficulty per prompt id; ``excluded`` maps ids that could not be scored to the reason."""

    scores: dict[str, float]
    excluded: dict[str, str] = field(default_factory=dict)
    method: str = "given"
    details: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Counts for a manifest: scored, excluded (and by reason)."""
        reasons: dict[str, int] = {}
        for r in self.excluded.values():
            key = r.split(":", 1)[0]
            reasons[key] = reasons.get(key, 0) + 1
        return {
            "method": self.method,
            "scored": len(self.scores),
            "excluded": len(self.excluded),
            "excluded_by_reason": reasons,
        }


@runtime_checkable
class DifficultyScorer(Protocol):
    """Anything that scores prompts: ``score(prompts) -> DifficultyScores``."""

    def score(self, prompts: Sequence[Prompt]) -> DifficultyScores: ...


class MarginScorer:
    """Difficulty from observed battle margins (see the module doc for the two modes).

    Args:
        battles: a DataFrame (or anything ``pandas.DataFrame`` accepts) with columns ``prompt_id``,
            ``model_a``, ``model_b``, ``winner`` (``model_a``/``model_b``/``tie``; missing = invalid) and
            optionally ``margin`` (score of model_a minus model_b).
        mode: ``"decisive"`` or ``"contested"``.
        min_battles: prompts with fewer valid battles are excluded.
    """

    REQUIRED = ("prompt_id", "model_a", "model_b", "winner")

    def __init__(
        self, battles: Any, *, mode: Literal["decisive", "contested"] = "decisive", min_battles: int = 1
    ):
        import pandas as pd

        if mode not in ("decisive", "contested"):
            raise ConfigError(f"margin mode must be 'decisive' or 'contested', got {mode!r}")
        if min_battles < 1:
            raise ConfigError(f"min_battles must be >= 1, got {min_battles}")
        df = battles if isinstance(battles, pd.DataFrame) else pd.DataFrame(battles)
        missing = [c for c in self.REQUIRED if c not in df.columns]
        if missing:
            raise DataError(f"battles table lacks column(s) {missing} (has {list(df.columns)})")
        self.battles = df
        self.mode = mode
        self.min_battles = int(min_battles)

    @property
    def method(self) -> str:
        return f"margins:{self.mode}"

    def table(self) -> Any:
        """Per-prompt statistics: n_battles, mean_abs_margin, mean_margin, tie_rate, difficulty."""
        import pandas as pd

        df = self.battles
        valid = df[df["winner"].isin(["model_a", "model_b", "tie"])].copy()
        if "margin" in valid.columns:
            m = pd.to_numeric(valid["margin"], errors="coerce")
            sign = valid["winner"].map({"model_a": 1.0, "model_b": -1.0, "tie": 0.0})
            valid["m"] = m.where(m.notna(), sign)  # a missing margin falls back to the winner's sign
        else:
            valid["m"] = valid["winner"].map({"model_a": 1.0, "model_b": -1.0, "tie": 0.0})
        valid["abs_m"] = valid["m"].abs()
        valid["is_tie"] = valid["winner"] == "tie"
        valid["prompt_id"] = valid["prompt_id"].astype(str)
        g = valid.groupby("prompt_id", sort=False)
        t = pd.DataFrame(
            {
                "n_battles": g.size(),
                "mean_abs_margin": g["abs_m"].mean(),
                "mean_margin": g["m"].mean(),
                "tie_rate": g["is_tie"].mean(),
            }
        )
        t["difficulty"] = t["mean_abs_margin"] if self.mode == "decisive" else -t["mean_abs_margin"]
        return t

    def score(self, prompts: Sequence[Prompt]) -> DifficultyScores:
        """Difficulty of each prompt from its battles; prompts with too few battles are excluded."""
        t = self.table()
        out = DifficultyScores(scores={}, method=self.method)
        for p in prompts:
            if p.id not in t.index:
                out.excluded[p.id] = "no battles"
                continue
            row = t.loc[p.id]
            n = int(row["n_battles"])
            if n < self.min_battles:
                out.excluded[p.id] = f"too few battles: {n} < {self.min_battles}"
                continue
            out.scores[p.id] = float(row["difficulty"])
            out.details[p.id] = {
                k: float(row[k]) for k in ("n_battles", "mean_abs_margin", "mean_margin", "tie_rate")
            }
        return out


ScorerLike = DifficultyScorer | DifficultyScores | Mapping[str, float]


def score_difficulty(prompts: Sequence[Prompt], scorer: ScorerLike) -> DifficultyScores:
    """Run any scorer-like object (scorer, ready scores, or an id -> score mapping) on ``prompts``."""
    if isinstance(scorer, DifficultyScores):
        return scorer
    if isinstance(scorer, Mapping):
        scores = {p.id: float(scorer[p.id]) for p in prompts if p.id in scorer and scorer[p.id] is not None}
        excluded = {p.id: "no score" for p in prompts if p.id not in scores}
        return DifficultyScores(scores=scores, excluded=excluded, method="given")
    if hasattr(scorer, "score"):
        return scorer.score(list(prompts))
    raise ConfigError(f"not a difficulty scorer: {type(scorer).__name__} (need .score(prompts) or a mapping)")


def offline_hard(prompts: Sequence[Prompt], n: int, scorer: ScorerLike) -> list[Prompt]:
    """The ``n`` prompts with the highest difficulty (ties: pool order).

    Unscorable prompts (``DifficultyScores.excluded``) are never chosen. Returns copies with
    ``meta["testset"] = {"subset": "hard", "difficulty", "method"}``, hardest first.
    """
    if n < 0:
        raise ConfigError(f"n_hard must be >= 0, got {n}")
    pool = list(prompts)
    _check_unique_ids(pool, "offline_hard")
    ds = score_difficulty(pool, scorer)
    ranked = [(-ds.scores[p.id], i) for i, p in enumerate(pool) if p.id in ds.scores]
    ranked.sort()
    out = []
    for neg, i in ranked[:n]:
        out.append(_copy(pool[i], subset="hard", difficulty=-neg, method=ds.method))
    return out


# ---------------------------------------------------------------------------------------- build


class TestSet(NamedTuple):
    """A built test set: the prompts (diverse first, then hard) and a JSON-able manifest."""

    __test__ = False  # not a pytest test class despite the name

    prompts: list[Prompt]
    manifest: dict[str, Any]


def build_testset(
    pool: Sequence[Prompt],
    n_diverse: int,
    per_cluster: int,
    n_hard: int,
    *,
    embedder: Any = None,
    scorer: ScorerLike | None = None,
    seed: int = 0,
    n_clusters: int | None = None,
    use_existing_clusters: bool = False,
    diverse_method: Literal["centroid", "random"] = "centroid",
    dedup: bool = True,
    dedup_threshold: float = 0.7,
) -> TestSet:
    """Build an Offline-Diverse + Offline-Hard test set from a pool.

    Steps: MinHash near-duplicate removal (if ``dedup``); ``n_diverse`` prompts from
    ``ceil(n_diverse / per_cluster)`` k-means clusters (or ``n_clusters``, or the existing clusters with
    ``use_existing_clusters``); then the ``n_hard`` hardest of the remaining prompts by ``scorer``. The two
    parts never overlap.

    Returns:
        ``TestSet(prompts, manifest)``; the manifest holds the counts, methods, seed and chosen ids.
    """
    from banditarena import __version__
    from banditarena.prompts.dedup import dedup_prompts

    if n_diverse < 0 or n_hard < 0:
        raise ConfigError(f"n_diverse and n_hard must be >= 0, got {n_diverse} and {n_hard}")
    if n_hard > 0 and scorer is None:
        raise ConfigError("n_hard > 0 needs a scorer (RubricScorer, MarginScorer or a mapping of scores)")
    work = list(pool)
    if not work:
        raise DataError("cannot build a test set from an empty prompt pool")
    _check_unique_ids(work, "build_testset")
    manifest: dict[str, Any] = {"pool_size": len(work), "seed": seed, "banditarena": __version__}
    if dedup:
        res = dedup_prompts(work, threshold=dedup_threshold, seed=seed)
        work = res.kept
        manifest["dedup"] = {"method": "minhash", "threshold": dedup_threshold, "removed": len(res.removed)}
    manifest["pool_after_dedup"] = len(work)

    diverse: list[Prompt] = []
    if n_diverse > 0:
        k = None if use_existing_clusters else (n_clusters or math.ceil(n_diverse / per_cluster))
        if k is not None:
            k = min(k, len(work))
        diverse = offline_diverse(
            work, k, per_cluster, embedder, seed, method=diverse_method, limit=n_diverse
        )
        manifest["diverse"] = {
            "n": len(diverse),
            "n_clusters": len({q.meta["testset"]["cluster"] for q in diverse}) if k is None else k,
            "clusters": "existing" if k is None else "kmeans",
            "per_cluster": per_cluster,
            "method": diverse_method,
            "embedder": embedder_identity(embedder) if embedder is not None else None,
            "ids": [q.id for q in diverse],
        }
    taken = {q.id for q in diverse}
    hard: list[Prompt] = []
    if n_hard > 0:
        rest = [p for p in work if p.id not in taken]
        assert scorer is not None
        ds = score_difficulty(rest, scorer)
        hard = offline_hard(rest, n_hard, ds)
        manifest["hard"] = {
            **ds.summary(),
            "n": len(hard),
            "ids": [q.id for q in hard],
            "min_difficulty": min((q.meta["testset"]["difficulty"] for q in hard), default=None),
        }
    prompts = diverse + hard
    manifest["n_prompts"] = len(prompts)
    return TestSet(prompts, manifest)


def save_testset(
    testset: TestSet | tuple[list[Prompt], dict[str, Any]], out_dir: str | os.PathLike[str]
) -> Path:
    """Write ``prompts.jsonl`` and ``manifest.json`` into ``out_dir`` (returns the prompts file path)."""
    from banditarena.prompts.loaders import save_prompts

    prompts, manifest = testset
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = save_prompts(prompts, out / "prompts.jsonl")
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n")
    return path


# --------------------------------------------------------------------------------- decontamination


@dataclass
class Contaminated:
    """A training prompt removed for being too close to a test prompt."""

    prompt: Prompt
    test_id: str
    cosine: float


class DecontamResult(NamedTuple):
    kept: list[Prompt]
    removed: list[Contaminated]


def nearest_neighbours(
    queries: np.ndarray, keys: np.ndarray, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the index of the most similar key row and the dot product (cosine if normalised).

    Computed in chunks of ``chunk`` queries, so memory stays at ``chunk x len(keys)`` floats.
    """
    Q = np.asarray(queries, dtype=np.float32)
    K = np.asarray(keys, dtype=np.float32)
    idx = np.zeros(Q.shape[0], dtype=np.int64)
    sim = np.full(Q.shape[0], -np.inf, dtype=np.float32)
    if K.shape[0] == 0 or Q.shape[0] == 0:
        return idx, sim
    for s in range(0, Q.shape[0], chunk):
        S = Q[s : s + chunk] @ K.T
        j = np.argmax(S, axis=1)
        idx[s : s + chunk] = j
        sim[s : s + chunk] = S[np.arange(S.shape[0]), j]
    return idx, sim


def decontaminate(
    train: Iterable[Prompt],
    test: Iterable[Prompt],
    embedder: Any,
    threshold: float = 0.9,
    *,
    chunk: int = 4096,
) -> DecontamResult:
    """Remove training prompts whose nearest test prompt has cosine >= ``threshold``.

    Both sides are embedded by :attr:`Prompt.text` with ``embedder`` (rows are re-normalised, so any
    encoder works). Returns ``DecontamResult(kept, removed)``; each removed entry names the nearest test
    prompt and the cosine. Kept prompts stay in their order.
    """
    if not -1.0 <= threshold <= 1.0:
        raise ConfigError(f"decontamination threshold must be a cosine in [-1, 1], got {threshold}")
    tr, te = list(train), list(test)
    if not tr or not te:
        return DecontamResult(tr, [])

    def norm(X: np.ndarray) -> np.ndarray:
        n = np.linalg.norm(X, axis=1, keepdims=True)
        return X / np.maximum(n, 1e-12)

    A = norm(_encode(embedder, tr))
    B = norm(_encode(embedder, te))
    j, cos = nearest_neighbours(A, B, chunk=chunk)
    kept, removed = [], []
    for p, jj, c in zip(tr, j, cos):
        if c >= threshold:
            removed.append(Contaminated(prompt=p, test_id=te[int(jj)].id, cosine=float(c)))
        else:
            kept.append(p)
    return DecontamResult(kept, removed)


def build_testset_files(
    source: str,
    out: Path,
    *,
    n_clusters: int = 20,
    per_cluster: int = 2,
    n_hard: int = 0,
    hard_from: Path | None = None,
    dedup_threshold: float = 0.8,
    decontaminate_against: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Load, dedup, embed, cluster; pick Offline-Diverse (+ Offline-Hard by observed battle margins).

    Writes ``out`` (JSONL prompts) and ``out``'s ``.manifest.json`` beside it; returns the manifest.
    """
    import json

    from banditarena.models.embed import Embedder
    from banditarena.prompts.loaders import load_prompts, save_prompts

    if n_hard > 0 and hard_from is None:
        raise ConfigError("--n-hard needs --hard-from RUN_DIR (battle margins score difficulty)")
    pool = load_prompts(source)
    from banditarena.models.hub import cache_dir

    embedder = Embedder(cache_dir=cache_dir() / "embeddings")
    manifest_extra: dict[str, Any] = {"source": source}
    if decontaminate_against:
        test = load_prompts(decontaminate_against)
        res = decontaminate(pool, test, embedder)
        pool = res.kept
        manifest_extra["decontaminated_against"] = {"source": decontaminate_against, "removed": len(res.removed)}
    scorer = None
    if n_hard > 0 and hard_from is not None:
        from banditarena.store import RunStore

        scorer = MarginScorer(RunStore(hard_from, create=False).battles(valid_only=True))
    ts = build_testset(pool, n_clusters * per_cluster, per_cluster, n_hard, embedder=embedder, scorer=scorer, seed=seed,
                       n_clusters=n_clusters, dedup_threshold=dedup_threshold)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_prompts(ts.prompts, out)
    manifest = {**manifest_extra, **ts.manifest, "out": str(out)}
    manifest.pop("ids", None)
    out.with_suffix(".manifest.json").write_text(json.dumps({**manifest_extra, **ts.manifest}, indent=2, default=str))
    return manifest
