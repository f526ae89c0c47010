"""Reward helpers, decision logs and the simulation harness."""

from __future__ import annotations

import json

import numpy as np
import pytest

from banditarena.bandits import (
    UCB1,
    AdversarialEnv,
    BanditInputError,
    BernoulliEnv,
    DecisionLog,
    DecisionRecord,
    DriftingEnv,
    GaussianEnv,
    LearningProgress,
    LinearEnv,
    LinUCB,
    PiecewiseStationaryEnv,
    QuantileNormalizer,
    SupervisedEnv,
    ThompsonSampling,
    context_hash,
    plot_regret,
    regret_curves,
    simulate,
)


def test_quantile_normalizer_maps_20_80_percentiles():
    q = QuantileNormalizer()
    vals = np.arange(101, dtype=float)       # 20th pct = 20, 80th = 80
    q.update(vals)
    assert q.quantiles() == (20.0, 80.0)
    np.testing.assert_allclose(q.transform([0, 20, 50, 80, 100]), [0, 0, 0.5, 1, 1])
    fresh = QuantileNormalizer()
    assert fresh.transform([3.0])[0] == 0.5
    out = fresh([5.0, 5.0])                   # update then transform: degenerate quantiles -> 0.5
    np.testing.assert_allclose(out, [0.5, 0.5])
    np.testing.assert_allclose(fresh.transform([6.0, 4.0]), [1.0, 0.0])


def test_quantile_normalizer_window_and_state():
    q = QuantileNormalizer(0.25, 0.75, window=4)
    q.update([100, 100, 100, 100])
    q.update([0, 1, 2, 3])                   # the window forgot the 100s
    assert q.quantiles() == pytest.approx((0.75, 2.25))
    r = QuantileNormalizer()
    r.load_state_dict(json.loads(json.dumps(q.state_dict())))
    assert r.quantiles() == q.quantiles()
    np.testing.assert_allclose(r([1.5, 9]), q([1.5, 9]))
    with pytest.raises(BanditInputError, match="not finite"):
        q.update([np.nan])
    with pytest.raises(BanditInputError):
        QuantileNormalizer(0.8, 0.2)


