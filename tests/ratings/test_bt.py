"""Bradley-Terry fit: recovery, CI coverage, symmetries, MLE accuracy, anchors, weights, priors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from banditarena.ratings import AUTO_L2, BradleyTerry, RatingsInputError, aggregate, fit_bt, simulate_battles
from banditarena.ratings import bt as bt_mod
from banditarena.ratings.bt import leaderboard_frame, multinomial_resample

COLUMNS = ["rating", "ci_low", "ci_high", "rank", "battles"]


def _truth(m: int = 8, spread: float = 300.0) -> pd.Series:
    return pd.Series(np.linspace(-spread / 2, spread / 2, m) + 1000.0, index=[f"model-{k}" for k in range(m)])


def _flip(df: pd.DataFrame) -> pd.DataFrame:
    out = df.rename(columns={"model_a": "model_b", "model_b": "model_a"})[["model_a", "model_b", "winner"]].copy()
    out["winner"] = out["winner"].map({"model_a": "model_b", "model_b": "model_a", "tie": "tie",
                                       "tie (bothbad)": "tie (bothbad)"})
    return out


def test_api_contract_columns_index_and_seed() -> None:
    df = simulate_battles(_truth(), 3000, seed=3)
    lb = fit_bt(df, bootstrap=50, seed=7)
    assert list(lb.columns[:5]) == ["rating", "ci_low", "ci_high", "median", "rank"]
    assert set(COLUMNS) <= set(lb.columns)
    assert lb.index.name == "model" and sorted(lb.index) == sorted(_truth().index)
    assert (lb["ci_low"] <= lb["rating"]).all() and (lb["rating"] <= lb["ci_high"]).all()
    assert lb["battles"].sum() == 2 * len(df)
    assert lb["rating"].is_monotonic_decreasing
    again = fit_bt(df, bootstrap=50, seed=7)
    pd.testing.assert_frame_equal(lb, again)
    other = fit_bt(df, bootstrap=50, seed=8)
    np.testing.assert_allclose(other["rating"], lb["rating"])
    assert not np.allclose(other["ci_low"], lb["ci_low"])


def test_recovers_known_strengths() -> None:
    truth = _truth(10, 500)
    df = simulate_battles(truth, 60_000, seed=11)
    lb = fit_bt(df, bootstrap=0)
    err = (lb["rating"] - truth.reindex(lb.index)).abs()
    assert err.max() < 15.0
    assert list(lb.index) == list(truth.sort_values(ascending=False).index)


def test_ci_coverage_close_to_95_percent() -> None:
    truth = _truth(5, 200)
    hits = []
    rng = np.random.default_rng(123)
    for _ in range(60):
        df = simulate_battles(truth, 1500, seed=rng)
        lb = fit_bt(df, bootstrap=100, seed=rng)
        t = truth.reindex(lb.index)
        hits.extend(((lb["ci_low"] <= t) & (t <= lb["ci_high"])).tolist())
    coverage = float(np.mean(hits))
    assert 0.89 <= coverage <= 0.99, coverage


def test_swapping_sides_and_flipping_winners_gives_same_ratings() -> None:
    df = simulate_battles(_truth(), 4000, seed=5)
    a = fit_bt(df, bootstrap=30, seed=1)
    b = fit_bt(_flip(df), bootstrap=30, seed=1)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)


def test_duplicating_battles_keeps_ratings_and_narrows_cis() -> None:
    df = simulate_battles(_truth(), 3000, seed=9)
    once = fit_bt(df, bootstrap=200, seed=2)
    twice = fit_bt(pd.concat([df, df], ignore_index=True), bootstrap=200, seed=2).reindex(once.index)
    np.testing.assert_allclose(twice["rating"], once["rating"], atol=1e-6)
    w1 = once["ci_high"] - once["ci_low"]
    w2 = twice["ci_high"] - twice["ci_low"]
    assert (w2 < w1).all()
    assert 0.6 < float((w2 / w1).mean()) < 0.82  # about 1/sqrt(2)


def _scipy_mle(df: pd.DataFrame) -> pd.Series:
    """Independent reference: unaggregated likelihood (ties as two half-weighted rows), scipy BFGS."""
    from scipy.optimize import minimize

    models = sorted(set(df["model_a"]) | set(df["model_b"]))
    pos = {m: k for k, m in enumerate(models)}
    a = df["model_a"].map(pos).to_numpy()
    b = df["model_b"].map(pos).to_numpy()
    y = df["winner"].map({"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}).to_numpy()

    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        th = np.concatenate([[0.0], x])
        d = th[a] - th[b]
        val = (y * np.logaddexp(0, -d) + (1 - y) * np.logaddexp(0, d)).sum()
        r = y - 1 / (1 + np.exp(-d))
        g = -(np.bincount(a, r, len(models)) - np.bincount(b, r, len(models)))
        return val, g[1:]

    res = minimize(f, np.zeros(len(models) - 1), jac=True, method="BFGS", options={"gtol": 1e-10})
    th = np.concatenate([[0.0], res.x]) * 400 / math.log(10)
    return pd.Series(th - th.mean() + 1000, index=models)


def test_equals_unregularised_mle_within_001_elo() -> None:
    df = simulate_battles(_truth(6, 400), 5000, seed=21, tie_rate=0.2)
    df.loc[df.index[:50], "winner"] = "tie (bothbad)"
    lb = fit_bt(df, bootstrap=0)
    ref = _scipy_mle(df).reindex(lb.index)
    assert float((lb["rating"] - ref).abs().max()) < 0.01


def test_anchor_named_model_and_mean() -> None:
    df = simulate_battles(_truth(), 3000, seed=4)
    base = fit_bt(df, bootstrap=20)
    assert abs(base["rating"].mean() - 1000) < 1e-9
    shifted = fit_bt(df, bootstrap=20, anchor=1500.0)
    assert abs(shifted["rating"].mean() - 1500) < 1e-9
    named = fit_bt(df, bootstrap=20, anchor=("model-3", 1200))
    assert named.loc["model-3", "rating"] == pytest.approx(1200)
    assert named.loc["model-3", "ci_low"] == pytest.approx(1200)  # anchor is exact in every round
    gaps = (named["rating"] - named.loc["model-3", "rating"]) - (base["rating"] - base.loc["model-3", "rating"])
    np.testing.assert_allclose(gaps.reindex(base.index), 0, atol=1e-9)
    assert fit_bt(df, bootstrap=0, anchor="model-0").loc["model-0", "rating"] == pytest.approx(1000)
    with pytest.raises(RatingsInputError, match="anchor model 'nope'"):
        fit_bt(df, anchor=("nope", 1000))


def test_weights_equal_duplication_and_zero_weight_drops() -> None:
    df = simulate_battles(_truth(5), 2000, seed=6)
    w = df.copy()
    w["weight"] = 1.0
    w.loc[w.index[:300], "weight"] = 2.0
    dup = pd.concat([df, df.iloc[:300]], ignore_index=True)
    np.testing.assert_allclose(fit_bt(w, bootstrap=0)["rating"], fit_bt(dup, bootstrap=0)["rating"], atol=1e-6)
    z = df.copy()
    z["weight"] = 1.0
    z.loc[z.index[:500], "weight"] = 0.0
    np.testing.assert_allclose(fit_bt(z, bootstrap=0)["rating"],
                               fit_bt(df.iloc[500:], bootstrap=0).reindex(fit_bt(z, bootstrap=0).index)["rating"],
                               atol=1e-6)
    assert fit_bt(w, bootstrap=20)["battles"].sum() == 2 * len(w)  # battles stay row counts


def test_only_wins_model_gets_finite_rating_and_is_flagged() -> None:
    df = simulate_battles(_truth(4), 800, seed=8)
    champ = pd.DataFrame({"model_a": ["champ"] * 12, "model_b": ["model-0", "model-1", "model-2"] * 4,
                          "winner": ["model_a"] * 12})
    lb = fit_bt(pd.concat([df, champ], ignore_index=True), bootstrap=30)
    assert np.isfinite(lb["rating"]).all() and np.isfinite(lb["ci_high"]).all()
    assert lb.index[0] == "champ" and bool(lb.loc["champ", "flagged"])
    assert lb["flagged"].sum() == 1
    assert lb.attrs["l2"] == AUTO_L2 and lb.attrs["mle_exists"] is False
    with pytest.raises(RatingsInputError, match="MLE does not exist"):
        fit_bt(pd.concat([df, champ]), l2=0.0)


def test_l2_prior_shrinks_towards_the_mean() -> None:
    df = simulate_battles(_truth(5, 600), 500, seed=2)
    free = fit_bt(df, bootstrap=0)
    shrunk = fit_bt(df, bootstrap=0, l2=50.0).reindex(free.index)
    assert (shrunk["rating"] - 1000).abs().sum() < 0.5 * (free["rating"] - 1000).abs().sum()
    assert list(shrunk.sort_values("rating", ascending=False).index) == list(free.index)


def test_only_ties_gives_equal_ratings() -> None:
    df = pd.DataFrame({"model_a": ["x", "y"] * 5, "model_b": ["y", "x"] * 5, "winner": ["tie", "tie (bothbad)"] * 5})
    lb = fit_bt(df, bootstrap=10)
    np.testing.assert_allclose(lb["rating"], 1000, atol=1e-9)


def test_wald_intervals_when_no_bootstrap() -> None:
    df = simulate_battles(_truth(), 4000, seed=12)
    wald = fit_bt(df, bootstrap=0)
    boot = fit_bt(df, bootstrap=300, seed=1).reindex(wald.index)
    assert wald.attrs["ci_method"] == "wald"
    ratio = (wald["ci_high"] - wald["ci_low"]) / (boot["ci_high"] - boot["ci_low"])
    assert 0.75 < float(ratio.mean()) < 1.3


def test_rank_is_one_plus_models_surely_better() -> None:
    models = ("a", "b", "c", "d")
    per = pd.DataFrame({"battles": [1] * 4, "wins": [0] * 4, "losses": [0] * 4, "ties": [1] * 4})
    lb = leaderboard_frame(models, np.array([10.0, 8.0, 7.0, 0.0]), lo=np.array([9.0, 6.0, 5.0, -1.0]),
                           hi=np.array([11.0, 10.0, 8.5, 1.0]), med=np.zeros(4), per_model=per,
                           flagged=np.zeros(4, bool), attrs={})
    assert lb["rank"].to_dict() == {"a": 1, "b": 1, "c": 2, "d": 4}


def test_multinomial_resample_is_multinomial() -> None:
    counts = np.array([5.0, 0.0, 30.0, 65.0])
    draws = multinomial_resample(np.random.default_rng(0), counts, 4000)
    assert (draws.sum(axis=1) == 100).all()
    assert (draws[:, 1] == 0).all()
    np.testing.assert_allclose(draws.mean(axis=0), counts, atol=0.6)
    p = counts / 100
    np.testing.assert_allclose(draws.var(axis=0), 100 * p * (1 - p), rtol=0.1, atol=0.05)
    again = multinomial_resample(np.random.default_rng(0), counts, 4000)
    np.testing.assert_array_equal(draws, again)


def test_many_models_lbfgs_path_matches_newton(monkeypatch: pytest.MonkeyPatch) -> None:
    df = simulate_battles(_truth(12, 400), 6000, seed=14)
    dense = fit_bt(df, bootstrap=5, seed=0)
    monkeypatch.setattr(bt_mod, "DENSE_LIMIT", 3)
    sparse = fit_bt(df, bootstrap=5, seed=0).reindex(dense.index)
    np.testing.assert_allclose(sparse["rating"], dense["rating"], atol=1e-3)
    np.testing.assert_allclose(sparse["ci_low"], dense["ci_low"], atol=1e-2)


def test_estimator_api_and_predict_proba() -> None:
    df = simulate_battles(_truth(4), 3000, seed=15)
    model = BradleyTerry(bootstrap=0).fit(aggregate(df))
    p = model.predict_proba("model-3", "model-0")
    diff = model.ratings_["model-3"] - model.ratings_["model-0"]
    assert p == pytest.approx(1 / (1 + 10 ** (-diff / 400)))
    assert p > 0.5
    with pytest.raises(RatingsInputError):
        BradleyTerry().predict_proba("a", "b")
    with pytest.raises(RatingsInputError):
        BradleyTerry(bootstrap=-1)


def test_real_arena_hard_battles_order_matches_win_rates_against_baseline(shared_data) -> None:
    path = shared_data / "arena_hard_v0.1" / "judge_battles.jsonl"
    df = pd.read_json(path, lines=True)
    baseline = "claude-3-haiku-20240307"
    lb = fit_bt(path, bootstrap=100, seed=0)
    score = df["winner"].map({"model_a": 1.0, "model_b": 0.0, "tie": 0.5})
    vs = df.assign(s=np.where(df["model_a"] == baseline, 1 - score, score),
                   model=np.where(df["model_a"] == baseline, df["model_b"], df["model_a"]))
    win_rate = vs.groupby("model")["s"].mean().sort_values(ascending=False)
    fitted = [m for m in lb.index if m != baseline]
    assert fitted == list(win_rate.index)
    assert lb.index[-1] == baseline  # every model beats the baseline more often than not
    assert lb.loc[baseline, "battles"] == len(df)
    assert (lb["ci_high"] - lb["ci_low"] > 0).all()


def test_tiny_data_bootstrap_rounds_without_mle_get_the_prior() -> None:
    df = pd.DataFrame({"model_a": ["x", "x", "y", "x"], "model_b": ["y", "y", "x", "y"],
                       "winner": ["model_a", "model_b", "model_b", "tie"]})
    lb = fit_bt(df, bootstrap=200, seed=0)
    assert lb.attrs["mle_exists"] is True and lb.attrs["l2"] == 0.0
    assert 0 < lb.attrs["bootstrap_prior_rounds"] < 200
    assert np.isfinite(lb[["ci_low", "ci_high"]].to_numpy()).all()
    assert lb.loc["x", "ci_high"] - lb.loc["x", "ci_low"] < 2000
