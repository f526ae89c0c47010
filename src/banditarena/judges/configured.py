"""Judges a recipe names beyond the LLM/verifier/similarity ones: ``learned``, ``recorded`` and ``cascade``.

Recipe fields (``judge:`` of an arena or flywheel recipe)::

    judge:
      kind: learned
      artifact: default            # default / judge-learned-fast (packaged), or a path prefix (PATH.npz + PATH.json)
      features: [overlap, ...]     # optional: the feature blocks the artifact must have been trained with
      embedder: all-MiniLM-L6-v2   # optional: the embedder it must have been trained with

    judge:
      kind: recorded
      paths: [data:alpaca_eval/annotations_gpt4_turbo]   # AlpacaEval annotation .json files/folders, or
                                                         # FastChat single-answer judgment .jsonl files/folders

    judge:
      kind: cascade
      threshold: 0.62              # from calibration (see docs/judging.md); decide cheaply at confidence >= it
      cheap: {kind: learned}
      expensive: {kind: llm, endpoint: {...}}

The learned judge takes its reference answers from the prompts (``prompts.reference_from`` or a named set
with references, e.g. ``alpaca_eval``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from banditarena.errors import ConfigError
from banditarena.judges.base import Judge
from banditarena.text import expand_files

EXTRA_KINDS = ("learned", "recorded", "cascade")


def _paths(values: list[str], base_dir: Path | None) -> list[Path]:
    from banditarena.paths import resolve_path

    return expand_files([resolve_path(v, base_dir) for v in values], (".json", ".jsonl"), error=ConfigError,
                        empty="judge.paths: no .json or .jsonl judgment files in {path}",
                        missing="judge.paths: {path} does not exist")


def build_configured_judge(cfg: Any, base_dir: Path | None, build: Callable[[Any, Path | None], Judge]) -> Judge:
    """The judge of a recipe ``judge:`` block whose kind is one of :data:`EXTRA_KINDS`. ``build`` builds a
    nested block (a cascade's ``cheap``/``expensive``) of any kind."""
    name = getattr(cfg, "name", None)
    if cfg.kind == "learned":
        from banditarena.judges.learned import LearnedJudge
        from banditarena.paths import resolve_path

        art = getattr(cfg, "artifact", None)
        from banditarena.judges.learned import PACKAGED_ARTIFACTS

        art_path = art if art in (None, "default", *PACKAGED_ARTIFACTS) else resolve_path(art, base_dir)
        return LearnedJudge(art_path, name=name, expect_blocks=getattr(cfg, "features", None),
                            expect_embedder=getattr(cfg, "embedder", None))
    if cfg.kind == "recorded":
        files = _paths(list(getattr(cfg, "paths", None) or []), base_dir)
        if not files:
            raise ConfigError("judge kind 'recorded' needs paths (annotation or judgment files)")
        if all(f.suffix == ".json" for f in files):
            from banditarena.judges.annotations import AnnotationJudge

            return AnnotationJudge(files, **({"name": name} if name else {}))
        if all(f.suffix == ".jsonl" for f in files):
            from banditarena.judges.recorded import RecordedJudge

            return RecordedJudge(files, **({"name": name} if name else {}))
        raise ConfigError("judge.paths: mix of .json (AlpacaEval annotations) and .jsonl (single-answer judgments)")
    if cfg.kind == "cascade":
        from banditarena.judges.cascade import CascadeJudge

        cheap, expensive, threshold = cfg.cheap, cfg.expensive, cfg.threshold
        if cheap is None or expensive is None or threshold is None:
            raise ConfigError("judge kind 'cascade' needs cheap, expensive and threshold")
        return CascadeJudge(build(cheap, base_dir), build(expensive, base_dir), float(threshold), name=name)
    raise ConfigError(f"unknown judge kind '{cfg.kind}'")
