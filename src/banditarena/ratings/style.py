"""Style control: a contextual Bradley-Terry model that separates substance from style.

``logit P(a beats b) = theta_a - theta_b + beta . f``, where ``f`` holds per-battle style features:
for each style count ``c`` (answer length and the numbers of markdown headers, list items and bold
spans) the normalised difference ``(c_a - c_b) / (c_a + c_b)`` (0 when both are 0), standardised over
the battles as Chatbot Arena does. ``beta`` are the style coefficients (effect of one standard
deviation of the feature on the logit) and ``theta`` on the Elo scale are the style-controlled ratings.
Ties count as half a win for each side. CIs come from a bootstrap over battles.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from banditarena.ratings._data import (
    BattleArrays,
    RatingsInputError,
    _records_frame,
    arrays_from_frame,
    counts_from_arrays,
)
from banditarena.ratings.bt import AUTO_L2, _parse_anchor, leaderboard_frame, strongly_connected

STYLE_FEATURES: tuple[str, ...] = ("length", "headers", "lists", "bold")
"""Default style features: answer length (words), markdown headers, list items, bold spans."""

TEXT_COLUMNS: tuple[tuple[str, str], ...] = (("response_a", "response_b"), ("answer_a", "answer_b"),
                                             ("text_a", "text_b"))

_CODE = re.compile(r"```.*?(```|\Z)", re.DOTALL)
MARKDOWN_HEADER = re.compile(r"^#{1,6}\s+\S", re.MULTILINE)
"""A markdown header line (``# x`` .. ``###### x``)."""
MARKDOWN_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.MULTILINE)
"""An ordered or unordered list item."""
MARKDOWN_BOLD = re.compile(r"\*\*[^*\n]+?\*\*|__[^_\n]+?__")
"""A bold span (``**x**`` / ``__x__``)."""


def style_counts(text: str) -> dict[str, int]:
    """Style counts of one answer: ``length`` (whitespace-separated words), ``headers`` (markdown
    ``#`` lines), ``lists`` (ordered or unordered list items) and ``bold`` (``**x**``/``__x__`` spans).
    Fenced code blocks are ignored for the markdown counts (not for the length)."""
    text = text or ""
    prose = _CODE.sub("", text)
    return {
        "length": len(text.split()),
        "headers": len(MARKDOWN_HEADER.findall(prose)),
        "lists": len(MARKDOWN_LIST.findall(prose)),
        "bold": len(MARKDOWN_BOLD.findall(prose)),
    }


def style_feature_matrix(df: pd.DataFrame, features: Sequence[str] = STYLE_FEATURES) -> np.ndarray:
    """Raw normalised differences ``(a - b) / (a + b)`` per battle and feature (n x k).

    Counts come from columns ``{feature}_a`` / ``{feature}_b`` when present, otherwise from answer texts
    in ``response_a``/``response_b`` (or ``answer_a``/``answer_b``, ``text_a``/``text_b``) via
    :func:`style_counts`.
    """
    text_cols = next(((ca, cb) for ca, cb in TEXT_COLUMNS if ca in df.columns and cb in df.columns), None)
    counted: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if text_cols is not None and any(f"{f}_a" not in df.columns for f in features):
        memo: dict[str, dict[str, int]] = {}  # an answer fights many battles: count each text once

        def count(t: str) -> dict[str, int]:
            c = memo.get(t)
            if c is None:
                c = memo[t] = style_counts(t)
            return c

        ca = [count(t) for t in df[text_cols[0]].astype(str).tolist()]
        cb = [count(t) for t in df[text_cols[1]].astype(str).tolist()]
        for f in features:
            if f in STYLE_FEATURES:
                counted[f] = (np.array([c[f] for c in ca], dtype=np.float64),
                              np.array([c[f] for c in cb], dtype=np.float64))
    out = np.zeros((len(df), len(features)))
    for k, f in enumerate(features):
        if f"{f}_a" in df.columns and f"{f}_b" in df.columns:
            try:
                a = df[f"{f}_a"].to_numpy(dtype=np.float64)
                b = df[f"{f}_b"].to_numpy(dtype=np.float64)
            except (TypeError, ValueError):
                raise RatingsInputError(f"style columns {f}_a/{f}_b must be numeric") from None
        elif f in counted:
            a, b = counted[f]
        else:
            raise RatingsInputError(
                f"style feature {f!r} needs columns {f}_a and {f}_b or answer texts in response_a/response_b"
            )
        bad = ~np.isfinite(a) | ~np.isfinite(b) | (a < 0) | (b < 0)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise RatingsInputError(f"row {pos}: style counts {f}_a/{f}_b must be finite and >= 0")
        tot = a + b
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, k] = np.where(tot > 0, (a - b) / np.where(tot > 0, tot, 1.0), 0.0)
    return out


