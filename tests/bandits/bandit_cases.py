"""Shared policy factories and drivers for the bandit core tests."""

from __future__ import annotations

import numpy as np

from banditarena.bandits import (
    EXP3,
    KLUCB,
    UCB1,
    UCBV,
    DiscountedThompsonSampling,
    DiscountedUCB,
    EpsilonGreedy,
    LinTS,
    LinUCB,
    SlidingWindowThompsonSampling,
    SlidingWindowUCB,
    ThompsonSampling,
)

K = 4
D = 3

CONTEXT_FREE = {
    "eps": lambda seed: EpsilonGreedy(K, epsilon=0.2, decay=0.01, seed=seed),
    "eps_window": lambda seed: EpsilonGreedy(K, epsilon=0.2, window=30, seed=seed),
    "ucb1": lambda seed: UCB1(K, seed=seed),
    "klucb": lambda seed: KLUCB(K, seed=seed),
    "ucbv": lambda seed: UCBV(K, seed=seed),
    "ts_beta": lambda seed: ThompsonSampling(K, seed=seed),
    "ts_fast": lambda seed: ThompsonSampling(K, propensity_samples=0, seed=seed),
    "ts_gauss": lambda seed: ThompsonSampling(K, likelihood="gaussian", sigma=0.5, seed=seed),
    "exp3": lambda seed: EXP3(K, gamma=0.2, seed=seed),
    "d_ucb": lambda seed: DiscountedUCB(K, discount=0.95, seed=seed),
    "sw_ucb": lambda seed: SlidingWindowUCB(K, window=25, seed=seed),
    "d_ts": lambda seed: DiscountedThompsonSampling(K, discount=0.95, seed=seed),
    "sw_ts": lambda seed: SlidingWindowThompsonSampling(K, window=25, seed=seed),
}
LINEAR = {
    "linucb": lambda seed: LinUCB(K, D, alpha=0.5, seed=seed),
    "lints": lambda seed: LinTS(K, D, alpha=0.5, seed=seed),
    "linucb_disc": lambda seed: LinUCB(K, D, alpha=0.5, discount=0.97, seed=seed),
    "lints_disc": lambda seed: LinTS(K, D, alpha=0.5, discount=0.97, seed=seed),
}
ALL = {**CONTEXT_FREE, **LINEAR}


def feed(policy, steps: int, seed: int = 0, batch: int = 1) -> None:
    """Drive a policy for ``steps`` decisions on a small Bernoulli / linear problem."""
    rng = np.random.default_rng(seed)
    means = np.linspace(0.2, 0.8, policy.n_arms)
    theta = rng.standard_normal((policy.n_arms, policy.dim or 1))
    for _ in range(0, steps, batch):
        x = None if policy.dim is None else rng.standard_normal((batch, policy.dim))
        arms, _ = policy.select(batch, x)
        if x is None:
            r = (rng.random(batch) < means[arms]).astype(float)
        else:
            r = np.clip(0.5 + 0.2 * np.einsum("nd,nd->n", x, theta[arms]) + 0.05 * rng.standard_normal(batch), 0, 1)
        policy.update(arms, r, x)
