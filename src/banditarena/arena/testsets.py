"""``banditarena testset build``: WizardArena-style offline test sets from a prompt pool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from banditarena.errors import ConfigError


def build_testset_cli(
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

    from banditarena.prompts import load_prompts, save_prompts
    from banditarena.prompts.embed import Embedder
    from banditarena.prompts.testset import MarginScorer, build_testset, decontaminate

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