def _newton_style(a: np.ndarray, b: np.ndarray, y: np.ndarray, w: np.ndarray, feats: np.ndarray, m: int,
                  l2: float, x0: np.ndarray | None, tol: float = 1e-8, max_iter: int = 100) -> np.ndarray:
    """Maximise the weighted contextual BT log-likelihood over (theta (m, sum zero), beta (k))."""
    k = feats.shape[1]
    x = np.zeros(m + k) if x0 is None else x0.copy()
    pair = a.astype(np.int64) * m + b

    def objective(v: np.ndarray) -> float:
        z = v[a] - v[b] + feats @ v[m:]
        return float((w * (y * np.logaddexp(0, -z) + (1 - y) * np.logaddexp(0, z))).sum()
                     + 0.5 * l2 * v[:m] @ v[:m])

    f_cur = objective(x)
    for _ in range(max_iter):
        theta, beta = x[:m], x[m:]
        z = theta[a] - theta[b] + feats @ beta
        p = 0.5 * (1.0 + np.tanh(0.5 * z))
        r = w * (y - p)
        h = w * p * (1.0 - p)
        g = np.empty(m + k)
        g[:m] = np.bincount(a, r, m) - np.bincount(b, r, m) - l2 * theta
        g[m:] = feats.T @ r
        hm = np.bincount(pair, h, m * m).reshape(m, m)
        hess = np.empty((m + k, m + k))
        lap = -(hm + hm.T)
        lap[np.diag_indices(m)] = hm.sum(axis=1) + hm.sum(axis=0) + l2
        if l2 == 0:
            lap += 1.0 / m
        hess[:m, :m] = lap
        hf = h[:, None] * feats
        cross = np.stack([np.bincount(a, hf[:, c], m) - np.bincount(b, hf[:, c], m) for c in range(k)], axis=1)
        hess[:m, m:] = cross
        hess[m:, :m] = cross.T
        hess[m:, m:] = feats.T @ hf
        try:
            step = np.linalg.solve(hess, g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, g, rcond=None)[0]
        t = 1.0
        new = x + step
        f_new = objective(new)
        for _ in range(30):
            if f_new <= f_cur + 1e-12 * abs(f_cur) + 1e-12:
                break
            t *= 0.5
            new = x + t * step
            f_new = objective(new)
        new[:m] -= new[:m].mean()
        x, f_cur = new, f_new
        if np.abs(t * step).max() < tol:
            break
    return x


@dataclass
class StyleControlResult:
    """Output of :func:`fit_style_bt`.

    ``leaderboard``: style-controlled ratings (same columns as :func:`fit_bt`);
    ``coefficients``: per feature ``coef`` (logit effect of one standard deviation), ``ci_low``,
    ``ci_high``, plus ``feature_mean``/``feature_std`` used to standardise;
    ``bootstrap``: rounds x models ratings (or ``None``).
    """

    leaderboard: pd.DataFrame
    coefficients: pd.DataFrame
    bootstrap: pd.DataFrame | None = None


