"""LASeR's report page of one run (:func:`write_laser_report`) and its line plot (:func:`line_plot`); the
multi-seed reproduction's page is the bench's (``bench/experiments/multiseed.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

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
                pngs.append(line_plot(ser, figs / "learning_curves.png", title="Learning curves (test accuracy)",
                                       xlabel="iteration", ylabel="test accuracy"))
        sections.append(("Per-iteration learning curve", res.history, pngs))
    meta = {"base accuracy": res.base.get("accuracy") if isinstance(res.base, dict) else res.base,
            "best single RM on dev": res.best_single}
    return write_report(run_dir, title="banditarena LASeR", leaderboard=lb, sections=sections, meta=meta)


def line_plot(series: dict[str, tuple[list[float], list[float]]], path: Path, *, title: str, xlabel: str,
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
