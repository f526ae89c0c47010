"""Simulated learners, ZPDES (batch and bandit-core API), the baselines and the classroom simulator."""

from __future__ import annotations

import json

import numpy as np
import pytest

from banditarena.bandits import BanditInputError, from_state_dict
from banditarena.curriculum.learners import make_learners
from banditarena.curriculum.policies import make_policy
from banditarena.curriculum.sim import simulate
from banditarena.curriculum.zpdes import ZPDES, ZPDESBatch
from banditarena.errors import ConfigError


def test_bkt_guess_and_slip_show_in_the_answers(arith):
    L = 4000
    lr = make_learners("bkt", arith, L, {"average": 1.0}, np.random.default_rng(0),
                       {"average": {"learn": 0.0, "forget": 0.0, "guess": 0.2, "slip": 0.1}})
    known = lr.known.copy()
    a = np.zeros(L, dtype=np.int64)
    c = lr.respond(a, np.random.default_rng(1))
    k = known[:, 0]
    assert abs(c[~k].mean() - 0.2) < 0.03 and abs(c[k].mean() - 0.9) < 0.03
    assert (lr.known == known).all()  # learn 0, forget 0: nothing changes


def test_bkt_learning_needs_prerequisites(arith):
    """Practising an activity whose prerequisites are unknown teaches far less (prereq_penalty per missing one)."""
    L = 3000
    lr = make_learners("bkt", arith, L, {"average": 1.0}, np.random.default_rng(0),
                       {"average": {"p_init": 0.0, "learn_sd": 0.0, "prereq_penalty": 0.25, "forget": 0.0}})
    top = arith.index["add-3"]                 # 4 unknown ancestors: decompose-1..3, add-1, add-2
    root = arith.index["decompose-1"]
    lr.respond(np.full(L, top), np.random.default_rng(1))
    lr.respond(np.full(L, root), np.random.default_rng(2))
    n_anc = int(arith.ancestors[top].sum())
    p_top = lr.p_learn[0, top] * 0.25 ** n_anc
    assert abs(lr.known[:, top].mean() - p_top) < 0.01
    assert abs(lr.known[:, root].mean() - lr.p_learn[0, root]) < 0.03
    assert lr.known[:, root].mean() > 5 * lr.known[:, top].mean()


def test_population_mix_is_split_exactly_and_reproducibly(arith):
    a = make_learners("bkt", arith, 10, {"fast": 0.5, "slow": 0.3, "gaps": 0.2}, np.random.default_rng(3))
    b = make_learners("bkt", arith, 10, {"fast": 0.5, "slow": 0.3, "gaps": 0.2}, np.random.default_rng(3))
    assert a.groups == [("fast", 5), ("slow", 3), ("gaps", 2)]
    assert (a.known == b.known).all() and (a.p_learn == b.p_learn).all()
    with pytest.raises(ConfigError, match="unknown bkt learner profile 'genius'"):
        make_learners("bkt", arith, 10, {"genius": 1.0}, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="unknown parameter 'speed'"):
        make_learners("bkt", arith, 10, {"fast": 1.0}, np.random.default_rng(0), {"fast": {"speed": 2}})


def test_irt_ability_grows_with_practice_near_its_level(arith):
    lr = make_learners("irt", arith, 500, {"average": 1.0}, np.random.default_rng(0))
    before = lr.theta.copy()
    m0 = lr.mastery().mean()
    rng = np.random.default_rng(1)
    for _ in range(60):
        lr.respond(np.full(500, arith.index["add-1"]), rng)
    assert (lr.theta[:, arith.skill_index["add"]] > before[:, arith.skill_index["add"]]).all()
    assert lr.mastery().mean() > m0


# ----------------------------------------------------------------------------------------------- ZPDES
def _chain():
    return [[], [0], [1], [0]]   # 0 -> 1 -> 2, 0 -> 3


def test_zpdes_starts_at_the_roots_and_opens_children_after_success():
    z = ZPDESBatch(_chain(), 2, np.random.default_rng(0), window=4, activate=0.75, deactivate=1.0, min_obs=3)
    assert z.zpd.tolist() == [[True, False, False, False]] * 2
    p = z.probabilities()
    assert np.allclose(p[:, 0], 1.0) and np.allclose(p.sum(1), 1.0)
    for _ in range(3):
        z.update(np.array([0, 0]), np.array([True, False]))
    assert z.zpd[0].tolist() == [True, True, False, True]   # learner 0 succeeded: both children open
    assert z.zpd[1].tolist() == [True, False, False, False]
    z.update(np.array([0, 0]), np.array([True, False]))     # a full window of successes: 0 is mastered
    assert z.zpd[0].tolist() == [False, True, False, True] and z.mastered[0, 0]
    p = z.probabilities()
    assert p[0, 0] == 0 and p[0, 2] == 0 and np.isclose(p[0].sum(), 1.0)


def test_zpdes_weights_follow_learning_progress():
    z = ZPDESBatch([[], []], 1, np.random.default_rng(0), window=4, beta=0.5, eta=1.0, activate=1.0,
                   deactivate=1.0, gamma=0.0)
    for c in (False, False, True, True):     # success rate 0 -> 1: progress 1 at the end
        z.update(np.array([0]), np.array([c]))
    w0 = z.w[0, 0]
    for c in (True, True, True, True):       # flat: no progress, the weight decays
        z.update(np.array([1]), np.array([c]))
    assert w0 > 0.9 and z.w[0, 1] < 0.1
    p = z.probabilities()[0]
    assert p[0] > 0.9