def fit_style_bt(battles: Any, *, features: Sequence[str] = STYLE_FEATURES, bootstrap: int = 100,
                 seed: int | np.random.Generator | None = 0, anchor: Any = None, l2: float | None = None,
                 scale: float = 400.0, base: float = 10.0, init: float = 1000.0, ci: float = 0.95,
                 drop_invalid: bool = False, cluster: str | None = None) -> StyleControlResult:
    """Fit the style-controlled Bradley-Terry model (see module docstring).

    ``battles``: a DataFrame or list of dicts with ``model_a``, ``model_b``, ``winner``, optional
    ``weight``, and the style counts (``length_a``, ``length_b``, ``headers_a``, ...) or the answer texts
    (``response_a``/``response_b``). Other parameters as in :func:`fit_bt`; the bootstrap resamples
    battles (rows) because features differ per battle, or the values of ``cluster`` (e.g. ``prompt_id``).
    With an ``outcome`` column (``P(model_a beats model_b)``, :mod:`banditarena.ratings.graded`) the fit uses
    those graded outcomes as soft labels instead of the winner.
    """
    if isinstance(battles, pd.DataFrame):
        df = battles
    elif isinstance(battles, (list, tuple)):
        df = pd.DataFrame(list(battles)) if battles and isinstance(battles[0], dict) else _records_frame(battles)
    else:
        raise RatingsInputError("style control needs a DataFrame or a list of dicts with style columns")
    if not features:
        raise RatingsInputError("features must name at least one style feature")
    if int(bootstrap) < 0 or not 0 < ci < 1:
        raise RatingsInputError(f"need bootstrap >= 0 and 0 < ci < 1, got {bootstrap}, {ci}")
    from banditarena.ratings.graded import OUTCOME_COLUMN, graded_arrays, graded_counts, has_graded_outcomes

    graded = has_graded_outcomes(df)
    if drop_invalid:
        col = OUTCOME_COLUMN if graded else "winner"
        if col in df.columns:
            df = df[df[col].notna()].reset_index(drop=True)
    if cluster is not None and cluster not in df.columns:
        raise RatingsInputError(f"cluster column {cluster!r} not in the battles; have {list(df.columns)}")
    g = graded_arrays(df, cluster=cluster) if graded else None
    arr = g.arrays if g is not None else arrays_from_frame(df, drop_invalid=False)
    raw = style_feature_matrix(df, features)
    mean = raw.mean(axis=0)
    std = raw.std(axis=0)
    usable = std > 1e-12
    feats = np.zeros_like(raw)
    feats[:, usable] = (raw[:, usable] - mean[usable]) / std[usable]
    feats = feats[:, usable]
    m = len(arr.models)
    models = tuple(arr.models.tolist())
    a = arr.a.astype(np.int64)
    b = arr.b.astype(np.int64)
    y = g.p if g is not None else np.array([1.0, 0.0, 0.5])[arr.outcome]
    w0 = np.ones(len(a)) if arr.weight is None else arr.weight
    if g is not None:
        counts, sij, sji = graded_counts(g)
    else:
        counts = counts_from_arrays(arr)
        sij = counts.w[:, 0] + 0.5 * counts.w[:, 2]
        sji = counts.w[:, 1] + 0.5 * counts.w[:, 2]
    if cluster is not None:
        clusters, n_cl = pd.factorize(df[cluster].astype(str), use_na_sentinel=False)[0], df[cluster].nunique()
    else:
        clusters, n_cl = np.arange(len(a)), len(a)
    exists = strongly_connected(counts.i, counts.j, sij, sji, m)
    lam = (0.0 if exists else AUTO_L2) if l2 is None else float(l2)
    if lam == 0 and not exists:
        raise RatingsInputError("the unregularised MLE does not exist (a model has only wins or only losses); "
                                "use l2 > 0 or l2=None")
    anc = _parse_anchor(anchor, models, init)
    per_logit = scale / math.log(base)

    def to_rating(theta: np.ndarray) -> np.ndarray:
        r = theta * per_logit
        if anc.model is None:
            return r - r.mean() + anc.value
        return r - r[models.index(anc.model)] + anc.value

    x = _newton_style(a, b, y, w0, feats, m, lam, None)
    rating = to_rating(x[:m])
    coef = x[m:]
    alpha = (1 - ci) / 2
    boot_df = None
    if bootstrap > 0:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        boot_r = np.empty((bootstrap, m))
        boot_c = np.empty((bootstrap, feats.shape[1]))
        for r_ in range(bootstrap):
            wb = w0 * rng.multinomial(n_cl, np.full(n_cl, 1.0 / n_cl)).astype(np.float64)[clusters]
            lam_b = lam
            if lam == 0:  # a resample can lose the MLE (a model with only wins): give that round the prior
                if g is not None:
                    _, bij, bji = graded_counts(type(g)(BattleArrays(arr.models, arr.a, arr.b, arr.outcome, wb),
                                                        g.p, g.cluster, g.n_clusters))
                else:
                    cb = counts_from_arrays(BattleArrays(arr.models, arr.a, arr.b, arr.outcome, wb))
                    bij, bji = cb.w[:, 0] + 0.5 * cb.w[:, 2], cb.w[:, 1] + 0.5 * cb.w[:, 2]
                if not strongly_connected(counts.i, counts.j, bij, bji, m):
                    lam_b = AUTO_L2
            xb = _newton_style(a, b, y, wb, feats, m, lam_b, x, tol=1e-6)
            boot_r[r_] = to_rating(xb[:m])
            boot_c[r_] = xb[m:]
        lo, med, hi = np.percentile(boot_r, [100 * alpha, 50, 100 * (1 - alpha)], axis=0)
        clo, chi = np.percentile(boot_c, [100 * alpha, 100 * (1 - alpha)], axis=0)
        boot_df = pd.DataFrame(boot_r, columns=pd.Index(models, name="model"))
    else:
        lo = hi = med = rating.copy()
        clo = chi = coef.copy()
    score_for = np.bincount(counts.i, sij, m) + np.bincount(counts.j, sji, m)
    score_against = np.bincount(counts.i, sji, m) + np.bincount(counts.j, sij, m)
    flagged = (score_for == 0) | (score_against == 0)
    attrs = {"n_battles": len(a), "n_models": m, "l2": lam, "mle_exists": bool(exists), "bootstrap": int(bootstrap),
             "ci": ci, "scale": scale, "base": base, "anchor": anc.model, "anchor_value": anc.value,
             "ci_method": "bootstrap-percentile" if bootstrap > 0 else "none", "style_controlled": True,
             "outcome_model": "graded" if g is not None else "win/loss/tie"}
    lb = leaderboard_frame(models, rating, lo, hi, med, counts.per_model(), flagged, attrs)
    names = [f for f, u in zip(features, usable) if u]
    coefs = pd.DataFrame({"coef": coef, "ci_low": clo, "ci_high": chi, "feature_mean": mean[usable],
                          "feature_std": std[usable]}, index=pd.Index(names, name="feature"))
    return StyleControlResult(lb, coefs, boot_df)
