"""Graded outcomes: Bradley-Terry on P(A beats B), with the bootstrap over prompts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from banditarena.ratings import RatingsInputError, fit_bt, fit_style_bt, spearman

STRENGTH = {"m1": 1.2, "m2": 0.6, "m3": 0.0, "m4": -0.6, "base": 2.5}


def _pointwise(n: int = 400, seed: int = 0, pairs: str = "baseline") -> pd.DataFrame:
    """A pointwise judge's battles: each answer's logit = model strength + noise; P(A beats B) through them."""
    rng = np.random.default_rng(seed)
    models = list(STRENGTH)
    rows = []
    for q in range(n):
        z = {m: STRENGTH[m] + rng.normal(0, 0.8) for m in models}
        if pairs == "baseline":
            todo = [(m, "base") for m in models if m != "base"]
        else:
            todo = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
        for a, b in todo:
            p = 1 / (1 + np.exp(-(z[a] - z[b])))
            rows.append({"prompt_id": f"q{q}", "model_a": a, "model_b": b, "outcome": p,
                         "winner": "model_a" if p > 0.5 else "model_b"})
    return pd.DataFrame(rows)


def test_graded_outcomes_rank_models_that_win_and_loss_cannot_separate() -> None:
    df = _pointwise()
    truth = pd.DataFrame({"rating": pd.Series(STRENGTH)})
    graded = fit_bt(df[["prompt_id", "model_a", "model_b", "outcome"]], cluster="prompt_id", seed=0)
    hard = fit_bt(df[["model_a", "model_b", "winner"]], seed=0)
    assert graded.attrs["outcome_model"] == "graded" and hard.attrs["outcome_model"] == "win/loss/tie"
    assert "over prompt_id" in graded.attrs["ci_method"]
    assert spearman(graded, truth) > 0.999
    # the baseline almost always scores higher: thresholded, the weaker models have (nearly) no wins left
    assert hard.loc[["m3", "m4"], "wins"].sum() < 25 and graded.loc["m4", "ci_high"] < graded.loc["m3", "ci_low"]
    # the soft fit recovers the logit gaps (Elo = 400/ln 10 per logit): m1 - m3 = 1.2 logits (noise shrinks it a bit)
    gap = (graded.loc["m1", "rating"] - graded.loc["m3", "rating"]) / (400 / np.log(10))
    assert 0.8 < gap < 1.25


def test_baseline_and_all_pairs_designs_agree_under_graded_outcomes() -> None:
    a = fit_bt(_pointwise(pairs="baseline")[["prompt_id", "model_a", "model_b", "outcome"]], cluster="prompt_id")
    b = fit_bt(_pointwise(pairs="all")[["prompt_id", "model_a", "model_b", "outcome"]], cluster="prompt_id")
    assert spearman(a, b) > 0.999
    # same spacing up to noise
    assert abs((a.loc["m1", "rating"] - a.loc["m4", "rating"]) - (b.loc["m1", "rating"] - b.loc["m4", "rating"])) < 60


def test_hard_outcomes_given_as_probabilities_fit_like_the_winner() -> None:
    df = _pointwise(pairs="all", n=60)
    df["outcome"] = df["winner"].map({"model_a": 1.0, "model_b": 0.0})
    g = fit_bt(df[["model_a", "model_b", "outcome"]], bootstrap=0)
    h = fit_bt(df[["model_a", "model_b", "winner"]], bootstrap=0)
    assert np.allclose(g["rating"].sort_index(), h["rating"].sort_index(), atol=1e-6)


def test_the_cluster_bootstrap_is_wider_than_treating_battles_on_one_prompt_as_independent() -> None:
    # every prompt repeated 5 times (the same battles): independent resampling would be overconfident
    df = pd.concat([_pointwise(n=80)] * 5, ignore_index=True)
    cols = ["prompt_id", "model_a", "model_b", "outcome"]
    by_prompt = fit_bt(df[cols], cluster="prompt_id", seed=1)
    by_battle = fit_bt(df[cols], seed=1)
    w = lambda lb: float((lb["ci_high"] - lb["ci_low"]).mean())
    assert w(by_prompt) > 1.7 * w(by_battle)
    again = fit_bt(df[cols], cluster="prompt_id", seed=1)
    assert again.equals(by_prompt)  # same seed, same numbers


def test_bad_graded_outcomes_name_the_row() -> None:
    df = _pointwise(n=5)[["prompt_id", "model_a", "model_b", "outcome"]]
    bad = df.copy()
    bad.loc[3, "outcome"] = 1.5
    with pytest.raises(RatingsInputError, match="row 3: outcome must be in"):
        fit_bt(bad)
    bad = bad.astype({"outcome": object})
    bad.loc[3, "outcome"] = "x"
    with pytest.raises(RatingsInputError, match="row 3: outcome must be a number"):
        fit_bt(bad)
    missing = df.copy()
    missing.loc[2, "outcome"] = np.nan
    with pytest.raises(RatingsInputError, match="row 2: outcome is missing"):
        fit_bt(missing)
    assert fit_bt(missing, drop_invalid=True).attrs["n_battles"] == len(df) - 1
    with pytest.raises(RatingsInputError, match="cluster column 'nope'"):
        fit_bt(df, cluster="nope")


def test_style_control_fits_graded_outcomes_and_sees_a_length_lean() -> None:
    rng = np.random.default_rng(3)
    df = _pointwise(pairs="all", n=150)
    la = rng.integers(20, 400, len(df))
    lb = rng.integers(20, 400, len(df))
    # a judge that adds a length bonus on top of quality
    f = (la - lb) / (la + lb)
    logit = np.log(df["outcome"] / (1 - df["outcome"])) + 1.5 * f
    df = df.assign(outcome=1 / (1 + np.exp(-logit)), length_a=la, length_b=lb, headers_a=0, headers_b=0,
                   lists_a=0, lists_b=0, bold_a=0, bold_b=0).drop(columns=["winner"])
    res = fit_style_bt(df, cluster="prompt_id", bootstrap=30)
    assert res.leaderboard.attrs["outcome_model"] == "graded"
    assert res.coefficients.loc["length", "ci_low"] > 0
    assert spearman(res.leaderboard, pd.DataFrame({"rating": pd.Series(STRENGTH)})) > 0.999
