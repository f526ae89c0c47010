"""Online Elo, win-rate matrices, style control, consistency metrics, active sampling, import purity."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import banditarena.ratings as R
from banditarena.ratings import RatingsInputError


def _truth(m: int = 6, spread: float = 300.0) -> pd.Series:
    return pd.Series(np.linspace(-spread / 2, spread / 2, m) + 1000.0, index=[f"m{k}" for k in range(m)])


# ------------------------------------------------------------------------------------------ online Elo
def test_online_elo_matches_hand_computation() -> None:
    rows = [("a", "b", "model_a"), ("b", "c", "tie"), ("c", "a", "model_a")]
    df = pd.DataFrame(rows, columns=["model_a", "model_b", "winner"])
    r = {"a": 1000.0, "b": 1000.0, "c": 1000.0}
    for x, y, w in rows:
        e = 1 / (1 + 10 ** ((r[y] - r[x]) / 400))
        s = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[w]
        r[x] += 32 * (s - e)
        r[y] -= 32 * (s - e)
    got = R.online_elo(df, k=32)
    for name, value in r.items():
        assert got[name] == pytest.approx(value)
    live = R.OnlineElo(k=32)
    for x, y, w in rows:
        live.update(x, y, w)
    pd.testing.assert_series_equal(live.ratings, got)
    assert live.leaderboard().loc["a", "battles"] == 2
    with pytest.raises(RatingsInputError):
        live.update("a", "b", "A>B")


def test_online_elo_orders_strengths_and_respects_parameters() -> None:
    truth = _truth(5, 400)
    df = R.simulate_battles(truth, 20_000, seed=3)
    elo = R.online_elo(df, k=4)
    assert list(elo.index) == list(truth.sort_values(ascending=False).index)
    assert elo.mean() == pytest.approx(1000)  # zero-sum updates
    wide = R.online_elo(df, k=4, scale=800, init=1500)
    assert wide.mean() == pytest.approx(1500)
    assert (wide.max() - wide.min()) > (elo.max() - elo.min())


# ------------------------------------------------------------------------------------------- matrices
def test_win_rate_and_expected_matrices() -> None:
    rows = [{"model_a": "a", "model_b": "b", "winner": w} for w in ["model_a", "model_a", "tie", "model_b"]]
    rows.append({"model_a": "c", "model_b": "a", "winner": "model_a"})
    wr = R.win_rate_matrix(rows)
    assert wr.loc["a", "b"] == pytest.approx(2.5 / 4)
    assert wr.loc["b", "a"] == pytest.approx(1.5 / 4)
    assert wr.loc["c", "a"] == 1.0 and np.isnan(wr.loc["b", "c"]) and np.isnan(wr.loc["a", "a"])
    counts = R.battle_count_matrix(rows)
    assert counts.loc["a", "b"] == 4 and counts.loc["b", "a"] == 4 and counts.loc["b", "c"] == 0
    exp = R.expected_win_matrix(pd.Series({"x": 1400.0, "y": 1000.0}))
    assert exp.loc["x", "y"] == pytest.approx(10 / 11)
    np.testing.assert_allclose(exp.to_numpy() + exp.to_numpy().T, 1.0)
    lb = R.fit_bt(R.simulate_battles(_truth(), 30_000, seed=1), bootstrap=0)
    observed = R.win_rate_matrix(R.simulate_battles(_truth(), 30_000, seed=1))
    expected = R.expected_win_matrix(lb).reindex(index=observed.index, columns=observed.columns)
    mask = ~np.isnan(observed.to_numpy())
    assert np.abs(observed.to_numpy()[mask] - expected.to_numpy()[mask]).max() < 0.05


# ---------------------------------------------------------------------------------------------- style
def test_style_counts() -> None:
    text = "# Title\n\nSome **bold** and __also bold__.\n\n- one\n- two\n1. first\n```\n# not a header\n- no\n```\n"
    c = R.style_counts(text)
    assert c == {"length": len(text.split()), "headers": 1, "lists": 3, "bold": 2}


def _style_battles(n: int, seed: int) -> pd.DataFrame:
    """Equal-strength models except via style: 'verbose' writes long answers; judges like length."""
    rng = np.random.default_rng(seed)
    models = np.array(["verbose", "plain-1", "plain-2", "plain-3"], dtype=object)
    a = rng.integers(0, 4, n)
    b = (a + rng.integers(1, 4, n)) % 4
    la = np.where(a == 0, rng.integers(300, 600, n), rng.integers(100, 300, n))
    lb = np.where(b == 0, rng.integers(300, 600, n), rng.integers(100, 300, n))
    f = (la - lb) / (la + lb)
    p = 1 / (1 + np.exp(-2.5 * f))
    u = rng.random(n)
    winner = np.where(u < 0.1, "tie", np.where(rng.random(n) < p, "model_a", "model_b"))
    return pd.DataFrame({"model_a": models[a], "model_b": models[b], "winner": winner,
                         "length_a": la, "length_b": lb,
                         "headers_a": rng.integers(0, 3, n), "headers_b": rng.integers(0, 3, n),
                         "lists_a": rng.integers(0, 5, n), "lists_b": rng.integers(0, 5, n),
                         "bold_a": rng.integers(0, 4, n), "bold_b": rng.integers(0, 4, n)})


def test_style_control_removes_the_length_advantage() -> None:
    df = _style_battles(6000, seed=0)
    plain = R.fit_bt(df, bootstrap=0)
    assert plain.index[0] == "verbose" and plain.loc["verbose", "rating"] - 1000 > 40
    res = R.fit_style_bt(df, bootstrap=30, seed=0)
    coefs = res.coefficients
    assert list(coefs.index) == ["length", "headers", "lists", "bold"]
    assert coefs.loc["length", "ci_low"] > 0.2
    for f in ("headers", "lists", "bold"):
        assert coefs.loc[f, "ci_low"] < 0 < coefs.loc[f, "ci_high"]
    lb = res.leaderboard
    assert set(lb.columns) >= {"rating", "ci_low", "ci_high", "rank", "battles"}
    assert abs(lb.loc["verbose", "rating"] - 1000) < 25
    assert (lb["rank"] == 1).all()  # no model is separable once style is controlled
    again = R.fit_style_bt(df, bootstrap=30, seed=0)
    pd.testing.assert_frame_equal(again.coefficients, coefs)


def test_style_features_from_texts() -> None:
    rows = []
    for k in range(300):
        long_a = k % 2 == 0
        ta = "# H\n- a\n- b\n**x** " + "word " * (80 if long_a else 10)
        tb = "plain " * (10 if long_a else 80)
        rows.append({"model_a": f"m{k % 3}", "model_b": f"m{(k + 1) % 3}",
                     "winner": "model_a" if long_a else "model_b", "response_a": ta, "response_b": tb})
    res = R.fit_style_bt(rows, features=["length"], bootstrap=0, l2=0.1)
    assert res.coefficients.loc["length", "coef"] > 1.0
    with pytest.raises(RatingsInputError, match="style feature 'length'"):
        R.fit_style_bt(pd.DataFrame(rows).drop(columns=["response_a", "response_b"]), bootstrap=0)


# ---------------------------------------------------------------------------------------- consistency
def _lb(ratings: dict[str, float], half: float) -> pd.DataFrame:
    r = pd.Series(ratings, dtype=float)
    return pd.DataFrame({"rating": r, "ci_low": r - half, "ci_high": r + half})


def test_consistency_metrics_on_known_cases() -> None:
    ref = _lb({"a": 100, "b": 50, "c": 0, "d": -50}, 10)
    same = _lb({"a": 10, "b": 5, "c": 0, "d": -5}, 1)
    rev = _lb({"a": -100, "b": -50, "c": 0, "d": 50}, 10)
    assert R.spearman(same, ref) == pytest.approx(1) and R.kendall(same, ref) == pytest.approx(1)
    assert R.spearman(rev, ref) == pytest.approx(-1) and R.kendall(rev, ref) == pytest.approx(-1)
    assert R.agreement_with_ci(same, ref) == pytest.approx(1)
    assert R.agreement_with_ci(rev, ref) == pytest.approx(-1)
    blurry = _lb({"a": 10, "b": 5, "c": 0, "d": -5}, 100)
    assert R.agreement_with_ci(blurry, ref) == 0
    assert R.separability(blurry) == 0 and R.separability(ref) == 1
    partly = _lb({"a": 100, "b": 95, "c": 0, "d": -50}, 10)  # a-b overlap: 5 of 6 pairs separated
    assert R.separability(partly) == pytest.approx(5 / 6)
    assert R.agreement_with_ci(partly, ref) == pytest.approx(5 / 6)
    assert R.pair_rank_brier(_lb({"a": 100, "b": 50, "c": 0, "d": -50}, 1e-3), ref) < 1e-9
    assert R.pair_rank_brier(_lb({"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0}, 1.0), ref) == pytest.approx(0.25)
    points = pd.DataFrame({"rating": ref["rating"]})  # a reference without CIs is taken as exact
    assert R.agreement_with_ci(partly, points) == pytest.approx(5 / 6)
    assert R.agreement_with_ci(partly, ref["rating"]) == pytest.approx(5 / 6)
    with pytest.raises(RatingsInputError, match="separability needs a leaderboard"):
        R.separability(points)
    out = R.leaderboard_consistency(same, ref)
    assert out["n_models"] == 4 and out["agreement_with_ci"] == 1 and out["reference_separability"] == 1
    with pytest.raises(RatingsInputError, match="share 1 model"):
        R.spearman(pd.Series({"a": 1.0, "x": 2.0}), ref)


def test_brier_score_of_battles() -> None:
    rows = [{"model_a": "x", "model_b": "y", "winner": w} for w in ["model_a", "model_b", "tie"]]
    r = pd.Series({"x": 1400.0, "y": 1000.0})
    p = 10 / 11
    expected = ((p - 1) ** 2 + p ** 2 + (p - 0.5) ** 2) / 3
    assert R.brier_score(r, rows) == pytest.approx(expected)
    assert R.brier_score(pd.Series({"x": 1000.0, "y": 1000.0}), rows) == pytest.approx((0.25 + 0.25 + 0) / 3)
    with pytest.raises(RatingsInputError, match="no entry for model 'y'"):
        R.brier_score(pd.Series({"x": 1.0}), rows)


def test_consistency_of_two_fits_on_independent_data() -> None:
    truth = _truth(8, 600)
    a = R.fit_bt(R.simulate_battles(truth, 8000, seed=1), bootstrap=50)
    b = R.fit_bt(R.simulate_battles(truth, 8000, seed=2), bootstrap=50)
    held_out = R.simulate_battles(truth, 2000, seed=3)
    out = R.leaderboard_consistency(a, b, battles=held_out)
    assert out["spearman"] > 0.95 and out["kendall"] > 0.85
    assert out["agreement_with_ci"] > 0.8 and out["pair_rank_brier"] < 0.05
    assert abs(out["brier"] - R.brier_score(truth, held_out)) < 0.005
    assert out["brier"] < R.brier_score(truth * 0, held_out) - 0.05  # far better than a coin flip


# ------------------------------------------------------------------------------------ active sampling
def test_new_model_and_unplayed_pairs_get_priority() -> None:
    df = R.simulate_battles(_truth(4), 2000, seed=1)
    w = R.pair_sampling_weights(df, models=["newbie"])
    assert w["prob"].sum() == pytest.approx(1)
    assert len(w) == 10
    top = w.head(4)
    assert (top[["model_a", "model_b"]] == "newbie").any(axis=1).all()
    pairs = R.propose_pairs(df, 200, models=["newbie"], seed=0)
    share = np.mean(["newbie" in p for p in pairs])
    assert share > 0.5  # the 4 new pairs out of 10 get most of the budget
    assert pairs == R.propose_pairs(df, 200, models=["newbie"], seed=0)
    firsts = {p[0] for p in pairs}
    assert "newbie" in firsts  # sides are randomised


def test_variance_rule_prefers_uncertain_pairs_and_uniform_is_flat() -> None:
    rows = [{"model_a": "a", "model_b": "b", "winner": "model_a" if k % 3 else "model_b"} for k in range(300)]
    rows += [{"model_a": "b", "model_b": "c", "winner": "model_a" if k % 2 else "model_b"} for k in range(6)]
    w = R.pair_sampling_weights(rows).set_index(["model_a", "model_b"])
    assert w.loc[("a", "b"), "prob"] < w.loc[("b", "c"), "prob"]
    assert w.loc[("a", "b"), "variance"] < w.loc[("b", "c"), "variance"]
    u = R.pair_sampling_weights(rows, method="uniform")
    np.testing.assert_allclose(u["prob"], 1 / 3)
    greedy = R.propose_pairs(rows, 2, greedy=True)
    assert len(set(map(frozenset, greedy))) == 2
    assert R.propose_pairs(None, 3, models=["p", "q"], seed=1) and len(R.propose_pairs(None, 3, models=["p", "q"])) == 3
    with pytest.raises(RatingsInputError):
        R.pair_sampling_weights(rows, method="thompson")


def test_active_sampling_shrinks_worst_ci_faster_than_uniform() -> None:
    truth = _truth(6, 400)
    results = {}
    for method in ("variance", "uniform"):
        rng = np.random.default_rng(5)
        battles = R.simulate_battles(truth, 60, seed=rng)
        counts = R.aggregate(battles)
        for _ in range(15):
            pairs = R.propose_pairs(counts, 100, models=list(truth.index), method=method, seed=rng)
            counts = counts.merge(R.aggregate(R.simulate_battles(truth, pairs=pairs, seed=rng)))
        lb = R.fit_bt(counts, bootstrap=0)
        results[method] = float((lb["ci_high"] - lb["ci_low"]).max())
    assert results["variance"] <= results["uniform"] * 1.02


# -------------------------------------------------------------------------------------------- imports
def test_ratings_imports_nothing_else_from_banditarena() -> None:
    root = Path(R.__file__).parent
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("banditarena"):
                assert node.module.startswith("banditarena.ratings"), f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("banditarena") or alias.name.startswith("banditarena.ratings")


def test_import_is_light() -> None:
    code = ("import sys, banditarena.ratings; "
            "print(sorted(m for m in ('torch','transformers','sentence_transformers','duckdb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_adjacent_rule_focuses_on_neighbours_in_the_ranking() -> None:
    truth = pd.Series([0.0, 30.0, 400.0, 800.0], index=["a", "b", "c", "d"])
    df = R.simulate_battles(truth, 4000, seed=2)
    w = R.pair_sampling_weights(df, method="adjacent").set_index(["model_a", "model_b"])
    assert w["prob"].sum() == pytest.approx(1)
    # the close pair a-b decides the ranking; the far pair a-d tells little
    assert w.loc[("a", "b"), "prob"] > 3 * w.loc[("a", "d"), "prob"]
    assert w["prob"].idxmax() == ("a", "b")
