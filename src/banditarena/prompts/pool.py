"""A recipe's prompt pool: load a prompt set, select from it, attach reference answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from banditarena.config import PromptsConfig
from banditarena.errors import ConfigError, DataError
from banditarena.types import Prompt


def load_pool(cfg: PromptsConfig, *, seed: int = 0, base_dir: Path | None = None) -> list[Prompt]:
    """The recipe's prompts: load, select (ids / first / random), attach references."""
    import numpy as np

    from banditarena.paths import resolve_path
    from banditarena.prompts.loaders import load_prompts

    src = cfg.source
    is_path = src.startswith("data:") or src.endswith((".jsonl", ".json", ".parquet")) or "/" in src
    prompts = load_prompts(str(resolve_path(src, base_dir)) if is_path else src)
    if cfg.ids:
        by_id = {p.id: p for p in prompts}
        missing = [i for i in cfg.ids if i not in by_id]
        if missing:
            raise ConfigError(f"prompts.ids: {len(missing)} id(s) not in {src}, e.g. '{missing[0]}'")
        prompts = [by_id[i] for i in cfg.ids]
    if cfg.max_chars is not None:
        n0 = len(prompts)
        prompts = [p for p in prompts if sum(len(t) for t in p.user_turns) <= cfg.max_chars]
        if not prompts:
            raise DataError(f"prompts.max_chars {cfg.max_chars}: none of the {n0} prompts of '{src}' is that short")
    if cfg.limit is not None and cfg.limit < len(prompts):
        if cfg.sample == "random":
            idx = np.sort(np.random.default_rng(seed).choice(len(prompts), cfg.limit, replace=False))
            prompts = [prompts[i] for i in idx]
        else:
            prompts = prompts[: cfg.limit]
    if not prompts:
        raise DataError(f"prompts.source '{src}': the prompt pool is empty")
    if cfg.reference_from:
        prompts = attach_references(prompts, str(resolve_path(cfg.reference_from, base_dir)))
    return prompts


def attach_references(prompts: list[Prompt], answer_file: str) -> list[Prompt]:
    """Set each prompt's ``reference`` to the last-turn answer of a replay file (e.g. gpt-4-0613's)."""
    from banditarena.models.base import ChatRequest
    from banditarena.models.replay import ReplayBackend
    from banditarena.types import Strategy

    rb = ReplayBackend("reference", answer_file)
    reqs = [ChatRequest(p.id, len(p.user_turns) - 1, list(p.messages)) for p in prompts]
    comps = asyncio.run(rb.acomplete(reqs, Strategy()))
    missing = [p.id for p, c in zip(prompts, comps, strict=True) if not c.ok]
    if missing:
        raise DataError(f"{answer_file}: no reference answer for {len(missing)} prompt(s), e.g. '{missing[0]}'")
    for p, c in zip(prompts, comps, strict=True):
        p.reference = c.text
    return prompts


