"""Off-policy comparison of teaching policies from logged decisions (IPS, SNIPS and DR from the bandit core).

A logged classroom (every decision with its propensity) is replayed through a *target* policy: at every
logged step the target gives its probabilities over activities given the learner's logged history, then sees
the logged decision and answer. The per-decision estimators of :mod:`banditarena.bandits.ope` then estimate
the target's one-step value (the expected reward of its next decision in the logged situations).

The reward is ``gain`` (the change in mastered activities: known in simulation only), ``correct`` (the
answer was right), or ``lp`` (the learning progress ZPDES uses). With ``counterfactual`` stored by the
simulator, the exact one-step value of the target is known and the estimates can be checked against it.

Support matters: the estimate is unbiased only where the logging policy could have chosen what the target
chooses (a uniform random logger covers everything; ZPDES covers only its zone of proximal development). The
effective sample size of the importance weights is reported with every estimate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from banditarena.bandits import OPEEstimate, doubly_robust, ips, snips
from banditarena.curriculum.policies import make_policy
from banditarena.curriculum.sim import ClassroomRun
from banditarena.curriculum.spec import Curriculum
from banditarena.errors import DataError


def replay_probabilities(run: ClassroomRun, curriculum: Curriculum, kind: str, params: dict[str, Any] | None = None,
                         seed: int = 0) -> np.ndarray:
    """(steps, learners, activities) probabilities the target policy ``kind`` gives at every logged decision."""
    L, A = run.n_learners, curriculum.n_activities
    if run.acts.max() >= A:
        raise DataError(f"logged run {run.population}/{run.policy} has activities the curriculum does not have")
    target = make_policy(kind, curriculum, L, np.random.default_rng(seed), params)
    out = np.empty((run.n_steps, L, A), dtype=np.float32)
    for t in range(run.n_steps):
        out[t] = target.probabilities()
        target.update(run.acts[t].astype(np.int64), run.correct[t])
    return out


def rewards_of(run: ClassroomRun, reward: str, window: int = 6) -> np.ndarray:
    """(steps, learners) logged rewards: ``gain``, ``correct`` or ``lp`` (absolute learning progress)."""
    if reward == "gain":
        return run.gain.astype(float)
    if reward == "correct":
        return run.correct.astype(float)
    if reward == "lp":
        from banditarena.curriculum.zpdes import ZPDESBatch

        A = int(run.acts.max()) + 1
        b = ZPDESBatch([[] for _ in range(A)], run.n_learners, np.random.default_rng(0), window=window)
        return np.stack([b.update(run.acts[t].astype(np.int64), run.correct[t]) for t in range(run.n_steps)])
    raise DataError(f"unknown reward '{reward}' (gain, correct or lp)")


def off_policy_estimates(run: ClassroomRun, target_probs: np.ndarray, reward: str = "gain",
                         confidence: float = 0.95, clip: float | None = None) -> dict[str, Any]:
    """IPS, SNIPS and DR estimates of the target's one-step value, the logged value, and (when the run stored
    counterfactual gains and the reward is ``gain``) the true value."""
    T, L, A = target_probs.shape
    arms = run.acts.reshape(-1).astype(np.int64)
    props = run.propensities.reshape(-1).astype(float)
    r = rewards_of(run, reward).reshape(-1)
    tp = target_probs.reshape(T * L, A).astype(float)
    tp = tp / tp.sum(axis=1, keepdims=True)
    res: dict[str, Any] = {
        "ips": ips(arms, r, props, tp, confidence=confidence, clip=clip),
        "snips": snips(arms, r, props, tp, confidence=confidence, clip=clip),
        "dr": doubly_robust(arms, r, props, tp, confidence=confidence, clip=clip, n_folds=2, seed=0),
        "logged_value": float(r.mean()),
        "n": int(r.shape[0]),
    }
    if run.counterfactual is not None and reward == "gain":
        res["true_value"] = float((target_probs.astype(float) * run.counterfactual).sum(axis=2).mean())
    return res


def estimates_table(res: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for k in ("ips", "snips", "dr"):
        e: OPEEstimate = res[k]
        rows.append({"estimator": k, "estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high,
                     "ess": e.ess, "n": e.n})
    return rows
