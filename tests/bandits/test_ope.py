"""Off-policy evaluation: IPS, SNIPS and DR cover the true value of the target policy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from banditarena.bandits import (
    UCB1,
    BanditInputError,
    BernoulliEnv,
    DecisionLog,
    EpsilonGreedy,
    doubly_robust,
    ips,
    simulate,
    snips,
    target_probabilities,
)

MU = np.array([0.2, 0.5, 0.4, 0.7])
TARGET = np.array([0.1, 0.2, 0.3, 0.4])


def _context_free_log(seed: int, n: int = 600):
    """Logs of an adaptive epsilon-greedy policy, through DecisionLog and its JSON rows."""
    log = DecisionLog(policy="EpsilonGreedy")
    simulate(EpsilonGreedy(4, epsilon=0.5, seed=seed), BernoulliEnv(MU, seed=seed + 1), n, batch_size=20, log=log)
    rows = json.loads(json.dumps(log.to_dicts()))
    return DecisionLog.from_dicts(rows).arrays()


def test_ips_snips_dr_cover_true_value_context_free():
    truth = float(TARGET @ MU)
    hits = {"ips": 0, "snips": 0, "dr": 0}
    reps = 120
    for rep in range(reps):
        d = _context_free_log(rep)
        tgt = np.broadcast_to(TARGET, (d["arms"].shape[0], 4))
        for name, est in (("ips", ips(d["arms"], d["rewards"], d["propensities"], tgt)),
                          ("snips", snips(d["arms"], d["rewards"], d["propensities"], tgt)),
                          ("dr", doubly_robust(d["arms"], d["rewards"], d["propensities"], tgt))):
            hits[name] += est.ci_low <= truth <= est.ci_high
    for name, h in hits.items():
        assert h / reps >= 0.9, (name, h / reps)


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def test_ips_and_dr_cover_true_value_contextual_and_dr_is_tighter():
    rng = np.random.default_rng(0)
    k, d, n = 3, 4, 800
    theta = rng.standard_normal((k, d)) * 0.5
    w_log, w_tgt = rng.standard_normal((d, k)), rng.standard_normal((d, k)) * 2
    xs = rng.standard_normal((400_000, d))
    truth = float((_softmax(xs @ w_tgt) * (xs @ theta.T)).sum(axis=1).mean())
    hits_ips = hits_dr = 0
    widths_ips, widths_dr = [], []
    reps = 100
    for rep in range(reps):
        r = np.random.default_rng(100 + rep)
        x = r.standard_normal((n, d))
        p_log = _softmax(x @ w_log)
        arms = (p_log.cumsum(axis=1) > r.random((n, 1))).argmax(axis=1)
        prop = p_log[np.arange(n), arms]
        rew = (x @ theta.T)[np.arange(n), arms] + 0.5 * r.standard_normal(n)
        tgt = _softmax(x @ w_tgt)
        e1 = ips(arms, rew, prop, tgt)
        e2 = doubly_robust(arms, rew, prop, tgt, x)
        hits_ips += e1.ci_low <= truth <= e1.ci_high
        hits_dr += e2.ci_low <= truth <= e2.ci_high
        widths_ips.append(e1.ci_high - e1.ci_low)
        widths_dr.append(e2.ci_high - e2.ci_low)
    assert hits_ips / reps >= 0.9
    assert hits_dr / reps >= 0.9
    assert np.mean(widths_dr) < np.mean(widths_ips)


def test_estimators_match_hand_computation():
    arms = np.array([0, 1, 1, 0])
    rew = np.array([1.0, 0.0, 1.0, 1.0])
    prop = np.array([0.5, 0.5, 0.25, 0.5])
    tgt = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    w = np.array([2.0, 2.0, 2.0, 2.0])
    e = ips(arms, rew, prop, tgt)
    assert e.estimate == pytest.approx(np.mean(w * rew))
    assert e.std_error == pytest.approx(np.std(w * rew, ddof=1) / 2)
    assert snips(arms, rew, prop, tgt).estimate == pytest.approx((w * rew).sum() / w.sum())
    assert ips(arms, rew, prop, tgt[np.arange(4), arms]).estimate == e.estimate
    assert ips(arms, rew, prop, tgt, clip=1.0).estimate == pytest.approx(np.mean(rew))
    assert e.as_dict()["method"] == "ips"
    # effective sample size: all weights equal -> n; one decision carrying the weight -> about 1
    assert e.ess == pytest.approx(4.0)
    lop = snips(arms, rew, np.array([0.5, 0.5, 0.01, 0.5]), tgt)
    assert lop.ess == pytest.approx((2 + 2 + 50 + 2) ** 2 / (4 + 4 + 2500 + 4)) and lop.ess < 1.3


def test_target_probabilities_from_policies():
    pol = UCB1(3, seed=0)
    pol.update([0, 1, 2], [1.0, 0.0, 0.0])
    t = target_probabilities(pol, n=5)
    assert t.shape == (5, 3) and np.allclose(t[:, 0], 1.0)


def test_ope_bad_inputs():
    with pytest.raises(BanditInputError, match="propensities: entry 1 is 0.0"):
        ips([0, 1], [1.0, 1.0], [0.5, 0.0], [0.5, 0.5])
    with pytest.raises(BanditInputError, match="same length"):
        snips([0, 1], [1.0], [0.5, 0.5], [0.5, 0.5])
    with pytest.raises(BanditInputError, match=r"shape \(n, n_arms\)"):
        doubly_robust([0, 1], [1.0, 1.0], [0.5, 0.5], [0.5, 0.5])
    with pytest.raises(BanditInputError, match="not finite"):
        ips([0, 1], [np.nan, 1.0], [0.5, 0.5], [0.5, 0.5])
