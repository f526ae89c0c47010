"""The flywheel's table and report: Elo per iteration with CIs, data yield, bandit allocation."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from banditarena.bandits.ope import OPEEstimate
    from banditarena.flywheel.loop import FlywheelResult


def yield_per_arm(decisions: pd.DataFrame) -> pd.DataFrame:
    """battles and yield rate per (dimension, arm) from the decision log."""
    import json

    import pandas as pd

    if decisions.empty:
        return pd.DataFrame(columns=["dimension", "arm", "battles", "yield"])
    d = decisions[~decisions["dimension"].isin(["joint", "prompts"])].copy()
    d["yielded"] = d["meta"].map(lambda m: json.loads(m).get("yield", 0) if isinstance(m, str) else 0)
    g = d.groupby(["dimension", "arm"]).agg(battles=("yielded", "size"), **{"yield": ("yielded", "mean")})
    return g.reset_index()


def off_policy_value(decisions: pd.DataFrame, dimension: str, target: str | Mapping[str, float] = "uniform", *,
                     arms: Sequence[str] | None = None, method: str = "snips", iteration: int | None = None) -> OPEEstimate:
    """Off-policy estimate of the mean battle reward (data yield by default) had ``dimension`` been allocated by
    ``target`` instead, the other dimensions as logged; from the decision log's propensities.

    ``target``: ``"uniform"`` over ``arms`` (default: the dimension's logged arms), one arm's name (always
    that arm), or a mapping arm -> probability. ``method``: ``ips`` or ``snips`` (self-normalised, the
    default). Battles whose arms were used up and replaced (``fallback`` in the meta) are left out: their
    logged propensity is that of the arm first chosen. The prompt dimension is not supported (its candidates
    are not logged).

    Trust it for targets the logging policy explored: check ``ess`` (effective sample size) against ``n``.
    Policies with exact propensities and an exploration floor (``epsilon_greedy``, ``exp3``, ``uniform``)
    log the best data for it. Thompson sampling logs Monte-Carlo propensities, at least
    ``1 / (1 + propensity_samples)``; for an arm it had nearly stopped pulling that overstates the
    propensity, and an estimate for a target far from the log comes out biased with too narrow a CI.
    """
    import json

    import numpy as np

    from banditarena.bandits.ope import ips, snips
    from banditarena.errors import ConfigError

    if dimension in ("prompts", "joint"):
        raise ConfigError(f"off_policy_value: dimension '{dimension}' is not supported (clusters, opponents, strategies)")
    d = decisions[decisions["dimension"] == dimension]
    if d.empty:
        raise ConfigError(f"off_policy_value: no logged decisions for dimension '{dimension}'")
    meta = d["meta"].map(lambda m: json.loads(m) if isinstance(m, str) else (m or {}))
    keep = ~meta.map(lambda m: bool(m.get("fallback"))) & d["reward"].notna()
    if iteration is not None:
        keep &= meta.map(lambda m: m.get("iteration")) == iteration
    d = d[keep]
    names = list(arms) if arms is not None else sorted(set(d["arm"]))
    if isinstance(target, str) and target == "uniform":
        probs = {a: 1.0 / len(names) for a in names}
    elif isinstance(target, str):
        if target not in names:
            raise ConfigError(f"off_policy_value: arm '{target}' is not an arm of '{dimension}' ({', '.join(names)})")
        probs = {target: 1.0}
    else:
        probs = {str(a): float(p) for a, p in target.items()}
        unknown = sorted(set(probs) - set(names))
        if unknown:
            raise ConfigError(f"off_policy_value: arm '{unknown[0]}' is not an arm of '{dimension}'")
    pt = np.array([probs.get(a, 0.0) for a in d["arm"]])
    idx = np.array([names.index(a) for a in d["arm"]], dtype=np.int64)
    est = {"ips": ips, "snips": snips}.get(method)
    if est is None:
        raise ConfigError(f"off_policy_value: unknown method '{method}' (ips, snips)")
    return est(idx, d["reward"].to_numpy(dtype=float), d["propensity"].to_numpy(dtype=float), pt)


def print_table(result: FlywheelResult) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    anchor = result.leaderboard.attrs.get("anchor") if not result.leaderboard.empty else None
    t = Table(title="Arena Learning flywheel", caption=(
        f"Elo: one Bradley-Terry fit over all evaluation battles, {anchor} = 1000" if anchor else
        "Elo: one Bradley-Terry fit over all evaluation battles, mean of all models = 1000")
        + ("; outcomes: graded (the judge's P(A beats B)), bootstrap over prompts"
           if result.leaderboard.attrs.get("outcome_model") == "graded" else "; outcomes: win/loss/tie")
        + "; 95% bootstrap CIs; gain = Elo minus iteration 0's (paired bootstrap CI); style-controlled gain: the "
        "same with answer length and markdown as covariates (a gain that is only style vanishes there)" + "".join(
            f"; iteration {r['iteration']} is {r['evaluated_as']} (same model and strategy)"
            for r in result.elo.to_dict("records") if r.get("evaluated_as", r.get("contestant")) != r.get("contestant")))
    table = result.table()
    judges = sorted({c[: -len("_gain")] for c in table.columns if c.endswith("_gain")} - {"style", "accuracy"})
    has_acc = "accuracy" in table.columns and table["accuracy"].notna().any()
    has_len = "answer_tokens" in table.columns
    cols = ["iteration", "target Elo (95% CI)", "gain vs it0 (95% CI)", "style-controlled gain (95% CI)",
            *[f"gain, judge {j} (95% CI)" for j in judges], *(["accuracy (95% CI)", "accuracy change (95% CI)"]
                                                              if has_acc else []),
            *(["answer tokens"] if has_len else []), "battles", "yield", "SFT", "DPO"]
    for col in cols:
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("top arm per dimension (share)", justify="left")
    for r in table.to_dict("records"):
        elo = "-" if r["target_elo"] is None else f"{r['target_elo']:.0f} ({r['ci_low']:.0f}..{r['ci_high']:.0f})"
        g = r.get("gain")
        gain = "-" if g is None or math.isnan(g) or r["iteration"] == 0 else (
            f"{g:+.0f} ({r['gain_low']:+.0f}..{r['gain_high']:+.0f})")
        sg = r.get("style_gain")
        sgain = "-" if sg is None or math.isnan(sg) or r["iteration"] == 0 else (
            f"{sg:+.0f} ({r['style_gain_low']:+.0f}..{r['style_gain_high']:+.0f})")
        y = r["yield"]
        ys = "-" if y is None or math.isnan(y) else f"{y:.0%}"  # NaN/None: no battles
        extra = [_ci(r, f"{j}_gain", r["iteration"]) for j in judges]
        if has_acc:
            extra += [_ci(r, "accuracy", None, pct=True), _ci(r, "accuracy_gain", r["iteration"], pct=True)]
        if has_len:
            n = r.get("answer_tokens")
            extra.append("-" if n is None or math.isnan(n) else f"{n:.0f}")
        t.add_row(str(r["iteration"]), elo, gain, sgain, *extra, str(r["battles"]), ys, str(r["sft"]), str(r["dpo"]),
                  r["allocation"] or "-")
    # a log file or pipe gets a readable width instead of rich's 80-column default
    c = Console() if sys.stdout.isatty() else Console(width=240)
    c.print(t)
    for w in result.warnings:
        c.print(f"[yellow]warning:[/yellow] {w}")


def _ci(r: Mapping[str, Any], key: str, iteration: int | None, *, pct: bool = False) -> str:
    """``value (low..high)`` of ``r[key]`` and its CI columns; "-" when missing or at iteration 0 of a gain."""
    v = r.get(key)
    if v is None or math.isnan(v) or iteration == 0:
        return "-"
    lo, hi = r.get(f"{key}_low", math.nan), r.get(f"{key}_high", math.nan)
    if pct:
        sign = "+" if iteration is not None else ""
        return f"{100 * v:{sign}.1f}% ({100 * lo:{sign}.1f}..{100 * hi:{sign}.1f})"
    return f"{v:+.0f} ({lo:+.0f}..{hi:+.0f})"


def write_flywheel_report(run_dir: str | Path, result: FlywheelResult) -> Path:
    from banditarena.ratings import win_rate_matrix
    from banditarena.report import plot_arm_pulls, plot_elo_over_iterations, plot_yield_per_arm, write_report
    from banditarena.report.run import audit_for_report, run_audit
    from banditarena.store import RunStore

    run_dir = Path(run_dir)
    figs = run_dir / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    sections: list[Any] = []
    table = result.table()
    elo_png = plot_elo_over_iterations(result.elo, figs / "elo_over_iterations.png")
    sections.append(("Target Elo over iterations", table, [elo_png]))
    dec = result.decisions
    if not dec.empty:
        d = dec[~dec["dimension"].isin(["joint", "prompts"])]
        pulls_png = plot_arm_pulls(d[["step", "dimension", "arm", "reward"]], figs / "arm_pulls.png")
        ypa = yield_per_arm(dec)
        yield_png = plot_yield_per_arm(ypa, figs / "yield_per_arm.png")
        sections.append(("Bandit allocation: arm pulls over time", None, [pulls_png]))
        sections.append(("Data yield per arm", ypa, [yield_png]))
    from banditarena.flywheel.safety_screen import exclusions_html

    excl = exclusions_html(run_dir)
    if excl:
        sections.append(("Training data excluded by the safety screen", excl, []))
    store = RunStore(run_dir, create=False)
    battles = store.battles("eval", valid_only=True)
    wr = win_rate_matrix(battles[["model_a", "model_b", "winner"]])
    audit = audit_for_report(run_audit(run_dir))
    meta = {"run directory": str(run_dir.resolve()), "judge": store.get_meta("judge") or "-", **store.counts()}
    return write_report(run_dir, title="banditarena flywheel", leaderboard=result.leaderboard, winrate=wr,
                        audit=audit, sections=sections, meta=meta)
