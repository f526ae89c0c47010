"""The routing check: does the bandit pick the right reward model when the right one is known?

No policy training: fixed sampled answers, their verifier labels, and specialist reward models built from
real RMs by category-dependent corruption - specialist ``k`` is a real RM on its own category and the same
RM inverted (its ranking reversed) on every other one - so the best RM of each category is known. The reward
of a decision is the chosen specialist's ranking agreement with the verifier on that prompt
(:func:`~banditarena.laser.rewards.ranking_agreement`: the quality signal of LASeR's ``agreement`` reward).

:func:`run_routing` replays a seeded stream of decisions for one selector:

* ``linucb`` (instance mode: one decision per prompt; batch mode: one per batch of ``batch_size`` prompts of
  one category, at the batch's mean context) - :class:`~banditarena.bandits.LinUCB`;
* ``random`` (:class:`~banditarena.bandits.Uniform`), ``sequential`` (:class:`~banditarena.bandits.Sequential`);
* ``router`` - the classifier router: each category to the specialist with the best mean agreement on a
  disjoint dev split of the prompts;
* ``oracle`` - the per-category best specialist (by mean agreement over all prompts).

It reports the right-pick rate (overall, per window and in the second half) and the pseudo-regret against
the per-category oracle (the oracle's mean agreement on the category minus the chosen one's). Pure numpy.
Bench code (``bench/laser_routing.py``): the library does not import it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from banditarena import bandits
from banditarena.laser.rewards import ranking_agreement
from banditarena.laser.selection import batch_context

__all__ = ["METHODS", "RoutingData", "RoutingResult", "run_routing", "specialist_agreement", "text_contexts"]

METHODS = ("linucb-instance", "linucb-batch", "random", "sequential", "router", "oracle")


@dataclass
class RoutingData:
    """Prompts with informative answer sets: category, context vector, and each specialist's agreement."""

    categories: np.ndarray  # (P,) str
    contexts: np.ndarray  # (P, d) unit rows
    agreement: np.ndarray  # (P, S) in [0, 1]
    specialists: list[str]  # S names, e.g. "add<-partial"
    dev: np.ndarray  # (P,) bool: the router's dev split (never used for a decision)

    def oracle(self) -> dict[str, int]:
        """Per category, the specialist with the best mean agreement over all prompts."""
        return {c: int(np.argmax(self.agreement[self.categories == c].mean(axis=0)))
                for c in np.unique(self.categories)}


@dataclass
class RoutingResult:
    method: str
    arms: np.ndarray  # (T,) the pick of each decision
    categories: np.ndarray  # (T,) the category of each decision
    correct: np.ndarray  # (T,) bool: the pick is the category's best specialist
    regret: np.ndarray  # (T,) pseudo-regret of each decision
    reward: np.ndarray  # (T,) observed agreement

    @property
    def second_half_correct(self) -> float:
        return float(self.correct[len(self.correct) // 2:].mean())

    @property
    def cumulative_regret(self) -> float:
        return float(self.regret.sum())

    def windows(self, n: int = 10) -> np.ndarray:
        """Right-pick rate in ``n`` consecutive windows of decisions."""
        return np.array([w.mean() for w in np.array_split(self.correct, n) if len(w)])


def specialist_agreement(scores: dict[str, list[np.ndarray]], labels: list[np.ndarray], categories: list[str],
                         assignment: dict[str, str]) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Agreement (P, S) of the specialists ``assignment`` = {category: base RM name} on each prompt.

    Specialist ``c`` scores with its base RM on category ``c`` and with the base RM's negated scores elsewhere.
    Returns ``(agreement, names, keep)`` where ``keep`` marks the prompts with a (right, wrong) answer pair and
    finite scores (the others carry no evidence and are left out of the stream).
    """
    cats = sorted(assignment)
    names = [f"{c}<-{assignment[c]}" for c in cats]
    agree = np.full((len(labels), len(cats)), np.nan)
    for i, (y, cat) in enumerate(zip(labels, categories)):
        for s_i, c in enumerate(cats):
            s = np.asarray(scores[assignment[c]][i], dtype=float)
            agree[i, s_i] = ranking_agreement(s if cat == c else -s, y)
    keep = np.isfinite(agree).all(axis=1)
    return agree, names, keep


def text_contexts(texts: list[str], dim: int = 16, seed: int = 0) -> np.ndarray:
    """Cheap context vectors: hashed bag of words (numbers dropped), a fixed Gaussian projection, unit norm."""
    import hashlib
    import re

    width = 1024
    x = np.zeros((len(texts), width))
    for i, t in enumerate(texts):
        for w in re.findall(r"[a-z]+", t.lower()):
            x[i, int(hashlib.md5(w.encode()).hexdigest()[:8], 16) % width] += 1.0
    proj = np.random.default_rng(seed).normal(size=(width, dim)) / np.sqrt(dim)
    v = x @ proj
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def run_routing(data: RoutingData, method: str, *, decisions: int = 400, batch_size: int = 8, alpha: float = 1.0,
                seed: int = 0) -> RoutingResult:
    """Replay ``decisions`` decisions of ``method`` (one of :data:`METHODS`) on a seeded stream of prompts."""
    if method not in METHODS:
        raise ValueError(f"routing method '{method}' is not one of {', '.join(METHODS)}")
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(~data.dev)
    cats = np.unique(data.categories[pool])
    by_cat = {c: pool[data.categories[pool] == c] for c in cats}
    k, dim = data.agreement.shape[1], data.contexts.shape[1]
    mu = {c: data.agreement[data.categories == c].mean(axis=0) for c in cats}
    oracle = data.oracle()
    batch = method == "linucb-batch"
    policy = None
    if method.startswith("linucb"):
        policy = bandits.make_policy("linucb", k, seed=seed, dim=dim, alpha=alpha)
    elif method in ("random", "sequential"):
        policy = bandits.make_policy("uniform" if method == "random" else "sequential", k, seed=seed)
    route = {}
    if method == "router":
        dev = np.flatnonzero(data.dev)
        overall = int(np.argmax(data.agreement[dev].mean(axis=0))) if dev.size else 0
        for c in cats:
            rows = dev[data.categories[dev] == c]
            route[c] = int(np.argmax(data.agreement[rows].mean(axis=0))) if rows.size else overall
    arms, cat_t, reward = (np.zeros(decisions, dtype=np.int64), np.empty(decisions, dtype=object),
                           np.zeros(decisions))
    for t in range(decisions):
        if batch:
            c = cats[rng.integers(len(cats))]
            idx = rng.choice(by_cat[c], size=batch_size, replace=True)
        else:
            idx = pool[rng.integers(len(pool)):][:1]
            c = data.categories[idx[0]]
        ctx = batch_context(data.contexts[idx]) if batch else data.contexts[idx[0]]
        if method == "oracle":
            a = oracle[c]
        elif method == "router":
            a = route[c]
        else:
            assert policy is not None
            a = int(policy.select(1, ctx)[0][0])
        r = float(data.agreement[idx, a].mean())
        if policy is not None:
            policy.update([a], [r], ctx[None, :] if policy.dim is not None else None)
        arms[t], cat_t[t], reward[t] = a, c, r
    correct = np.array([a == oracle[c] for a, c in zip(arms, cat_t)])
    regret = np.array([mu[c][oracle[c]] - mu[c][a] for a, c in zip(arms, cat_t)])
    return RoutingResult(method, arms, cat_t.astype(str), correct, regret, reward)
