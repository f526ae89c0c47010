"""banditarena.report: matplotlib figures (PNG) and a self-contained HTML report of a run.

Matplotlib is imported inside the plotting functions, so importing this package is cheap.
"""

from banditarena.report.figures import (
    cumulative_pulls,
    plot_arm_pulls,
    plot_elo_over_iterations,
    plot_leaderboard_ci,
    plot_length_bias,
    plot_selection_over_time,
    plot_winrate_heatmap,
    plot_yield_per_arm,
    selection_shares,
)
from banditarena.report.html import Section, format_rating_ci, write_report

__all__ = [
    "Section",
    "cumulative_pulls",
    "format_rating_ci",
    "plot_arm_pulls",
    "plot_elo_over_iterations",
    "plot_leaderboard_ci",
    "plot_length_bias",
    "plot_selection_over_time",
    "plot_winrate_heatmap",
    "plot_yield_per_arm",
    "selection_shares",
    "write_report",
]