def test_learning_progress():
    lp = LearningProgress(3, window=4)
    assert (lp.progress() == 0).all()
    out = lp.update([0] * 8, [0, 0, 0, 0, 1, 1, 1, 1])
    assert out[-1] == pytest.approx(1.0)      # 0% -> 100% success
    lp.update([1] * 8, [1] * 8)               # mastered: no progress
    lp.update([2] * 8, [1, 1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_allclose(lp.progress(), [1.0, 0.0, 1.0])
    signed = LearningProgress(1, window=4, absolute=False)
    signed.update([0] * 8, [1, 1, 1, 1, 0, 0, 0, 0])
    assert signed.progress()[0] == pytest.approx(-1.0)
    lp.update([0] * 4, [1, 1, 1, 1])          # the window slides: last 4 vs the 4 before
    assert lp.progress()[0] == pytest.approx(0.0)
    assert lp.success_rate()[0] == 1.0
    new = lp.add_arm()
    assert new == 3 and lp.progress()[3] == 0.0
    lp2 = LearningProgress(1)
    lp2.load_state_dict(json.loads(json.dumps(lp.state_dict())))
    np.testing.assert_allclose(lp2.progress(), lp.progress())
    with pytest.raises(BanditInputError, match="not in"):
        lp.update([0], [2.0])
    with pytest.raises(BanditInputError, match="arms must be integers"):
        lp.update([9], [1.0])


def test_decision_log_round_trip_and_delayed_rewards():
    pol = LinUCB(3, 2, seed=0)
    log = DecisionLog(policy="LinUCB")
    x = np.random.default_rng(0).standard_normal((4, 2))
    arms, props = pol.select(4, x)
    steps = log.record(arms, props, x)
    assert list(steps) == [0, 1, 2, 3]
    log.set_rewards([2, 0], [1.0, 0.5])
    rows = log.to_dicts()
    json.dumps(rows, allow_nan=False)
    assert rows[0]["reward"] == 0.5 and rows[1]["reward"] is None
    assert rows[0]["context_hash"] == context_hash(x[0]) and len(rows[0]["context_hash"]) == 16
    assert set(rows[0]) >= {"step", "policy", "arm", "propensity", "context", "context_hash", "reward"}
    back = DecisionLog.from_dicts(rows)
    a = back.arrays()
    assert list(a["steps"]) == [0, 2] and a["contexts"].shape == (2, 2)
    assert back.arrays(rewarded_only=False)["arms"].shape == (4,)
    rec = DecisionRecord.from_dict({"arm": 1, "propensity": float("nan"), "run": "r1"})
    assert rec.to_dict()["propensity"] is None and rec.to_dict()["run"] == "r1"
    ts = ThompsonSampling(2, propensity_samples=0)
    log2 = DecisionLog()
    log2.record(*ts.select(2))
    assert log2.to_dicts()[0]["propensity"] is None
    with pytest.raises(BanditInputError, match="unknown step 9"):
        log.set_rewards([9], [1.0])


def test_environments_shapes_and_means():
    envs = [BernoulliEnv([0.1, 0.9], seed=0), GaussianEnv([0.0, 1.0], seed=0),
            PiecewiseStationaryEnv([[0.1, 0.9], [0.9, 0.1]], segment_length=5, seed=0),
            DriftingEnv(3, period=10, seed=0), AdversarialEnv([0.6, 0.6], seed=0), LinearEnv(3, 4, seed=0),
            SupervisedEnv.digits(seed=0)]
    for env in envs:
        rd = env.sample(12)
        assert rd.rewards.shape == (12, env.n_arms) and rd.means.shape == (12, env.n_arms)
        assert (rd.contexts is None) == (env.dim is None)
    pw = PiecewiseStationaryEnv([[0.1, 0.9], [0.9, 0.1]], segment_length=5, seed=0)
    assert pw.sample(10).means[[0, 4, 5, 9], 0].tolist() == [0.1, 0.1, 0.9, 0.9]
    dg = SupervisedEnv.digits(seed=0)
    assert dg.n_arms == 10 and dg.dim == 64
    rd = dg.sample(3000)                     # more than one pass over the 1797 images
    assert (rd.rewards.sum(axis=1) == 1).all()
    adv = AdversarialEnv([0.6, 0.6], penalty=0.5, memory=10, seed=0)
    adv.observe(np.zeros(10, dtype=int))
    np.testing.assert_allclose(adv.sample(1).means[0], [0.1, 0.6])


def test_simulate_regret_curves_and_plot(tmp_path):
    res = simulate(UCB1(2, seed=0), BernoulliEnv([0.2, 0.8], seed=0), 200, batch_size=7)
    assert res.arms.shape == (200,) and res.cumulative_regret.shape == (200,)
    assert np.all(np.diff(res.cumulative_regret) >= 0)
    assert res.decisions_per_second > 0
    curves = regret_curves({"ucb1": lambda s: UCB1(2, seed=s),
                            "ts": lambda s: ThompsonSampling(2, seed=s)},
                           lambda s: BernoulliEnv([0.2, 0.8], seed=s), horizon=300, n_runs=3)
    assert set(curves) == {"ucb1", "ts"} and curves["ts"].mean.shape == (300,)
    assert (curves["ts"].low <= curves["ts"].high).all()
    path = tmp_path / "regret.png"
    fig = plot_regret(curves, path=str(path))
    assert path.stat().st_size > 1000 and fig.axes[0].get_ylabel() == "cumulative regret"
    with pytest.raises(BanditInputError, match="policy has 3 arms but the environment has 2"):
        simulate(UCB1(3), BernoulliEnv([0.2, 0.8]), 10)


def test_decision_records_helper_for_the_run_store():
    from banditarena.bandits import EpsilonGreedy, decision_records

    pol = EpsilonGreedy(3, seed=0)
    arms, props = pol.select(3)
    rows = decision_records(arms, props, None, [1.0, 0.0, 1.0], policy="EpsilonGreedy", run="r7", start_step=10)
    assert [r["step"] for r in rows] == [10, 11, 12]
    assert rows[0] == {"step": 10, "policy": "EpsilonGreedy", "arm": int(arms[0]), "propensity": float(props[0]),
                       "context": None, "context_hash": None, "reward": 1.0, "run": "r7"}
    json.dumps(rows, allow_nan=False)
    pending = decision_records(arms, props, np.ones(2))
    assert pending[2]["reward"] is None and pending[2]["context"] == [1.0, 1.0]
