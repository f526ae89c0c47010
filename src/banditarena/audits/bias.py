"""Bias audit of judges: position bias, length bias, self-preference, invalid output.

Input
-----
``judgments``: a list of :class:`~banditarena.types.Judgment` and/or :class:`~banditarena.types.Battle`
objects (a battle contributes its judgments), or a pandas DataFrame with the columns
``judge, prompt_id, first, second, score_first, score_second, verdict, ok`` (as the run store holds them;
``verdict`` may be null) and optionally ``len_first, len_second`` (answer lengths, used when no generations
are given).

``generations`` (optional): a list of :class:`~banditarena.types.Generation` or a DataFrame with columns
``contestant, prompt_id, text, tokens``. Lengths are ``len(text)`` characters (``length_unit="chars"``) or the
``tokens`` column (``length_unit="tokens"``).

Measures, per judge
-------------------
* ``invalid_rate``: share of judgments with ``ok`` false.
* ``position_bias_rate``: over prompt/pair combinations judged validly in both orders, the share whose
  preferred *model* flips when the order is swapped (one order prefers X, the other Y).
  ``order_disagreement_rate`` also counts a tie in one order against a win in the other.
* ``first_win_rate``: among valid, decisive (non-tie) judgments, the share preferring the answer shown first
  (0.5 = no position preference), with a 95% Wilson interval; ``tie_rate`` among valid judgments.
* length bias: with ``d = (len_first - len_second) / (len_first + len_second)`` (the normalised length
  difference, in [-1, 1]), ``longer_win_rate`` (decisive judgments with unequal lengths: share won by the
  longer answer, Wilson CI), the same binned by ``|d|`` (``length_bins``: dicts with ``bin`` label,
  ``abs_diff_low/high``, ``n``, ``win_rate`` = ``longer_win_rate`` of the bin), and a logistic regression of
  "first answer preferred" on ``d`` with an intercept (the intercept absorbs position bias):
  ``length_slope`` (log-odds per unit of ``d``), its 95% Wald CI and p-value.
* ``self_preference`` (needs ``judge_models``): for each contestant whose model equals the judge's
  underlying model, its win rate (wins 1, ties 1/2) under this judge and under all other judges.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from banditarena.ratings.stats import logistic_fit, wilson_interval
from banditarena.types import Battle, Generation, Judgment

JUDGMENT_COLUMNS = ["judge", "prompt_id", "first", "second", "score_first", "score_second", "verdict", "ok"]
LENGTH_BINS = (0.0, 0.1, 0.25, 0.5, 1.0)


def _pref(verdict: Any, s1: Any, s2: Any, ok: Any) -> str | None:
    if not bool(ok):
        return None
    if isinstance(verdict, str) and verdict:
        return "first" if verdict.startswith("A>") else "second" if verdict.startswith("B>") else "tie"
    if s1 is None or s2 is None or pd.isna(s1) or pd.isna(s2):
        return None
    return "first" if s1 > s2 else "second" if s2 > s1 else "tie"


def judgments_frame(judgments: Iterable[Judgment | Battle] | pd.DataFrame) -> pd.DataFrame:
    """The judgments as a DataFrame with :data:`JUDGMENT_COLUMNS` plus ``pref`` (first/second/tie/None)."""
    if isinstance(judgments, pd.DataFrame):
        missing = [c for c in JUDGMENT_COLUMNS if c not in judgments.columns and c != "verdict"]
        if missing:
            raise ValueError(f"judgments DataFrame lacks columns {missing}")
        df = judgments.copy()
        if "verdict" not in df.columns:
            df["verdict"] = None
    else:
        rows = []
        for item in judgments:
            for j in item.judgments if isinstance(item, Battle) else [item]:
                rows.append({c: getattr(j, c) for c in JUDGMENT_COLUMNS})
        df = pd.DataFrame(rows, columns=JUDGMENT_COLUMNS)
    df["ok"] = df["ok"].fillna(False).astype(bool)
    df["verdict"] = df["verdict"].where(df["verdict"].notna(), None)
    df["pref"] = [
        _pref(v, a, b, ok) for v, a, b, ok in zip(df["verdict"], df["score_first"], df["score_second"], df["ok"])
    ]
    # ok but neither scores nor verdict: nothing to learn from, counted as invalid
    df.loc[df["pref"].isna(), "ok"] = False
    return df


def _lengths(generations: Iterable[Generation] | pd.DataFrame | None, unit: str) -> dict[tuple[str, str], float]:
    if generations is None:
        return {}
    if unit not in ("chars", "tokens"):
        raise ValueError(f"length_unit must be 'chars' or 'tokens', got {unit!r}")
    if isinstance(generations, pd.DataFrame):
        col = "tokens" if unit == "tokens" else "text"
        vals = generations[col].map(lambda t: float(len(t)) if isinstance(t, str) else float(t))
        return dict(zip(zip(generations["contestant"], generations["prompt_id"].astype(str)), vals))
    return {
        (g.contestant, str(g.prompt_id)): float(g.tokens if unit == "tokens" else len(g.text)) for g in generations
    }


def _position(valid: pd.DataFrame) -> dict[str, Any]:
    last = valid.drop_duplicates(["prompt_id", "first", "second"], keep="last")
    by_key = {(r.prompt_id, r.first, r.second): r.pref for r in last.itertuples(index=False)}
    n = flips = disagree = 0
    for (pid, a, b), pref_ab in by_key.items():
        if a >= b or (pid, b, a) not in by_key:
            continue
        pref_ba = by_key[(pid, b, a)]
        win_ab = {"first": a, "second": b, "tie": "tie"}[pref_ab]
        win_ba = {"first": b, "second": a, "tie": "tie"}[pref_ba]
        n += 1
        flips += win_ab != "tie" and win_ba != "tie" and win_ab != win_ba
        disagree += win_ab != win_ba
    lo, hi = wilson_interval(flips, n)
    return {
        "n_pairs": n,
        "position_bias_rate": flips / n if n else math.nan,
        "position_bias_ci": (lo, hi),
        "order_disagreement_rate": disagree / n if n else math.nan,
    }


def _length(valid: pd.DataFrame, lengths: dict[tuple[str, str], float]) -> dict[str, Any]:
    if "len_first" in valid.columns and "len_second" in valid.columns and not lengths:
        lf, ls = valid["len_first"].astype(float).to_numpy(), valid["len_second"].astype(float).to_numpy()
    else:
        lf = np.array([lengths.get((f, str(p)), np.nan) for f, p in zip(valid["first"], valid["prompt_id"])])
        ls = np.array([lengths.get((s, str(p)), np.nan) for s, p in zip(valid["second"], valid["prompt_id"])])
    have = ~(np.isnan(lf) | np.isnan(ls))
    empty = {"n_length": 0, "longer_win_rate": math.nan, "longer_win_ci": (math.nan, math.nan),
             "length_bins": [], "length_slope": math.nan, "length_slope_ci": (math.nan, math.nan),
             "length_slope_p": math.nan}
    if not have.any():
        return empty
    pref = valid["pref"].to_numpy()[have]
    lf, ls = lf[have], ls[have]
    tot = lf + ls
    d = np.divide(lf - ls, tot, out=np.zeros_like(tot), where=tot > 0)
    decisive = pref != "tie"
    y = (pref == "first").astype(float)
    fit = logistic_fit(d[decisive], y[decisive])
    unequal = decisive & (d != 0)
    longer_won = np.where(d > 0, pref == "first", pref == "second")[unequal]
    absd = np.abs(d[unequal])
    bins = []
    for lo_edge, hi_edge in itertools.pairwise(LENGTH_BINS):
        m = (absd > lo_edge if lo_edge > 0 else absd >= 0) & (absd <= hi_edge)
        k = int(m.sum())
        rate = float(longer_won[m].mean()) if k else math.nan
        bins.append({"bin": f"{lo_edge:g}-{hi_edge:g}", "abs_diff_low": lo_edge, "abs_diff_high": hi_edge, "n": k,
                     "longer_win_rate": rate, "win_rate": rate})
    n_unequal = int(unequal.sum())
    res = {
        "n_length": int(have.sum()),
        "longer_win_rate": float(longer_won.mean()) if n_unequal else math.nan,
        "longer_win_ci": wilson_interval(float(longer_won.sum()), n_unequal),
        "length_bins": bins,
        "length_slope": fit["slope"] if fit else math.nan,
        "length_slope_ci": (fit["ci_low"], fit["ci_high"]) if fit else (math.nan, math.nan),
        "length_slope_p": fit["p_value"] if fit else math.nan,
    }
    return res


def _win_rate(df: pd.DataFrame, contestant: str) -> tuple[float, int]:
    pts = []
    for f, s, pref in zip(df["first"], df["second"], df["pref"]):
        if contestant not in (f, s) or f == s:
            continue
        side = "first" if f == contestant else "second"
        pts.append(0.5 if pref == "tie" else float(pref == side))
    return (float(np.mean(pts)) if pts else math.nan, len(pts))


def bias_audit(
    judgments: Iterable[Judgment | Battle] | pd.DataFrame,
    generations: Iterable[Generation] | pd.DataFrame | None = None,
    *,
    judge_models: Mapping[str, str] | None = None,
    contestant_models: Mapping[str, str] | None = None,
    length_unit: str = "chars",
) -> dict[str, dict[str, Any]]:
    """Audit every judge found in ``judgments`` (see the module docstring for inputs and measures).

    ``judge_models`` maps a judge name to its underlying model (``{j.name: j.model}`` for
    :class:`~banditarena.judges.PairwiseLLMJudge`); ``contestant_models`` maps a contestant name to its
    model (default: the name itself). Returns ``{judge: {measure: value}}``; rates are NaN where no data.
    """
    df = judgments_frame(judgments)
    lengths = _lengths(generations, length_unit)
    cmodel = dict(contestant_models or {})
    out: dict[str, dict[str, Any]] = {}
    valid_all = df[df["ok"]]
    for judge, g in df.groupby("judge", sort=True):
        valid = g[g["ok"]]
        n = len(g)
        decisive = valid[valid["pref"] != "tie"]
        n_first = int((decisive["pref"] == "first").sum())
        res: dict[str, Any] = {
            "n_judgments": n,
            "n_invalid": int(n - len(valid)),
            "invalid_rate": float((n - len(valid)) / n) if n else math.nan,
            "first_win_rate": n_first / len(decisive) if len(decisive) else math.nan,
            "first_win_ci": wilson_interval(n_first, len(decisive)),
            "tie_rate": float((valid["pref"] == "tie").mean()) if len(valid) else math.nan,
        }
        res.update(_position(valid))
        res.update(_length(valid, lengths))
        self_pref: dict[str, dict[str, Any]] = {}
        jm = (judge_models or {}).get(str(judge))
        if jm is not None:
            contestants = sorted(set(g["first"]) | set(g["second"]))
            others = valid_all[valid_all["judge"] != judge]
            for c in contestants:
                if cmodel.get(c, c) != jm:
                    continue
                wr_self, n_self = _win_rate(valid, c)
                wr_other, n_other = _win_rate(others, c)
                self_pref[c] = {"win_rate_self_judge": wr_self, "n_self": n_self,
                                "win_rate_other_judges": wr_other, "n_other": n_other,
                                "difference": wr_self - wr_other if n_other and n_self else math.nan}
        res["judge_model"] = jm
        res["self_preference"] = self_pref
        out[str(judge)] = res
    return out


def bias_audit_table(audit: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per judge with the scalar measures of :func:`bias_audit` (CIs split into _low/_high;
    ``self_preference_difference`` is the mean difference over the judge's own-model contestants)."""
    rows = []
    for judge, res in audit.items():
        row: dict[str, Any] = {"judge": judge}
        for k, v in res.items():
            if isinstance(v, tuple) and len(v) == 2:
                row[f"{k}_low"], row[f"{k}_high"] = v
            elif k == "self_preference":
                diffs = [d["difference"] for d in v.values() if not math.isnan(d["difference"])]
                row["self_preference_difference"] = float(np.mean(diffs)) if diffs else math.nan
            elif not isinstance(v, (list, dict, Sequence)) or isinstance(v, str):
                row[k] = v
        rows.append(row)
    return pd.DataFrame(rows)