def test_zpdes_propensities_are_the_probabilities_it_sampled_from():
    z = ZPDESBatch([[]] * 5, 20000, np.random.default_rng(1), gamma=0.3)
    z.w[:] = np.array([1.0, 2.0, 3.0, 4.0, 0.0])
    p = z.probabilities()[0]
    acts, props = z.select()
    assert np.allclose(props, p[acts])
    freq = np.bincount(acts, minlength=5) / acts.shape[0]
    assert np.abs(freq - p).max() < 0.015


def test_zpdes_is_a_bandit_core_policy_with_a_json_state():
    pol = ZPDES(4, _chain(), seed=7, window=4, min_obs=2)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, p = pol.select()
        assert 0 < p[0] <= 1 and a[0] in pol.zpd
        pol.update(a, [float(rng.random() < 0.8)])
    snap = json.loads(json.dumps(pol.state_dict()))
    twin = from_state_dict(snap)
    assert isinstance(twin, ZPDES)
    assert [pol.select()[0][0] for _ in range(30)] == [twin.select()[0][0] for _ in range(30)]
    assert np.allclose(pol.probabilities(), twin.probabilities())
    new = pol.add_arm()
    assert new == 4 and new in pol.zpd
    pol.remove_arm(new)
    assert new not in pol.zpd and pol.probabilities()[new] == 0
    with pytest.raises(BanditInputError):
        ZPDES(2, [[1], [0]])          # a cycle: no activity to start with
    with pytest.raises(BanditInputError, match="deactivate"):
        ZPDES(2, None, activate=0.9, deactivate=0.5)


# --------------------------------------------------------------------------------------------- baselines
def test_expert_sequence_moves_on_after_success_and_back_after_failure(arith):
    pol = make_policy("expert", arith, 2, np.random.default_rng(0))
    first, second = arith.expert_sequence[:2]
    for _ in range(5):
        a, p = pol.select()
        assert (a == first).all() and (p == 1).all()
        pol.update(a, np.array([True, False]))
    a, _ = pol.select()
    assert a.tolist() == [second, first]
    for _ in range(5):
        pol.update(np.array([second, first]), np.array([False, False]))
    assert pol.select()[0].tolist() == [first, first]   # learner 0 stepped back


def test_mastery_threshold_follows_its_bkt_estimate(arith):
    pol = make_policy("mastery", arith, 1, np.random.default_rng(0))
    first = arith.expert_sequence[0]
    n = 0
    while pol.select()[0][0] == first:
        pol.update(np.array([first]), np.array([True]))
        n += 1
    assert 2 <= n <= 6 and pol.p_known[0, first] >= 0.95


def test_unknown_policy_and_parameters_are_config_errors(arith):
    with pytest.raises(ConfigError, match="unknown policy kind 'greedy'"):
        make_policy("greedy", arith, 1, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="expert policy"):
        make_policy("expert", arith, 1, np.random.default_rng(0), {"pass_k": 3, "speed": 1})


# ---------------------------------------------------------------------------------------------- classroom
def _run(arith, kind, seed=0, L=300, T=150):
    lr = make_learners("bkt", arith, L, {"average": 0.5, "fast": 0.25, "slow": 0.25}, np.random.default_rng(seed))
    pol = make_policy(kind, arith, L, np.random.default_rng(seed + 1))
    return simulate(lr, pol, T, np.random.default_rng(seed + 2))


def test_simulation_is_reproducible(arith):
    a, b = _run(arith, "zpdes", L=50, T=30), _run(arith, "zpdes", L=50, T=30)
    assert (a.acts == b.acts).all() and (a.correct == b.correct).all() and (a.mastery == b.mastery).all()
    assert a.zpd_share is not None and a.zpd_share.shape == (31, arith.n_activities)


def test_zpdes_beats_random_with_separate_confidence_intervals(arith):
    from banditarena.curriculum.classroom import mean_ci

    z, r = _run(arith, "zpdes"), _run(arith, "random")
    zm, zlo, _ = mean_ci(z.mastery[-1])
    rm, _, rhi = mean_ci(r.mastery[-1])
    assert zlo > rhi, (zm, rm)
    # logged propensities are real probabilities; the gains add up to the mastery curve
    assert ((z.propensities > 0) & (z.propensities <= 1)).all()
    assert np.allclose(z.mastery[0] + z.gain.sum(0) / arith.n_activities, z.mastery[-1], atol=1e-6)


def test_core_bandit_policies_run_with_a_learning_progress_reward(arith):
    for kind in ("exp3", "thompson", "ucb1"):
        run = _run(arith, kind, L=8, T=20)
        assert ((run.propensities > 0) & (run.propensities <= 1)).all(), kind
        assert run.mastery[-1].mean() > run.mastery[0].mean(), kind  # the classroom learned something


def test_core_bandits_follow_the_activity_where_learning_progresses(arith):
    """The reward is learning progress (the change of the success rate), not success: on one activity the answers
    keep changing (right, wrong, right, ...), on every other one they are always right. A bandit that reads its
    reward turns to that one activity; the random policy does not."""
    n_arms = arith.n_activities
    share = {}
    for kind in ("exp3", "thompson", "ucb1", "random"):
        pol = make_policy(kind, arith, 4, np.random.default_rng(0))
        answered = np.zeros((4, n_arms), dtype=np.int64)
        last = []
        for step in range(1000):
            acts, _ = pol.select()
            correct = np.ones(4, dtype=bool)
            for i, a in enumerate(acts):
                if a == 0:
                    correct[i] = answered[i, 0] % 2 == 0
                answered[i, a] += 1
            pol.update(acts, correct)
            if step >= 800:
                last.extend(acts.tolist())
        share[kind] = float(np.mean(np.array(last) == 0))
    for kind in ("exp3", "thompson", "ucb1"):
        assert share[kind] > 3 / n_arms, share  # uniform would be 1 / n_arms
    assert share["random"] < 2 / n_arms, share
