"""LASeR's report: the Table-1-style table, selection frequencies and reward-model selection over time."""

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
        sections.append(("Per-iteration learning curve", res.history, []))
    meta = {"base accuracy": res.base.get("accuracy") if isinstance(res.base, dict) else res.base,
            "best single RM on dev": res.best_single}
    return write_report(run_dir, title="banditarena LASeR", leaderboard=lb, sections=sections, meta=meta)
