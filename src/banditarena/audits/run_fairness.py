"""The judge fairness audit of a run directory: counterfactual demographic swaps and self-preference.

``banditarena audit RUN_DIR --fairness`` rebuilds the run's judge from its ``config.yaml``, takes a seeded
sample of the run's judged battles, judges each with its demographic counterfactuals
(:mod:`banditarena.audits.fairness`) and stores every judgment in the run store (``state`` table, keys
``fairness:<judge cache key>``), so a rerun pays only for what is missing. The summary is stored too
(``fairness:summary:<judge>``) and shown by ``banditarena report``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from banditarena.audits.fairness import ATTRIBUTES, StateCache, fairness_audit, self_preference
from banditarena.errors import ConfigError, DataError
from banditarena.judges.base import Judge, JudgeRequest
from banditarena.store import RunStore
from banditarena.types import Generation

SUMMARY_PREFIX = "fairness:summary:"


def judge_of_run(run_dir: str | Path) -> Judge:
    """The judge a run was made with, rebuilt from its ``config.yaml``."""
    from banditarena.config import JudgeConfig, validate
    from banditarena.judges import judge_from_config

    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise DataError(f"{path}: not found; the fairness audit rebuilds the run's judge from it")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: unreadable YAML ({exc})") from exc
    judge_cfg = validate(JudgeConfig, cfg.get("judge") or {}, f"{path}: judge")
    return judge_from_config(judge_cfg, Path(run_dir))


def audit_items(store: RunStore, n_items: int, seed: int) -> list[JudgeRequest]:
    """A seeded sample of ``n_items`` judged battles as (prompt, answer of model_a, answer of model_b)."""
    import numpy as np

    battles = store.battles()
    if battles.empty:
        raise DataError(f"{store.path}: no battles to audit")
    prompts = {p.id: p for p in store.prompts()}
    gens: dict[tuple[str, str], Generation] = {}
    for r in store.generations().itertuples():
        gens[(r.contestant, str(r.prompt_id))] = Generation(r.contestant, str(r.prompt_id), list(r.turns))
    rows = [(r.prompt_id, r.model_a, r.model_b) for r in battles.itertuples()
            if r.prompt_id in prompts and (r.model_a, r.prompt_id) in gens and (r.model_b, r.prompt_id) in gens]
    rows = list(dict.fromkeys(rows))
    if not rows:
        raise DataError(f"{store.path}: no battle has its prompt and both answers stored")
    idx = np.random.default_rng(seed).permutation(len(rows))[: max(1, n_items)]
    return [JudgeRequest(prompts[rows[i][0]], gens[(rows[i][1], rows[i][0])], gens[(rows[i][2], rows[i][0])])
            for i in sorted(idx)]


def run_fairness_audit(run_dir: str | Path, *, n_items: int = 40, seed: int = 0,
                       attributes: Sequence[str] = ATTRIBUTES, judge: Judge | None = None,
                       progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Counterfactual fairness audit of a run's judge (stored, resumable) plus self-preference."""
    unknown = [a for a in attributes if a not in ATTRIBUTES]
    if unknown:
        raise ConfigError(f"fairness attribute '{unknown[0]}' is unknown (known: {', '.join(ATTRIBUTES)})")
    RunStore(run_dir, create=False).close()  # it must exist (a reader says so in one line) ...
    judge = judge or judge_of_run(run_dir)
    store = RunStore(run_dir)  # ... and the audit writes its judgments: the writer's lock
    items = audit_items(store, n_items, seed)
    res = fairness_audit(judge, items, attributes=attributes, seed=seed, cache=StateCache(store), progress=progress)
    jm = store.get_meta("judge_model") or getattr(judge, "model", None)
    if jm:
        cm = json.loads(store.get_meta("contestant_models") or "{}")
        res["self_preference"] = self_preference(store.judgments(), {judge.name: str(jm)}, cm).get(judge.name, {})
    else:
        res["self_preference"] = {}
    store.set_state(SUMMARY_PREFIX + judge.name, res)
    return res


def stored_fairness(store: RunStore) -> list[dict[str, Any]]:
    """Every fairness summary stored in a run (one per audited judge)."""
    rows = store.conn.execute("SELECT key FROM state WHERE key LIKE ? ORDER BY key", (SUMMARY_PREFIX + "%",)).fetchall()
    return [store.get_state(k) for (k,) in rows]


def fairness_section(store: RunStore) -> tuple[str, Any, list[Any]] | None:
    """The report section (heading, table, figures) for the stored fairness audits; None when there is none."""
    from banditarena.audits.fairness import fairness_table

    res = stored_fairness(store)
    if not res:
        return None
    import pandas as pd

    df = fairness_table(res)

    def ci(v: float, lo: float, hi: float, pct: bool) -> str:
        if math.isnan(v):
            return "-"
        return f"{100 * v:.1f}% ({100 * lo:.1f}-{100 * hi:.1f}%)" if pct else f"{v:.3f} ({lo:.3f}-{hi:.3f})"

    df = pd.DataFrame({
        "judge": df["judge"], "attribute": df["attribute"], "items": df["items"], "flips": df["flips"],
        "flip rate (95% CI)": [ci(*r, True) for r in zip(df["flip_rate"], df["flip_ci_low"], df["flip_ci_high"])],
        "mean abs. score shift (95% CI)": [ci(*r, False) for r in zip(df["score_shift"], df["shift_ci_low"],
                                                                    df["shift_ci_high"])],
    })
    return ("Judge fairness audit: counterfactual demographic swaps (flip rate, 95% CI)", df, [])
