"""Matplotlib figures for reports, written as PNG files.

Every ``plot_*`` function takes plain data (a pandas DataFrame or a dict) and a target path, draws on its own
``matplotlib.figure.Figure`` with the Agg canvas (no pyplot, no global backend switch, safe in threads and
notebooks), writes the PNG and returns the path. Matplotlib is imported inside the functions so that importing
this module stays cheap.

Input problems a user can cause (a missing column, no rows) raise :class:`banditarena.errors.DataError` with a
one-line message naming the function and the column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from banditarena.errors import DataError
from banditarena.ratings.stats import wilson_interval

__all__ = [
    "DPI",
    "cumulative_pulls",
    "plot_arm_pulls",
    "plot_elo_over_iterations",
    "plot_leaderboard_ci",
    "plot_length_bias",
    "plot_selection_over_time",
    "plot_winrate_heatmap",
    "plot_yield_per_arm",
    "selection_shares",
]

#: Resolution of every PNG written here.
DPI = 130

_INK = "#1f2933"
_GRID = "#d9dee4"
_ACCENT = "#2563eb"
_MUTED = "#6b7785"


# --------------------------------------------------------------------------------------------- helpers
def _require(df: Any, columns: Sequence[str], who: str, what: str = "data") -> pd.DataFrame:
    """Check ``df`` is a non-empty DataFrame holding ``columns``; raise DataError naming what is wrong."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{who}: {what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{who}: {what} is missing column(s) {', '.join(missing)} "
            f"(has: {', '.join(map(str, df.columns))})"
        )
    if len(df) == 0:
        raise DataError(f"{who}: {what} has no rows")
    return df


