"""Index formulas and statistics against hand computations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from banditarena.bandits import (
    KLUCB,
    UCB1,
    UCBV,
    DiscountedUCB,
    EpsilonGreedy,
    LinTS,
    LinUCB,
    SlidingWindowUCB,
)


def _kl(p, q):
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def test_ucb1_index_matches_formula():
    p = UCB1(3, alpha=0.7, seed=0)
    p.update([0, 0, 1, 2, 2, 2], [1.0, 0.0, 1.0, 0.5, 0.5, 0.0])
    t = 6
    expected = [0.5 + 0.7 * math.sqrt(2 * math.log(t) / 2), 1.0 + 0.7 * math.sqrt(2 * math.log(t) / 1),
                (1 / 3) + 0.7 * math.sqrt(2 * math.log(t) / 3)]
    np.testing.assert_allclose(p._index(), expected, rtol=1e-12)
    assert p.select()[0][0] == 1


def test_klucb_index_solves_the_kl_equation():
    p = KLUCB(2, seed=0)
    p.update([0] * 10 + [1] * 40, [1] * 3 + [0] * 7 + [1] * 30 + [0] * 10)
    idx = p._index()
    t = 50
    for arm, (mean, n) in enumerate([(0.3, 10), (0.75, 40)]):
        assert idx[arm] > mean
        assert n * _kl(mean, idx[arm]) == pytest.approx(math.log(t), rel=1e-6)


def test_ucbv_uses_the_variance():
    p = UCBV(2, seed=0)
    p.update([0] * 20 + [1] * 20, [0.5] * 20 + [0.0, 1.0] * 10)   # same mean, arm 1 is noisy
    idx = p._index()
    assert idx[1] > idx[0]
    e = 1.2 * math.log(40)
    assert idx[0] == pytest.approx(0.5 + 3 * e / 20)
    assert idx[1] == pytest.approx(0.5 + math.sqrt(2 * 0.25 * e / 20) + 3 * e / 20)


def test_sliding_window_counts_only_the_window():
    p = SlidingWindowUCB(2, window=5, seed=0)
    for a, r in [(0, 1.0)] * 4 + [(1, 0.0)] * 3:
        p.update([a], [r])
    np.testing.assert_allclose(p.counts, [2, 3])
    np.testing.assert_allclose(p.means, [1.0, 0.0])
    p.update([1] * 7, [1.0] * 7)                 # a batch longer than the window
    np.testing.assert_allclose(p.counts, [0, 5])
    q = SlidingWindowUCB(2, window=5, seed=0)
    q.load_state_dict(json.loads(json.dumps(p.state_dict())))
    np.testing.assert_allclose(q.means, p.means)


def test_discounted_counts_decay_per_reward():
    p = DiscountedUCB(2, discount=0.5, seed=0)
    p.update([0], [1.0])
    p.update([1, 1], [1.0, 0.0])
    np.testing.assert_allclose(p.counts, [0.25, 1.5])
    np.testing.assert_allclose(p.means, [1.0, 1 / 3])
    q = DiscountedUCB(2, discount=0.5, seed=0)
    for a, r in [(0, 1.0), (1, 1.0), (1, 0.0)]:
        q.update([a], [r])
    np.testing.assert_allclose(q.counts, p.counts)


def test_epsilon_greedy_initial_value_and_decay():
    p = EpsilonGreedy(3, epsilon=0.0, initial_value=0.0, seed=0)
    p.update([1], [0.4])
    assert p.select()[0][0] == 1                 # untried arms are worth 0 < 0.4
    q = EpsilonGreedy(3, epsilon=0.0, seed=0)
    q.update([1], [0.4])
    assert q.select()[0][0] in (0, 2)            # default: untried arms first


def test_discounted_linear_model_matches_weighted_ridge():
    rng = np.random.default_rng(0)
    d, g, l2 = 3, 0.9, 0.5
    x = rng.standard_normal((12, d))
    a = np.array([0, 1] * 6)
    r = rng.standard_normal(12)
    p = LinUCB(2, d, alpha=0.3, l2=l2, discount=g, seed=0)
    p.update(a[:5], r[:5], x[:5])
    for i in range(5, 12):
        p.update(a[i:i + 1], r[i:i + 1], x[i:i + 1])
    w = g ** np.arange(11, -1, -1)                # weight of each reward at the end
    q = rng.standard_normal(d)
    for arm in range(2):
        m = a == arm
        A = l2 * np.eye(d) + (x[m] * w[m, None]).T @ x[m]
        theta = np.linalg.solve(A, (x[m] * w[m, None]).T @ r[m])
        assert p.scores(q)[arm] == pytest.approx(q @ theta + 0.3 * math.sqrt(q @ np.linalg.solve(A, q)), rel=1e-8)
    # the batched float32 scorer picks the same arms as the exact scores
    big = rng.standard_normal((500, d))
    arms, _ = p.select(500, big)
    sc = p.scores(big)
    assert (sc[np.arange(500), arms] == sc.max(axis=1)).all()


def test_lints_samples_around_the_ridge_mean():
    rng = np.random.default_rng(1)
    p = LinTS(2, 2, alpha=0.05, seed=0)
    x = rng.standard_normal((300, 2))
    p.update(np.zeros(300, dtype=int), x @ np.array([1.0, -1.0]), x)
    p.update(np.ones(300, dtype=int), x @ np.array([-1.0, 1.0]), x)
    arms, props = p.select(200, np.tile([1.0, -1.0], (200, 1)))
    assert (arms == 0).all() and (props > 0.99).all()


def test_sherman_morrison_stays_exact_over_many_updates():
    rng = np.random.default_rng(2)
    p = LinUCB(1, 4, seed=0)
    x = rng.standard_normal((1000, 4))
    r = rng.standard_normal(1000)
    for i in range(1000):
        p.update([0], r[i:i + 1], x[i:i + 1])
    A = np.eye(4) + x.T @ x
    np.testing.assert_allclose(p.theta[0], np.linalg.solve(A, x.T @ r), rtol=1e-9, atol=1e-12)
