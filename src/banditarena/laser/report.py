"""LASeR's report pages: one run (:func:`write_laser_report`) and a multi-seed reproduction
(:func:`write_seeds_report`: selection over time per category, routing accuracy, learning curves per method)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from banditarena.laser.run import LaserResults


def write_laser_report(run_dir: str | Path, res: LaserResults) -> Path:
    """``run_dir/report.html``: accuracy and cost per method, how LASeR's choice of RM changed over time."""
    import pandas as pd

    from banditarena.laser.run import selection_over_time
    from banditarena.report import plot_selection_over_time, write_report

    run_dir = Path(run_dir)
    figs = run_dir / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    table = res.table.copy()
    # the shared report page wants a leaderboard: methods ranked by test accuracy (in percent)
    lb = pd.DataFrame({"rating": 100 * table["accuracy"].to_numpy(), "rm_calls": table["rm_calls"].to_numpy()},
                      index=table["method"].to_numpy())
    lb.index.name = "method"
    sections: list[Any] = [("Accuracy and cost per method", table, [])]
    sel = selection_over_time(res.selections)
    if not sel.empty:
        png = plot_selection_over_time(sel, figs / "rm_selection_over_time.png")
        sections.append(("Reward-model selection over time (LASeR)", res.frequencies(), [png]))
        by_cat = res.frequencies(by_category=True)
        if not by_cat.empty:
            sections.append(("Selection frequency per problem category", by_cat, []))
    if not res.history.empty:
        pngs = []
        if "test_acc" in res.history:
            h = res.history.dropna(subset=["test_acc"])
            ser = {m: ((g["iteration"] + 1).tolist(), g["test_acc"].tolist()) for m, g in h.groupby("method")}
            if ser:
                pngs.append(_line_plot(ser, figs / "learning_curves.png", title="Learning curves (test accuracy)",
                                       xlabel="iteration", ylabel="test accuracy"))
        sections.append(("Per-iteration learning curve", res.history, pngs))
    meta = {"base accuracy": res.base.get("accuracy") if isinstance(res.base, dict) else res.base,
            "best single RM on dev": res.best_single}
    return write_report(run_dir, title="banditarena LASeR", leaderboard=lb, sections=sections, meta=meta)


def _line_plot(series: dict[str, tuple[list[float], list[float]]], path: Path, *, title: str, xlabel: str,
               ylabel: str, percent: bool = True) -> Path:
    """One line per key: ``{label: (xs, ys)}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.0, 4.0), dpi=110)
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", linewidth=1.6, markersize=3.5, label=label)
    if percent:
        ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=8)
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_seeds_report(run_dir: str | Path, seeds: list[int], methods: list[str], noise_methods: list[str], *,
                       noise_rm: str = "partial", sigma: float = 0.3, routing: str | Path | None = None) -> Path:
    """``run_dir/report.html`` of a multi-seed reproduction (``bench/laser_seeds.py``): accuracy with CIs and
    cost per method, paired tests, the noise experiment, LASeR's selection over time per category, the
    learning curves per method and, given ``routing`` (``routing.json`` of ``bench/laser_routing.py``), the
    routing check's right-pick rate over time per method."""
    import json

    import pandas as pd

    from banditarena.laser.multiseed import collect, learning_curves, report_seeds, summary_table
    from banditarena.report import plot_selection_over_time, write_report

    run_dir = Path(run_dir)
    figs = run_dir / "figures"
    report_seeds(run_dir, seeds, methods, noise_methods, noise_rm=noise_rm, sigma=sigma)  # report.md
    clean = collect(run_dir, seeds, methods)
    base_f = run_dir / f"seed{seeds[0]}" / "clean" / "base_eval.json"
    base = json.loads(base_f.read_text()) if base_f.exists() else None
    table = summary_table(clean, base, 1)
    lb = pd.DataFrame({"rating": 100 * table["accuracy"].to_numpy(), "ci_low": 100 * table["ci_low"].to_numpy(),
                       "ci_high": 100 * table["ci_high"].to_numpy()}, index=table["method"].to_numpy())
    lb.index.name = "method"
    sections: list[Any] = [("Accuracy (mean over seeds and problems, 95% bootstrap CI) and cost", table, [])]
    curves = learning_curves(clean)
    if not curves.empty:
        png = _line_plot({m: (curves.index.tolist(), curves[m].tolist()) for m in curves.columns
                          if curves[m].notna().any()}, figs / "learning_curves.png",
                         title="Learning curves (test accuracy, mean over seeds)", xlabel="iteration",
                         ylabel="test accuracy")
        sections.append(("Learning curves per method", curves, [png]))
    for m in [m for m in clean if m.startswith("laser")]:
        rows = pd.DataFrame([r for st in clean[m].values() for r in st["selections"]])
        pngs = []
        for cat, df in rows.groupby(rows["category"].fillna("all")):
            sel = pd.DataFrame({"step": df["iteration"].to_numpy(), "arm": df["rm"].to_numpy()})
            pngs.append(plot_selection_over_time(sel, figs / f"selection_{m.replace(':', '_')}_{cat}.png", window=1,
                                                 title=f"{m}: RM chosen per iteration, category {cat} (all seeds)"))
        freq = pd.crosstab(rows["category"].fillna("all"), rows["rm"], normalize="index").round(3)
        sections.append((f"Selection over time per category ({m})", freq, pngs))
    if routing is not None and Path(routing).exists():
        r = json.loads(Path(routing).read_text())
        res = r["results"]
        dims = sorted({k.split("/")[0] for k in res})
        pngs, rows_ = [], []
        for d in dims:
            ser = {k.split("/")[1]: (list(range(1, len(v["windows"]) + 1)), v["windows"]) for k, v in res.items()
                   if k.split("/")[0] == d}
            pngs.append(_line_plot(ser, figs / f"routing_dim{d}.png", xlabel="fifth of the decisions",
                                   title=f"Routing check: right specialist picked (context {d})",
                                   ylabel="right picks"))
            rows_ += [{"context": d, "method": k.split("/")[1], "right picks (2nd half)": float(np.mean(v["second_half_correct"])),
                       "regret": float(np.mean(v["regret"]))} for k, v in res.items() if k.split("/")[0] == d]
        sections.append(("Routing check (known specialists)", pd.DataFrame(rows_), pngs))
    meta = {"seeds": ", ".join(map(str, seeds)), "noise": f"N(0, {sigma:g}^2) on {noise_rm}"}
    return write_report(run_dir, title="banditarena LASeR over seeds", leaderboard=lb, sections=sections, meta=meta)
