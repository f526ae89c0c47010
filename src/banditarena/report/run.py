"""Run-level views of a run directory: the judge bias audit and the HTML report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from banditarena.errors import DataError
from banditarena.store import RunStore

if TYPE_CHECKING:
    import pandas as pd


def run_audit(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Bias audit of every judge in a run: position flips, first-position win rate, length bias, invalid rate."""
    from banditarena.audits import bias_audit

    store = RunStore(run_dir, create=False)
    judgments = store.judgments()
    if judgments.empty:
        raise DataError(f"{store.path}: no judgments to audit")
    judge_model = store.get_meta("judge_model")
    judge_name = store.get_meta("judge")
    judge_models = {judge_name: judge_model} if judge_name and judge_model else None
    contestant_models = json.loads(store.get_meta("contestant_models") or "{}")
    return bias_audit(judgments, store.generations(), judge_models=judge_models, contestant_models=contestant_models)


def audit_for_report(audit: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Map the audit's measure names onto the report's keys (keeping the rest as extra columns)."""
    out = {}
    for judge, a in audit.items():
        bins = a.get("length_bins")
        out[judge] = {
            "n_pairs": a.get("n_pairs"),
            "position_flip_rate": a.get("position_bias_rate"),
            "first_position_win_rate": a.get("first_win_rate"),
            "length_bias_slope": a.get("length_slope"),
            "length_bias_ci": a.get("length_slope_ci"),
            "length_bins": bins,
            "invalid_rate": a.get("invalid_rate"),
            "longer_win_rate": a.get("longer_win_rate"),
            "tie_rate": a.get("tie_rate"),
        }
    return out


def write_run_report(run_dir: str | Path, *, bootstrap: int = 100, seed: int = 0, tag: str | None = None,
                     title: str | None = None, sections: list[Any] | None = None) -> Path:
    """``report.html`` for a run: leaderboard with CIs, CI plot, win-rate heatmap, bias audit."""
    from banditarena.arena.style import leaderboard_with_style
    from banditarena.ratings import win_rate_matrix
    from banditarena.report import write_report

    store = RunStore(run_dir, create=False)
    lb = style_columns_for_report(leaderboard_with_style(store, tag=tag, bootstrap=bootstrap, seed=seed))
    battles = store.battles(tag, valid_only=True)
    wr = win_rate_matrix(battles[["model_a", "model_b", "winner"]])
    audit = audit_for_report(run_audit(run_dir))
    counts = store.counts()
    meta = {
        "run directory": str(Path(run_dir).resolve()),
        "recipe": store.get_meta("recipe_name") or "-",
        "judge": store.get_meta("judge") or "-",
        "battles": counts["battles"],
        "invalid battles": counts["invalid_battles"],
        "judgments": counts["judgments"],
        "invalid judgments": counts["invalid_judgments"],
        "unresolved failures": counts["unresolved_failures"],
        "bootstrap rounds": bootstrap,
    }
    from banditarena.audits.run_fairness import fairness_section

    fair = fairness_section(store)
    if fair is not None:
        sections = [*(sections or []), fair]
    return write_report(run_dir, title=title or f"banditarena: {meta['recipe']}", leaderboard=lb, winrate=wr,
                        audit=audit, sections=sections, meta=meta)


def style_columns_for_report(lb: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard for the HTML report: the style-controlled rating as one formatted column
    (``"1012 (−9/+11)"``) and its rank, instead of the four numeric style columns."""
    from banditarena.arena.style import STYLE_COLUMNS
    from banditarena.report.html import format_rating_ci

    out = lb.drop(columns=[c for c in STYLE_COLUMNS if c in lb.columns])
    if "style_rating" in lb.columns and lb["style_rating"].notna().any():
        dec = 0 if (lb["rating"].max() - lb["rating"].min()) >= 20 else 1
        out["style_controlled_95_ci"] = [format_rating_ci(r, lo, hi, dec) for r, lo, hi in
                                          zip(lb["style_rating"], lb["style_ci_low"], lb["style_ci_high"])]
        out["style_rank"] = lb["style_rank"]
    return out
