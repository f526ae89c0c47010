"""Self-contained HTML report of a run: leaderboard, CI plot, win-rate heatmap, judge bias audit, more.

:func:`write_report` writes ``run_dir/report.html`` and its figures as PNG files in ``run_dir/figures/``. The
page has no external resources (inline CSS, no scripts) and every piece of text from the data is escaped.
"""

from __future__ import annotations

import datetime as _dt
import html as _html
import json
import math
import re
import shutil
import struct
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import pandas as pd

from banditarena.errors import DataError
from banditarena.paths import write_text_atomic
from banditarena.report import figures as _fig

__all__ = ["Section", "format_rating_ci", "write_report"]

#: An extra report block: ``(heading, html_or_dataframe_or_None, figure_paths)``. A ``str`` body is an HTML
#: fragment inserted as is (it comes from our own code); a DataFrame is rendered as an escaped table.
Section = tuple[str, str | pd.DataFrame | None, Sequence[str | Path]]

_MINUS = "\u2212"
_DASH = "\u2014"
_LB_STANDARD = ("rank", "rating", "ci_low", "ci_high", "battles")
_SECRET_KEY = re.compile(r"(api[_-]?key|secret|password|passwd|token|authorization|bearer)", re.IGNORECASE)

# Known audit keys: (key, column heading, kind). kind: "pct" rate in [0,1], "int", "num".
_AUDIT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("n_pairs", "Pairs", "int"),
    ("position_flip_rate", "Position flips", "pct"),
    ("first_position_win_rate", "First-position wins", "pct"),
    ("length_bias_slope", "Length-bias slope (95% CI)", "slope"),
    ("invalid_rate", "Invalid", "pct"),
)
_AUDIT_SKIP = {k for k, _, _ in _AUDIT_COLUMNS} | {"length_bias_ci", "length_bins"}


# --------------------------------------------------------------------------------------------- formatting
def _esc(value: Any) -> str:
    return _html.escape(str(value), quote=True)


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _rating_decimals(values: Sequence[float]) -> int:
    finite = [abs(float(v)) for v in values if not _is_missing(v) and math.isfinite(float(v))]
    return 0 if finite and max(finite) >= 100 else 2


def format_rating_ci(rating: float, ci_low: float | None, ci_high: float | None, decimals: int = 0) -> str:
    """Format a rating and its CI bounds as ``"1234 (−12/+10)"``; just the rating when the CI is unknown.

    Args:
        rating: the point estimate.
        ci_low: lower bound of the CI (absolute, on the rating scale) or None/NaN.
        ci_high: upper bound of the CI (absolute) or None/NaN.
        decimals: decimals shown for all three numbers.
    """
    if _is_missing(rating):
        return _DASH
    r = float(rating)
    text = f"{r:.{decimals}f}".replace("-", _MINUS)
    if _is_missing(ci_low) or _is_missing(ci_high):
        return text
    minus = max(0.0, r - float(ci_low))  # type: ignore[arg-type]
    plus = max(0.0, float(ci_high) - r)  # type: ignore[arg-type]
    return f"{text} ({_MINUS}{minus:.{decimals}f}/+{plus:.{decimals}f})"


def _fmt_value(v: Any) -> tuple[str, bool]:
    """Format one cell; returns (text, is_numeric)."""
    if _is_missing(v):
        return _DASH, True
    if isinstance(v, (bool, np.bool_)):
        return ("yes" if v else "no"), False
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}".replace("-", _MINUS), True
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isinf(f):
            return ("\u221e" if f > 0 else _MINUS + "\u221e"), True
        if f.is_integer() and abs(f) < 1e15:
            return f"{int(f):,}".replace("-", _MINUS), True
        a = abs(f)
        if a >= 100:
            text = f"{f:,.0f}"
        elif a >= 1:
            text = f"{f:.2f}"
        elif a >= 0.001 or a == 0:
            text = f"{f:.3f}"
        else:
            text = f"{f:.2e}"
        return text.replace("-", _MINUS), True
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, ensure_ascii=False, default=str), False
    return str(v), False


def _pct(v: Any) -> str:
    if _is_missing(v):
        return _DASH
    try:
        return f"{100.0 * float(v):.1f}%"
    except (TypeError, ValueError):
        return str(v)


