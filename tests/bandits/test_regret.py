"""Learning behaviour: sublinear regret, non-stationary variants after an abrupt change, adversarial setting."""

from __future__ import annotations

import numpy as np
import pytest

from banditarena.bandits import (
    EXP3,
    KLUCB,
    UCB1,
    UCBV,
    AdversarialEnv,
    BernoulliEnv,
    DiscountedThompsonSampling,
    DiscountedUCB,
    DriftingEnv,
    EpsilonGreedy,
    LinearEnv,
    LinTS,
    LinUCB,
    PiecewiseStationaryEnv,
    SlidingWindowThompsonSampling,
    SlidingWindowUCB,
    SupervisedEnv,
    ThompsonSampling,
    simulate,
)

MEANS = [0.3, 0.5, 0.55, 0.7]


@pytest.mark.parametrize("make", [
    lambda s: UCB1(4, seed=s),
    lambda s: KLUCB(4, seed=s),
    lambda s: UCBV(4, seed=s),
    lambda s: ThompsonSampling(4, propensity_samples=0, seed=s),
    lambda s: ThompsonSampling(4, likelihood="gaussian", sigma=0.5, propensity_samples=0, seed=s),
    lambda s: EpsilonGreedy(4, epsilon=1.0, decay=0.05, seed=s),
])
def test_regret_grows_sublinearly_on_stationary_bernoulli(make):
    horizon = 6000
    curves = np.array([simulate(make(s), BernoulliEnv(MEANS, seed=100 + s), horizon, batch_size=10)
                       .cumulative_regret for s in range(3)]).mean(axis=0)
    first, second = curves[horizon // 2 - 1], curves[-1] - curves[horizon // 2 - 1]
    assert second < 0.75 * first          # the second half adds much less regret than the first
    assert curves[-1] < 0.05 * horizon    # far below a uniform policy (~0.19 per round)


def test_linear_policies_learn_a_linear_problem():
    for make in (lambda: LinUCB(5, 8, alpha=0.5, seed=0), lambda: LinTS(5, 8, alpha=0.3, seed=0)):
        res = simulate(make(), LinearEnv(5, 8, noise=0.1, seed=1), 3000, batch_size=10)
        reg = res.cumulative_regret
        assert reg[-1] - reg[1499] < 0.5 * reg[1499]


def test_linucb_on_digits_beats_chance_by_far():
    res = simulate(LinUCB(10, 64, alpha=0.3, seed=0), SupervisedEnv.digits(seed=0), 2000, batch_size=20)
    assert res.rewards[-1000:].mean() > 0.8   # chance is 0.1


@pytest.mark.parametrize("stationary,adaptive", [
    (lambda s: UCB1(2, seed=s), lambda s: SlidingWindowUCB(2, seed=s)),
    (lambda s: UCB1(2, seed=s), lambda s: DiscountedUCB(2, seed=s)),
    (lambda s: ThompsonSampling(2, propensity_samples=0, seed=s),
     lambda s: SlidingWindowThompsonSampling(2, propensity_samples=0, seed=s)),
    (lambda s: ThompsonSampling(2, propensity_samples=0, seed=s),
     lambda s: DiscountedThompsonSampling(2, propensity_samples=0, seed=s)),
])
def test_non_stationary_variants_win_after_an_abrupt_change(stationary, adaptive):
    segments = [[0.8, 0.3], [0.4, 0.6]]   # the old best arm stays decent, so stationary policies hang on to it

    def after_change(make):
        out = []
        for s in range(3):
            env = PiecewiseStationaryEnv(segments, segment_length=3000, seed=50 + s)
            res = simulate(make(s), env, 6000, batch_size=5)
            out.append(res.regret[3000:].sum())
        return np.mean(out)

    assert after_change(adaptive) < 0.5 * after_change(stationary)


def test_discounted_linucb_tracks_drift_better():
    rng = np.random.default_rng(0)
    d, k, n = 4, 3, 3000
    theta0 = rng.standard_normal((k, d))
    theta1 = -theta0
    x = rng.standard_normal((n, d))

    def run(policy):
        reg = 0.0
        for t in range(0, n, 5):
            th = theta0 if t < n // 2 else theta1
            xs = x[t:t + 5]
            mu = xs @ th.T
            a, _ = policy.select(5, xs)
            policy.update(a, mu[np.arange(5), a] + 0.1 * rng.standard_normal(5), xs)
            if t >= n // 2:
                reg += (mu.max(axis=1) - mu[np.arange(5), a]).sum()
        return reg

    assert run(LinUCB(k, d, alpha=0.5, discount=0.98, seed=0)) < 0.5 * run(LinUCB(k, d, alpha=0.5, seed=0))


def test_exp3_against_adaptive_opponent_and_drift():
    env = AdversarialEnv([0.7, 0.7, 0.7], penalty=0.9, memory=100, seed=0)
    exp3 = simulate(EXP3(3, gamma=0.1, seed=0), env, 4000, batch_size=1)
    env2 = AdversarialEnv([0.7, 0.7, 0.7], penalty=0.9, memory=100, seed=0)
    greedy = simulate(EpsilonGreedy(3, epsilon=0.0, seed=0), env2, 4000, batch_size=1)
    # spreading plays keeps the opponent from punishing any single arm
    assert exp3.rewards.mean() > greedy.rewards.mean() + 0.05
    drift = simulate(SlidingWindowUCB(4, window=200, seed=0), DriftingEnv(4, period=2000, seed=0), 4000, 5)
    assert drift.rewards.mean() > 0.6   # the uniform policy earns 0.5