def _numeric(df: pd.DataFrame, column: str, who: str) -> pd.Series:
    try:
        return pd.to_numeric(df[column], errors="raise").astype(float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{who}: column {column} must be numeric ({exc})") from None


def _short(label: Any, width: int = 38) -> str:
    s = str(label)
    return s if len(s) <= width else s[: width - 1] + "\u2026"


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained", facecolor="white")
    return fig


def _style_axes(ax: Any, grid_axis: str = "both") -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(_MUTED)
    ax.tick_params(colors=_INK, labelsize=9)
    ax.xaxis.label.set_color(_INK)
    ax.yaxis.label.set_color(_INK)
    ax.title.set_color(_INK)
    if grid_axis:
        ax.grid(True, axis=grid_axis, color=_GRID, linewidth=0.8)
        ax.set_axisbelow(True)


def _palette(n: int) -> list[Any]:
    import matplotlib

    name = "tab10" if n <= 10 else "tab20"
    cmap = matplotlib.colormaps[name]
    return [cmap(i % cmap.N) for i in range(n)]


def _save(fig: Any, path: str | Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    tmp = out.with_name(out.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=DPI, facecolor="white", bbox_inches="tight", pad_inches=0.12)
    tmp.replace(out)
    return out




# --------------------------------------------------------------------------------------------- leaderboard
def plot_leaderboard_ci(lb: pd.DataFrame, path: str | Path, *, title: str | None = None) -> Path:
    """Ratings with their 95% confidence intervals, best model on top (see :func:`leaderboard_ci_figure`).

    Args:
        lb: leaderboard indexed by model with columns ``rating``, ``ci_low``, ``ci_high`` (absolute bounds
            on the rating scale) and optionally ``rank`` and ``battles`` (the output of
            ``banditarena.ratings.fit_bt``).
        path: PNG file to write.
        title: figure title.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    return _save(leaderboard_ci_figure(lb, title=title), path)


def leaderboard_ci_figure(lb: pd.DataFrame, *, title: str | None = None) -> Any:
    """The matplotlib Figure of :func:`plot_leaderboard_ci`: one dot per model at its rating (best on top,
    y = n-1 .. 0) with a horizontal bar from ``ci_low`` to ``ci_high``."""
    who = "plot_leaderboard_ci"
    _require(lb, ["rating", "ci_low", "ci_high"], who, "leaderboard")
    rating = _numeric(lb, "rating", who)
    lo = _numeric(lb, "ci_low", who)
    hi = _numeric(lb, "ci_high", who)
    order = np.argsort(-rating.to_numpy(), kind="stable")
    names = [str(lb.index[i]) for i in order]
    r = rating.to_numpy()[order]
    lo_v = lo.to_numpy()[order]
    hi_v = hi.to_numpy()[order]
    battles = lb["battles"].to_numpy()[order] if "battles" in lb.columns else None

    n = len(names)
    fig = _new_figure(8.0, max(2.2, 0.42 * n + 1.3))
    ax = fig.add_subplot(1, 1, 1)
    _style_axes(ax, "x")
    y = np.arange(n)[::-1]  # best at the top
    err_lo = np.where(np.isfinite(lo_v), np.clip(r - lo_v, 0, None), 0.0)
    err_hi = np.where(np.isfinite(hi_v), np.clip(hi_v - r, 0, None), 0.0)
    ax.errorbar(
        r, y, xerr=[err_lo, err_hi], fmt="none", ecolor=_ACCENT, elinewidth=2.2, capsize=4, alpha=0.55
    )
    ax.scatter(r, y, s=42, color=_ACCENT, zorder=3, edgecolor="white", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([_short(s) for s in names])
    ax.set_ylim(-0.7, n - 0.3)
    span_lo = np.nanmin(np.where(np.isfinite(lo_v), lo_v, r))
    span_hi = np.nanmax(np.where(np.isfinite(hi_v), hi_v, r))
    pad = max((span_hi - span_lo) * 0.18, 1e-9 + abs(span_hi) * 1e-3)
    ax.set_xlim(span_lo - pad * 0.4, span_hi + pad)
    decimals = 0 if np.nanmax(np.abs(r)) >= 100 else 2
    for yi, ri, hv, bi in zip(y, r, hi_v, battles if battles is not None else [None] * n):
        x_text = hv if np.isfinite(hv) else ri
        label = f"{ri:.{decimals}f}"
        if bi is not None and not (isinstance(bi, float) and math.isnan(bi)):
            label += f"  ({int(bi):,} battles)"
        ax.annotate(
            label,
            (x_text, yi),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color=_MUTED,
        )
    ax.set_xlabel("rating (Elo scale)")
    ax.set_title(title or "Ratings with 95% confidence intervals", loc="left", fontsize=11, fontweight="bold")
    return fig


def plot_winrate_heatmap(wr: pd.DataFrame, path: str | Path, *, title: str | None = None) -> Path:
    """Heatmap of pairwise win rates: cell (row, column) is how often the row model beat the column model.

    Args:
        wr: square DataFrame of win rates in [0, 1], rows and columns in the same model order; NaN on the
            diagonal and for pairs that never met (drawn grey).
        path: PNG file to write.
        title: figure title.
    """
    who = "plot_winrate_heatmap"
    if not isinstance(wr, pd.DataFrame):
        raise DataError(f"{who}: win rates must be a pandas DataFrame, got {type(wr).__name__}")
    if wr.shape[0] == 0 or wr.shape[0] != wr.shape[1]:
        raise DataError(f"{who}: win-rate matrix must be square and non-empty, got shape {wr.shape}")
    try:
        values = wr.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{who}: win rates must be numeric ({exc})") from None
    finite = values[np.isfinite(values)]
    if finite.size and (finite.min() < -1e-9 or finite.max() > 1 + 1e-9):
        raise DataError(
            f"{who}: win rates must lie in [0, 1], got range [{finite.min():.3g}, {finite.max():.3g}]"
        )

    import matplotlib

    n = values.shape[0]
    side = max(3.8, 0.62 * n + 2.4)
    fig = _new_figure(side + 1.0, side)
    ax = fig.add_subplot(1, 1, 1)
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="#eef0f3")
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0.0, vmax=1.0, aspect="equal")
    rows = [_short(s, 28) for s in wr.index]
    cols = [_short(s, 28) for s in wr.columns]
    ax.set_xticks(np.arange(n))
    ax.set_yticks(np.arange(n))
    ax.set_xticklabels(cols, rotation=40, ha="right", rotation_mode="anchor", fontsize=9, color=_INK)
    ax.set_yticklabels(rows, fontsize=9, color=_INK)
    ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.tick_params(which="major", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if n <= 24:
        fontsize = 9 if n <= 10 else 7
        for i in range(n):
            for j in range(n):
                v = values[i, j]
                if np.isfinite(v):
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}",
                        ha="center",
                        va="center",
                        fontsize=fontsize,
                        color="white" if abs(v - 0.5) > 0.3 else _INK,
                    )
                elif i == j:
                    ax.text(j, i, "\u2013", ha="center", va="center", fontsize=fontsize, color=_MUTED)
    ax.set_xlabel("opponent (column)", color=_INK)
    ax.set_ylabel("model (row)", color=_INK, labelpad=6)
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cbar.set_label("win rate of row over column", color=_INK, fontsize=9)
    cbar.ax.tick_params(labelsize=8)
    cbar.outline.set_visible(False)
    ax.set_title(title or "Pairwise win rate", loc="left", fontsize=11, fontweight="bold", color=_INK)
    return _save(fig, path)


def plot_elo_over_iterations(df: pd.DataFrame, path: str | Path, *, title: str | None = None) -> Path:
    """Rating of each model across flywheel iterations, with its 95% CI as a shaded band.

    Args:
        df: long table with columns ``iteration``, ``model``, ``rating``, ``ci_low``, ``ci_high``.
        path: PNG file to write.
        title: figure title.
    """
    who = "plot_elo_over_iterations"
    _require(df, ["iteration", "model", "rating", "ci_low", "ci_high"], who)
    data = df.assign(
        iteration=_numeric(df, "iteration", who),
        rating=_numeric(df, "rating", who),
        ci_low=_numeric(df, "ci_low", who),
        ci_high=_numeric(df, "ci_high", who),
    )
    # Legend order: best final rating first.
    last = data.sort_values("iteration").groupby("model", sort=False)["rating"].last()
    models = list(last.sort_values(ascending=False).index)
    colors = _palette(len(models))
    fig = _new_figure(8.0, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    _style_axes(ax, "y")
    for model, color in zip(models, colors):
        g = data[data["model"] == model].sort_values("iteration")
        x = g["iteration"].to_numpy()
        ax.fill_between(
            x, g["ci_low"].to_numpy(), g["ci_high"].to_numpy(), color=color, alpha=0.15, linewidth=0
        )
        ax.plot(
            x,
            g["rating"].to_numpy(),
            marker="o",
            markersize=4,
            color=color,
            linewidth=1.8,
            label=_short(model, 30),
        )
    iters = np.unique(data["iteration"].to_numpy())
    if len(iters) <= 20 and np.allclose(iters, np.round(iters)):
        ax.set_xticks(iters)
        ax.set_xticklabels([str(int(i)) for i in iters])
    ax.set_xlabel("iteration")
    ax.set_ylabel("rating (Elo scale)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=8)
    ax.set_title(title or "Ratings over iterations", loc="left", fontsize=11, fontweight="bold")
    return _save(fig, path)


# --------------------------------------------------------------------------------------------- bandits
def cumulative_pulls(decisions: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Cumulative number of pulls of each arm after each step, per dimension.

    Args:
        decisions: bandit decision log with columns ``step``, ``dimension``, ``arm`` (several rows may share a
            step: a batched ``select``).

    Returns:
        ``{dimension: DataFrame}``, each indexed by step (sorted) with one column per arm (in order of first
        pull) holding the number of times that arm was chosen up to and including that step.
    """
    who = "cumulative_pulls"
    _require(decisions, ["step", "dimension", "arm"], who, "decisions")
    out: dict[str, pd.DataFrame] = {}
    for dim, g in decisions.groupby("dimension", sort=False):
        g = g.sort_values("step", kind="stable")
        arms = list(dict.fromkeys(g["arm"].astype(str)))
        counts = pd.crosstab(g["step"], g["arm"].astype(str)).reindex(columns=arms, fill_value=0)
        out[str(dim)] = counts.cumsum().sort_index()
    return out


def plot_arm_pulls(decisions: pd.DataFrame, path: str | Path, *, title: str | None = None) -> Path:
    """Cumulative pulls per arm over steps, one panel per bandit dimension (prompts, opponents...).

    Args:
        decisions: decision log with columns ``step``, ``dimension``, ``arm`` and optionally ``reward``; the
            legend then shows each arm's mean reward.
        path: PNG file to write.
        title: figure title.
    """
    who = "plot_arm_pulls"
    _require(decisions, ["step", "dimension", "arm"], who, "decisions")
    pulls = cumulative_pulls(decisions)
    mean_reward: dict[tuple[str, str], float] = {}
    if "reward" in decisions.columns:
        rewards = pd.to_numeric(decisions["reward"], errors="coerce")
        grouped = rewards.groupby([decisions["dimension"].astype(str), decisions["arm"].astype(str)]).mean()
        mean_reward = {k: float(v) for k, v in grouped.items()}
    k = len(pulls)
    ncols = 1 if k == 1 else 2
    nrows = math.ceil(k / ncols)
    fig = _new_figure(7.5 if ncols == 1 else 11.0, 3.3 * nrows + 0.4)
    for idx, (dim, table) in enumerate(pulls.items()):
        ax = fig.add_subplot(nrows, ncols, idx + 1)
        _style_axes(ax, "y")
        # Busiest arms first (and first colours) in the legend; cap the legend for very many arms.
        final = table.iloc[-1].sort_values(ascending=False, kind="stable")
        colors = _palette(len(final))
        for rank, (arm, color) in enumerate(zip(final.index, colors)):
            label = _short(arm, 24)
            mr = mean_reward.get((dim, arm))
            if mr is not None and np.isfinite(mr):
                label += f" (r\u0304={mr:.2f})"
            ax.step(
                table.index.to_numpy(),
                table[arm].to_numpy(),
                where="post",
                color=color,
                linewidth=1.6,
                label=label if rank < 12 else None,
            )
        ax.set_title(str(dim), loc="left", fontsize=10, fontweight="bold")
        ax.set_xlabel("step")
        ax.set_ylabel("cumulative pulls")
        ax.legend(frameon=False, fontsize=7, loc="upper left")
    fig.suptitle(title or "Bandit arm pulls", x=0.01, ha="left", fontsize=11, fontweight="bold", color=_INK)
    return _save(fig, path)


def plot_yield_per_arm(df: pd.DataFrame, path: str | Path, *, title: str | None = None) -> Path:
    """Data yield of each arm (e.g. share of battles that produced a training pair), one panel per dimension.

    Args:
        df: columns ``dimension``, ``arm``, ``battles`` (how many battles the arm spent) and ``yield``.
        path: PNG file to write.
        title: figure title.
    """
    who = "plot_yield_per_arm"
    _require(df, ["dimension", "arm", "battles", "yield"], who)
    data = df.assign(battles=_numeric(df, "battles", who), **{"yield": _numeric(df, "yield", who)})
    dims = list(dict.fromkeys(data["dimension"].astype(str)))
    k = len(dims)
    ncols = 1 if k == 1 else 2
    nrows = math.ceil(k / ncols)
    max_arms = int(data.groupby(data["dimension"].astype(str)).size().max())
    fig = _new_figure(7.5 if ncols == 1 else 11.0, max(2.4, 0.34 * max_arms + 1.2) * nrows + 0.3)
    ymax = float(np.nanmax(data["yield"].to_numpy())) if len(data) else 1.0
    for idx, dim in enumerate(dims):
        ax = fig.add_subplot(nrows, ncols, idx + 1)
        _style_axes(ax, "x")
        g = data[data["dimension"].astype(str) == dim].sort_values("yield", ascending=True)
        y = np.arange(len(g))
        ax.barh(y, g["yield"].to_numpy(), color=_ACCENT, alpha=0.85, height=0.62)
        ax.set_yticks(y)
        ax.set_yticklabels([_short(a, 30) for a in g["arm"]])
        for yi, v, b in zip(y, g["yield"].to_numpy(), g["battles"].to_numpy()):
            text = f"{v:.2f}" if abs(v) < 10 else f"{v:,.0f}"
            ax.annotate(
                f"{text}  n={int(b):,}",
                (max(v, 0.0), yi),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=7.5,
                color=_MUTED,
            )
        ax.set_xlim(0, (ymax if ymax > 0 else 1.0) * 1.35)
        ax.set_title(dim, loc="left", fontsize=10, fontweight="bold")
        ax.set_xlabel("yield")
    fig.suptitle(title or "Data yield per arm", x=0.01, ha="left", fontsize=11, fontweight="bold", color=_INK)
    return _save(fig, path)


def selection_shares(df: pd.DataFrame, window: int | None = None) -> pd.DataFrame:
    """Share of each arm among the selections in consecutive step windows.

    Args:
        df: columns ``step`` and ``arm`` (one row per selection).
        window: window width in steps; by default the step range split into about 20 windows.

    Returns:
        DataFrame indexed by window start step, one column per arm (order of first selection), rows summing
        to 1.
    """
    who = "selection_shares"
    _require(df, ["step", "arm"], who)
    steps = _numeric(df, "step", who)
    lo, hi = float(steps.min()), float(steps.max())
    if window is None:
        window = max(1, math.ceil((hi - lo + 1) / 20))
    if window < 1:
        raise DataError(f"{who}: window must be >= 1, got {window}")
    start = (np.floor((steps.to_numpy() - lo) / window) * window + lo).astype(float)
    arms = list(dict.fromkeys(df["arm"].astype(str)))
    table = pd.crosstab(pd.Series(start, name="window_start"), df["arm"].astype(str).to_numpy())
    table = table.reindex(columns=arms, fill_value=0)
    table.columns.name = None
    shares = table.div(table.sum(axis=1), axis=0)
    if np.allclose(shares.index.to_numpy(), np.round(shares.index.to_numpy())):
        shares.index = shares.index.astype(int)
    shares.attrs["window"] = window
    return shares


def plot_selection_over_time(
    df: pd.DataFrame, path: str | Path, *, window: int | None = None, title: str | None = None
) -> Path:
    """LASeR: which reward model the bandit selected, as shares per window of steps (stacked areas).

    Args:
        df: columns ``step`` and ``arm`` (the reward model chosen), one row per selection.
        path: PNG file to write.
        window: window width in steps (default: about 20 windows over the run).
        title: figure title.
    """
    shares = selection_shares(df, window)
    arms = list(shares.columns)
    colors = _palette(len(arms))
    fig = _new_figure(8.0, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    _style_axes(ax, "")
    x = shares.index.to_numpy()
    if len(x) == 1:
        ax.bar([0], [1.0], color="none")
        bottom = 0.0
        for arm, color in zip(arms, colors):
            v = float(shares[arm].iloc[0])
            ax.bar([0], [v], bottom=bottom, color=color, label=_short(arm, 30), width=0.5)
            bottom += v
        ax.set_xticks([0])
        ax.set_xticklabels([f"steps {x[0]}+"])
    else:
        # Each window is a flat band from its first step to the next window's start.
        width = shares.attrs.get("window", 1)
        edges = np.append(x.astype(float), float(x[-1]) + width)
        ys = [np.append(shares[a].to_numpy(), shares[a].to_numpy()[-1]) for a in arms]
        ax.stackplot(
            edges,
            *ys,
            labels=[_short(a, 30) for a in arms],
            colors=colors,
            alpha=0.9,
            step="post",
            edgecolor="white",
            linewidth=0.4,
        )
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel(f"step (windows of {width} step{'s' if width != 1 else ''})")
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of selections")
    ax.yaxis.set_major_formatter(_percent_formatter())
    handles, labels = ax.get_legend_handles_labels()  # legend top-down in the order of the stack
    ax.legend(
        handles[::-1], labels[::-1], loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=8
    )
    ax.set_title(title or "Reward model selected over time", loc="left", fontsize=11, fontweight="bold")
    return _save(fig, path)


def _percent_formatter() -> Any:
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)


# --------------------------------------------------------------------------------------------- judges
def _audit_by_judge(audit: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Accept one judge's audit dict or ``{judge: audit}``; return ``{judge: audit}``."""
    if not isinstance(audit, Mapping):
        raise DataError(f"plot_length_bias: audit must be a dict, got {type(audit).__name__}")
    single_keys = {"length_bins", "length_bias_slope", "position_flip_rate", "n_pairs"}
    if single_keys & set(audit):
        return {"judge": audit}
    return {str(k): v for k, v in audit.items() if isinstance(v, Mapping)}


def _bins_frame(bins: Iterable[Any]) -> pd.DataFrame:
    rows = []
    for b in bins or []:
        if not isinstance(b, Mapping):
            continue
        rows.append({"bin": b.get("bin"), "win_rate": b.get("win_rate"), "n": b.get("n")})
    frame = pd.DataFrame(rows, columns=["bin", "win_rate", "n"])
    frame["win_rate"] = pd.to_numeric(frame["win_rate"], errors="coerce")
    frame["n"] = pd.to_numeric(frame["n"], errors="coerce")
    return frame


def plot_length_bias(audit: Mapping[str, Any], path: str | Path, *, title: str | None = None) -> Path:
    """Judge length bias: win rate (of the longer answer, as the audit defines it) per length-difference bin.

    Args:
        audit: either one judge's audit dict or ``{judge_name: audit_dict}``. Each audit may hold
            ``length_bins`` (list of ``{"bin", "win_rate", "n"}``, bins in order) and ``length_bias_slope``
            / ``length_bias_ci``; judges without bins are skipped. 95% Wilson intervals are drawn from ``n``.
        path: PNG file to write.
        title: figure title.
    """
    who = "plot_length_bias"
    judges = {j: _bins_frame(a.get("length_bins", [])) for j, a in _audit_by_judge(audit).items()}
    judges = {j: f for j, f in judges.items() if len(f) and f["win_rate"].notna().any()}
    if not judges:
        raise DataError(f"{who}: no judge in the audit has length_bins with win rates")
    per_judge = _audit_by_judge(audit)
    labels: list[str] = []
    for f in judges.values():
        for b in f["bin"]:
            s = _fmt_bin(b)
            if s not in labels:
                labels.append(s)
    pos = {s: i for i, s in enumerate(labels)}
    colors = _palette(len(judges))
    fig = _new_figure(max(6.5, 0.8 * len(labels) + 3.5), 4.2)
    ax = fig.add_subplot(1, 1, 1)
    _style_axes(ax, "y")
    ax.axhline(0.5, color=_MUTED, linewidth=1, linestyle="--", zorder=1)
    k = len(judges)
    for idx, ((judge, f), color) in enumerate(zip(judges.items(), colors)):
        offset = (idx - (k - 1) / 2) * 0.12 if k > 1 else 0.0
        x = np.array([pos[_fmt_bin(b)] for b in f["bin"]], dtype=float) + offset
        wr = f["win_rate"].to_numpy(dtype=float)
        n = f["n"].to_numpy(dtype=float)
        lo_hi = [
            wilson_interval(w * m, m) if np.isfinite(w) and np.isfinite(m) and m > 0 else (np.nan, np.nan)
            for w, m in zip(wr, n)
        ]
        lo = np.array([a for a, _ in lo_hi])
        hi = np.array([b for _, b in lo_hi])
        # clip: at a win rate of exactly 0 or 1 rounding can put the Wilson bound a hair past the point
        err = np.clip(np.vstack([np.where(np.isfinite(lo), wr - lo, 0), np.where(np.isfinite(hi), hi - wr, 0)]), 0, None)
        label = _short(judge, 30)
        slope = per_judge[judge].get("length_bias_slope")
        if isinstance(slope, (int, float)) and math.isfinite(slope):
            label += f" (slope {slope:+.3f})"
        ax.errorbar(
            x, wr, yerr=err, color=color, marker="o", markersize=5, linewidth=1.8, capsize=3, label=label
        )
        if k == 1:
            for xi, wi, ni in zip(x, wr, n):
                if np.isfinite(wi) and np.isfinite(ni):
                    ax.annotate(
                        f"n={int(ni)}",
                        (xi, wi),
                        xytext=(0, -14),
                        textcoords="offset points",
                        ha="center",
                        fontsize=7,
                        color=_MUTED,
                    )
    ax.set_xticks(np.arange(len(labels)))
    ax.set_xticklabels(
        labels,
        rotation=0 if max(map(len, labels)) <= 8 else 25,
        ha="center" if max(map(len, labels)) <= 8 else "right",
        fontsize=8,
    )
    ax.set_ylim(-0.02, 1.02)
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.set_xlabel("length difference bin")
    ax.set_ylabel("win rate (95% CI)")
    ax.legend(frameon=False, fontsize=8, loc="best")
    ax.set_title(title or "Judge length bias", loc="left", fontsize=11, fontweight="bold")
    return _save(fig, path)


def _fmt_bin(b: Any) -> str:
    if isinstance(b, (list, tuple)) and len(b) == 2:
        return f"[{_fmt_num(b[0])}, {_fmt_num(b[1])})"
    if isinstance(b, float):
        return _fmt_num(b)
    return str(b)


def _fmt_num(v: Any) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isinf(f):
        return "\u221e" if f > 0 else "\u2212\u221e"
    return f"{f:g}"