def _num(v: Any, decimals: int = 3) -> str:
    if _is_missing(v):
        return _DASH
    try:
        return f"{float(v):+.{decimals}f}".replace("-", _MINUS)
    except (TypeError, ValueError):
        return str(v)


def _png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of a PNG file from its IHDR chunk, or None if it is not a PNG."""
    try:
        with path.open("rb") as fh:
            head = fh.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", head[16:24])
    return int(w), int(h)


# --------------------------------------------------------------------------------------------- blocks
def _table(
    headers: Sequence[tuple[str, bool]], rows: Sequence[Sequence[tuple[str, str]]], cls: str = ""
) -> str:
    """headers: (label, numeric); rows: cells as (escaped_html, css_class)."""
    head = "".join(f'<th class="num">{_esc(h)}</th>' if num else f"<th>{_esc(h)}</th>" for h, num in headers)
    body = []
    for row in rows:
        cells = "".join(f'<td class="{c}">{t}</td>' if c else f"<td>{t}</td>" for t, c in row)
        body.append(f"<tr>{cells}</tr>")
    cls_attr = f' class="{cls}"' if cls else ""
    return (
        f'<div class="scroll"><table{cls_attr}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _df_table(df: pd.DataFrame, index_label: str | None = None, max_rows: int = 500) -> str:
    """An escaped HTML table of any DataFrame (index shown unless it is a plain RangeIndex)."""
    # An unnamed integer index is row numbering (often left over from filtering): not worth a column.
    show_index = df.index.name is not None or not pd.api.types.is_integer_dtype(df.index)
    shown = df.head(max_rows)
    headers: list[tuple[str, bool]] = []
    if show_index:
        headers.append((index_label or (str(df.index.name) if df.index.name is not None else ""), False))
    numeric_cols = [
        pd.api.types.is_numeric_dtype(shown[c]) and not pd.api.types.is_bool_dtype(shown[c])
        for c in shown.columns
    ]
    headers += [(str(c), num) for c, num in zip(shown.columns, numeric_cols)]
    rows = []
    for idx, rec in zip(shown.index, shown.itertuples(index=False, name=None)):
        cells: list[tuple[str, str]] = []
        if show_index:
            cells.append((_esc(idx), "model"))
        for v, num in zip(rec, numeric_cols):
            text, is_num = _fmt_value(v)
            cells.append((_esc(text), "num" if (num or is_num) and not isinstance(v, str) else ""))
        rows.append(cells)
    out = _table(headers, rows)
    if len(df) > max_rows:
        out += f'<p class="note">Showing the first {max_rows:,} of {len(df):,} rows.</p>'
    return out


def _figure(run_dir: Path, path: Path, alt: str, caption: str | None = None) -> str:
    rel = path.relative_to(run_dir).as_posix()
    size = _png_size(path)
    dims = ""
    if size is not None:
        # Show figures at the physical size matplotlib drew them (fonts then read as intended).
        css_w = round(size[0] * 96 / _fig.DPI)
        css_h = round(size[1] * 96 / _fig.DPI)
        dims = f' width="{css_w}" height="{css_h}"'
    cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{_esc(rel)}" alt="{_esc(alt)}"{dims}>{cap}</figure>'


def _leaderboard_block(run_dir: Path, fig_dir: Path, lb: pd.DataFrame) -> str:
    if not isinstance(lb, pd.DataFrame):
        raise DataError(f"write_report: leaderboard must be a pandas DataFrame, got {type(lb).__name__}")
    if "rating" not in lb.columns:
        raise DataError(
            f"write_report: leaderboard is missing column rating (has: {', '.join(map(str, lb.columns))})"
        )
    if len(lb) == 0:
        return '<p class="empty">No rated models yet: the run has no valid battles.</p>'
    data = lb.copy()
    data["rating"] = pd.to_numeric(data["rating"], errors="coerce")
    for c in ("ci_low", "ci_high"):
        data[c] = pd.to_numeric(data[c], errors="coerce") if c in data.columns else np.nan
    if "rank" not in data.columns:
        data["rank"] = data["rating"].rank(ascending=False, method="min")
    data = (
        data.assign(_r=pd.to_numeric(data["rank"], errors="coerce"))
        .sort_values(["_r", "rating"], ascending=[True, False], kind="stable")
        .drop(columns="_r")
    )
    decimals = _rating_decimals(data["rating"].tolist())
    has_ci = data["ci_low"].notna().any() and data["ci_high"].notna().any()
    extra = [c for c in data.columns if c not in _LB_STANDARD]

    headers: list[tuple[str, bool]] = [
        ("Rank", True),
        ("Model", False),
        ("Rating (95% CI)" if has_ci else "Rating", True),
    ]
    if has_ci:
        headers.append(("Interval", True))
    if "battles" in data.columns:
        headers.append(("Battles", True))
    headers += [(str(c).replace("_", " ").capitalize(), True) for c in extra]
    rows = []
    for model, rec in data.iterrows():
        cells: list[tuple[str, str]] = [
            (_esc(_fmt_value(rec["rank"])[0]), "num"),
            (_esc(model), "model"),
            (_esc(format_rating_ci(rec["rating"], rec["ci_low"], rec["ci_high"], decimals)), "num"),
        ]
        if has_ci:
            lo, hi = rec["ci_low"], rec["ci_high"]
            interval = (
                _DASH
                if _is_missing(lo) or _is_missing(hi)
                else (f"[{float(lo):.{decimals}f}, {float(hi):.{decimals}f}]".replace("-", _MINUS))
            )
            cells.append((_esc(interval), "num"))
        if "battles" in data.columns:
            cells.append((_esc(_fmt_value(rec["battles"])[0]), "num"))
        for c in extra:
            text, is_num = _fmt_value(rec[c])
            cells.append((_esc(text), "num" if is_num else ""))
        rows.append(cells)
    out = [_table(headers, rows, "leaderboard")]
    out.append(
        '<p class="note">Bradley-Terry ratings on the Elo scale. The 95% confidence interval is shown as '
        f"rating ({_MINUS}distance to the lower bound/+distance to the upper bound).</p>"
    )
    if has_ci and data["rating"].notna().any():
        png = _fig.plot_leaderboard_ci(data.dropna(subset=["rating"]), fig_dir / "leaderboard_ci.png")
        out.append(
            _figure(
                run_dir,
                png,
                "Ratings with 95% confidence intervals",
                "Each dot is a model's rating; the bar is its 95% bootstrap confidence interval.",
            )
        )
    return "\n".join(out)


def _winrate_block(run_dir: Path, fig_dir: Path, wr: pd.DataFrame, order: Sequence[Any] | None) -> str:
    if not isinstance(wr, pd.DataFrame):
        raise DataError(f"write_report: winrate must be a pandas DataFrame, got {type(wr).__name__}")
    if wr.shape[0] == 0:
        return '<p class="empty">No pairwise battles yet.</p>'
    if order is not None and set(order) == set(wr.index) == set(wr.columns):
        wr = wr.loc[list(order), list(order)]
    png = _fig.plot_winrate_heatmap(wr, fig_dir / "winrate_heatmap.png")
    out = [
        _figure(
            run_dir,
            png,
            "Pairwise win-rate heatmap",
            "Cell (row, column): how often the row model beat the column model; grey: the pair never met.",
        )
    ]
    table = wr.copy()
    table.index.name = "model"
    out.append(
        "<details><summary>Win-rate matrix as a table</summary>" + _df_table(table, "model") + "</details>"
    )
    return "\n".join(out)


def _audit_block(run_dir: Path, fig_dir: Path, audit: Mapping[str, Any]) -> str:
    if not isinstance(audit, Mapping):
        raise DataError(
            f"write_report: audit must be a dict of judge -> audit dict, got {type(audit).__name__}"
        )
    judges = {str(k): (v if isinstance(v, Mapping) else {}) for k, v in audit.items()}
    if not judges:
        return '<p class="empty">No judge was audited.</p>'
    present = [
        c
        for c in _AUDIT_COLUMNS
        if any(c[0] in a for a in judges.values())
        or (c[0] == "length_bias_slope" and any("length_bias_ci" in a for a in judges.values()))
    ]
    extra_keys: list[str] = []
    for a in judges.values():
        for k, v in a.items():
            if (
                k not in _AUDIT_SKIP
                and k not in extra_keys
                and (_is_missing(v) or isinstance(v, (int, float, str)))
            ):
                extra_keys.append(k)
    headers: list[tuple[str, bool]] = [("Judge", False)] + [(h, True) for _, h, _ in present]
    headers += [(k.replace("_", " ").capitalize(), True) for k in extra_keys]
    rows = []
    for judge, a in judges.items():
        cells: list[tuple[str, str]] = [(_esc(judge), "model")]
        for key, _, kind in present:
            v = a.get(key)
            warn = False
            if kind == "pct":
                text = _pct(v)
                if not _is_missing(v):
                    fv = float(v)
                    if key == "position_flip_rate":
                        warn = fv > 0.25
                    elif key == "first_position_win_rate":
                        warn = abs(fv - 0.5) > 0.1
                    elif key == "invalid_rate":
                        warn = fv > 0.05
            elif kind == "int":
                text = _fmt_value(v)[0]
            else:  # slope with its CI
                ci = a.get("length_bias_ci")
                text = _num(v)
                if isinstance(ci, (list, tuple)) and len(ci) == 2 and not any(_is_missing(x) for x in ci):
                    lo, hi = float(ci[0]), float(ci[1])
                    text += f" [{_num(lo)}, {_num(hi)}]"
                    warn = lo > 0 or hi < 0
            css = "num" + (" warn" if warn else "") + (" missing" if text == _DASH else "")
            cells.append((_esc(text), css))
        for k in extra_keys:
            text, _ = _fmt_value(a.get(k))
            cells.append((_esc(text), "num"))
        rows.append(cells)
    out = [_table(headers, rows, "audit")]
    out.append(
        '<p class="note">Position flips: share of pairs whose verdict changes when the two answers are '
        "swapped "
        "(0% means no position bias). First-position wins: how often the answer shown first wins (50% is "
        "unbiased). Length-bias slope: change in win rate per unit of length difference, with its 95% CI "
        "(0 means no length bias). Invalid: share of judge outputs that could not be parsed after a retry. "
        "Highlighted cells deserve a look.</p>"
    )
    has_bins = any(
        isinstance(a.get("length_bins"), Sequence) and len(a.get("length_bins")) > 0 for a in judges.values()
    )
    if has_bins:
        try:
            png = _fig.plot_length_bias(judges, fig_dir / "length_bias.png")
        except DataError:
            png = None  # bins present but without win rates: the table says what is known
        if png is not None:
            out.append(
                _figure(
                    run_dir,
                    png,
                    "Judge length bias",
                    "Win rate per length-difference bin, with 95% Wilson intervals; the dashed line is 50%.",
                )
            )
    return "\n".join(out)


def _section_block(run_dir: Path, fig_dir: Path, index: int, section: Any) -> tuple[str, str]:
    if not isinstance(section, (tuple, list)) or len(section) not in (2, 3):
        raise DataError(f"write_report: sections[{index}] must be (heading, html_or_df, figure_paths)")
    heading = str(section[0])
    body = section[1]
    figs = section[2] if len(section) == 3 else ()
    if isinstance(figs, (str, Path)):
        figs = [figs]
    parts: list[str] = []
    if isinstance(body, pd.DataFrame):
        parts.append(_df_table(body) if len(body) else '<p class="empty">No rows.</p>')
    elif body is not None:
        parts.append(str(body))
    for j, f in enumerate(figs or ()):
        src = Path(f)
        if not src.is_file():
            raise DataError(f"write_report: sections[{index}] figure {src} does not exist")
        try:
            src.resolve().relative_to(run_dir.resolve())
            target = src.resolve()
        except ValueError:
            target = fig_dir / src.name
            if target.exists() and target.resolve() != src.resolve():
                target = fig_dir / f"s{index}_{j}_{src.name}"
            shutil.copyfile(src, target)
        parts.append(_figure(run_dir.resolve(), target, heading))
    return heading, "\n".join(parts)


def _meta_block(meta: Mapping[str, Any]) -> str:
    rows = []
    for k, v in meta.items():
        key = str(k)
        if _SECRET_KEY.search(key) and not key.lower().endswith(("_env", "_var")):
            text = "***"  # secrets are never written to reports
        elif isinstance(v, (dict, list, tuple)):
            text = json.dumps(v, ensure_ascii=False, default=str)
        else:
            text = _DASH if _is_missing(v) else str(v)
        rows.append(f"<tr><th>{_esc(key)}</th><td>{_esc(text)}</td></tr>")
    return f'<div class="scroll"><table class="meta"><tbody>{"".join(rows)}</tbody></table></div>'


def _slug(text: str, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    slug, i = base, 2
    while slug in used:
        slug, i = f"{base}-{i}", i + 1
    used.add(slug)
    return slug


# --------------------------------------------------------------------------------------------- entry point
def write_report(
    run_dir: str | Path,
    *,
    title: str,
    leaderboard: pd.DataFrame,
    winrate: pd.DataFrame | None = None,
    audit: Mapping[str, Mapping[str, Any]] | None = None,
    sections: Sequence[Section] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``run_dir/report.html`` and its PNG figures in ``run_dir/figures/``.

    Args:
        run_dir: the run directory (created if missing).
        title: page title.
        leaderboard: DataFrame indexed by model with ``rating`` and, when known, ``ci_low``/``ci_high``
            (absolute 95% CI bounds), ``rank`` and ``battles`` (the output of ``banditarena.ratings.fit_bt``);
            other columns are shown as extra table columns.
        winrate: square win-rate DataFrame (row model vs column model, NaN on the diagonal), drawn as a
            heatmap in leaderboard order.
        audit: ``{judge: audit}`` from the bias audit; known keys are ``n_pairs``, ``position_flip_rate``,
            ``first_position_win_rate``, ``length_bias_slope``, ``length_bias_ci`` (lo, hi), ``length_bins``
            (list of ``{"bin", "win_rate", "n"}``) and ``invalid_rate``. Missing keys show as a dash; other
            scalar keys become extra columns.
        sections: extra blocks ``(heading, body, figure_paths)``: ``body`` is an HTML fragment (trusted,
            from our own code), a DataFrame (rendered as an escaped table) or None; figures outside
            ``run_dir`` are copied into ``run_dir/figures``.
        meta: run metadata shown at the top (recipe, seed, judge...); keys that look like secrets are masked.

    Returns:
        Path of the written ``report.html``.

    Raises:
        DataError: an input has the wrong type or lacks a required column, or a section figure is missing.
    """
    if not isinstance(leaderboard, pd.DataFrame):
        raise DataError(
            f"write_report: leaderboard must be a pandas DataFrame, got {type(leaderboard).__name__}"
        )
    if "rating" not in leaderboard.columns:
        raise DataError(
            "write_report: leaderboard is missing column rating "
            f"(has: {', '.join(map(str, leaderboard.columns))})"
        )
    if meta is not None and not isinstance(meta, Mapping):
        raise DataError(f"write_report: meta must be a dict, got {type(meta).__name__}")
    run_dir = Path(run_dir)
    fig_dir = run_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    from banditarena import __version__

    blocks: list[tuple[str, str]] = []
    if meta:
        blocks.append(("Run", _meta_block(meta)))
    blocks.append(("Leaderboard", _leaderboard_block(run_dir, fig_dir, leaderboard)))
    if winrate is not None:
        order = list(leaderboard.sort_values("rating", ascending=False).index) if len(leaderboard) else None
        blocks.append(("Win rates", _winrate_block(run_dir, fig_dir, winrate, order)))
    if audit is not None:
        blocks.append(("Judge bias audit", _audit_block(run_dir, fig_dir, audit)))
    for i, section in enumerate(sections or ()):
        blocks.append(_section_block(run_dir, fig_dir, i, section))

    used: set[str] = set()
    toc, body = [], []
    for heading, content in blocks:
        slug = _slug(heading, used)
        toc.append(f'<a href="#{slug}">{_esc(heading)}</a>')
        body.append(f'<section id="{slug}">\n<h2>{_esc(heading)}</h2>\n{content}\n</section>')

    n_models = len(leaderboard) if isinstance(leaderboard, pd.DataFrame) else 0
    n_battles = None
    if isinstance(leaderboard, pd.DataFrame) and "battles" in leaderboard.columns and n_models:
        total = pd.to_numeric(leaderboard["battles"], errors="coerce").sum()
        n_battles = round(float(total) / 2)  # each battle counts for both of its models
    subtitle = f"{n_models} model{'s' if n_models != 1 else ''}"
    if n_battles is not None:
        subtitle += f" \u00b7 {n_battles:,} battles"
    if audit:
        subtitle += f" \u00b7 {len(audit)} judge{'s' if len(audit) != 1 else ''} audited"

    template = Template(resources.files("banditarena.report").joinpath("template.html").read_text("utf-8"))
    page = template.substitute(
        title=_esc(title),
        subtitle=_esc(subtitle),
        toc="\n".join(toc),
        body="\n".join(body),
        version=_esc(__version__),
        generated=_esc(_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
    )
    out = write_text_atomic(run_dir / "report.html", page)
    return out
