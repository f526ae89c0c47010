"""Propensities: distributions sum to 1 and select() reports the probability of the chosen arm."""

from __future__ import annotations

import numpy as np
import pytest

from banditarena.bandits import EXP3, UCB1, EpsilonGreedy, LinTS, LinUCB, ThompsonSampling
from tests.bandits.bandit_cases import ALL, CONTEXT_FREE, D, K, feed


@pytest.mark.parametrize("name", sorted(ALL))
def test_probabilities_sum_to_one(name):
    p = ALL[name](0)
    feed(p, 80, seed=2)
    ctx = None if p.dim is None else np.random.default_rng(0).standard_normal((5, D))
    probs = p.probabilities(ctx)
    probs = np.atleast_2d(probs)
    assert probs.shape[-1] == K
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-12)
    assert (probs >= 0).all()


@pytest.mark.parametrize("name", ["eps", "eps_window", "ucb1", "klucb", "ucbv", "exp3", "d_ucb", "sw_ucb"])
def test_exact_propensities_equal_probabilities(name):
    p = CONTEXT_FREE[name](1)
    feed(p, 60, seed=3)
    probs = p.probabilities()
    arms, props = p.select(500)
    np.testing.assert_allclose(props, probs[arms])
    # empirical frequencies follow the stated distribution
    freq = np.bincount(arms, minlength=K) / 500
    assert np.abs(freq - probs).max() < 0.08


def test_epsilon_greedy_distribution_is_exact():
    p = EpsilonGreedy(4, epsilon=0.2, seed=0)
    p.update([0, 1, 2, 3], [0.1, 0.9, 0.3, 0.2])
    np.testing.assert_allclose(p.probabilities(), [0.05, 0.85, 0.05, 0.05])
    d = EpsilonGreedy(4, epsilon=0.4, decay=1.0, min_epsilon=0.05, seed=0)
    d.update([0, 1, 2, 3], [0.1, 0.9, 0.3, 0.2])
    assert d.current_epsilon == pytest.approx(0.4 / 5)


def test_ties_split_probability_evenly():
    p = UCB1(3, seed=0)
    arms, props = p.select(3000)
    np.testing.assert_allclose(props, 1 / 3)
    assert np.abs(np.bincount(arms, minlength=3) / 3000 - 1 / 3).max() < 0.04
    lin = LinUCB(3, 2, seed=0)  # untrained: all arms tie
    a, pr = lin.select(600, np.ones(2))
    np.testing.assert_allclose(pr, 1 / 3)
    assert len(set(a.tolist())) == 3


def test_thompson_monte_carlo_propensities_are_close():
    p = ThompsonSampling(3, propensity_samples=4000, seed=0)
    p.update([0] * 10 + [1] * 10 + [2] * 10, [1] * 6 + [0] * 4 + [1] * 5 + [0] * 5 + [1] * 2 + [0] * 8)
    exact = p.probabilities()  # 20000 draws
    arms, props = p.select(1)
    assert props[0] == pytest.approx(exact[arms[0]], abs=0.03)
    arms, props = p.select(2000)  # pooled estimate over 2000 + 4000 draws
    np.testing.assert_allclose(props, exact[arms], atol=0.03)
    fast = ThompsonSampling(3, propensity_samples=0, seed=0)
    assert np.isnan(fast.select(4)[1]).all()


def test_lints_propensities_are_close():
    rng = np.random.default_rng(0)
    p = LinTS(3, 2, alpha=1.0, propensity_samples=3000, seed=1)
    x = rng.standard_normal((30, 2))
    p.update(rng.integers(0, 3, 30), rng.standard_normal(30), x)
    q = rng.standard_normal((4, 2))
    exact = p.probabilities(q)
    arms, props = p.select(4, q)
    np.testing.assert_allclose(props, exact[np.arange(4), arms], atol=0.04)


def test_exp3_probabilities_have_exploration_floor():
    p = EXP3(5, gamma=0.25, seed=0)
    p.update([0] * 50, [1.0] * 50)
    probs = p.probabilities()
    assert probs[0] > 0.5
    assert probs.min() >= 0.25 / 5 - 1e-12


def test_one_at_a_time_thompson_draws_follow_the_posterior():
    """The pre-drawn sample blocks serve draws from the current posterior, also right after updates."""
    p = ThompsonSampling(3, propensity_samples=0, seed=0)
    p.update([0] * 8 + [1] * 8 + [2] * 8, [1, 1, 1, 1, 1, 0, 0, 0] + [1, 1, 1, 1, 0, 0, 0, 0] + [1, 1, 0, 0, 0, 0, 0, 0])
    expected = p.probabilities()
    picks = np.array([p.select()[0][0] for _ in range(3000)])
    assert np.abs(np.bincount(picks, minlength=3) / 3000 - expected).max() < 0.035
    # after a decisive update of arm 2 the very next draws come from its new posterior
    for _ in range(200):
        p.update([2], [1.0])               # one at a time: only arm 2's pre-drawn samples are redrawn
    picks = np.array([p.select()[0][0] for _ in range(200)])
    assert (picks == 2).mean() > 0.9
