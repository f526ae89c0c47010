"""The shared policy API: shapes, batching, delayed rewards, arms at runtime, JSON state, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from banditarena.bandits import (
    EXP3,
    UCB1,
    BanditInputError,
    EpsilonGreedy,
    LinTS,
    LinUCB,
    ThompsonSampling,
    from_state_dict,
)
from tests.bandits.bandit_cases import ALL, D, K, feed


def test_every_registered_policy_honours_the_api_contract():
    """Each name in the registry builds its policy, selects valid arms with propensities in (0, 1], learns
    from rewards, and round-trips its state to give the same next decisions."""
    import json

    import banditarena.bandits as b

    for name, cls in b.POLICIES.items():
        kw = {"dim": 3} if name in ("linucb", "lints") else {}
        pol = b.make_policy(name, 4, seed=0, **kw)
        assert isinstance(pol, cls) and pol.n_arms == 4, name
        ctx = np.ones((5, 3)) / 3 if kw else None
        arms, props = pol.select(5, ctx)
        assert arms.shape == (5,) and ((arms >= 0) & (arms < 4)).all(), name
        assert ((props > 0) & (props <= 1)).all(), (name, props)
        pol.update(arms, np.linspace(0, 1, 5), contexts=ctx)
        twin = b.from_state_dict(json.loads(json.dumps(pol.state_dict())))
        assert np.array_equal(pol.select(5, ctx)[0], twin.select(5, ctx)[0]), name
    with pytest.raises(b.BanditInputError, match="unknown bandit policy 'nope'"):
        b.make_policy("nope", 3)
    assert LinUCB(n_arms=3, dim=5, alpha=2.0, seed=1).alpha == 2.0
    assert LinTS(n_arms=3, dim=5, seed=np.random.default_rng(0)).dim == 5
    assert UCB1(n_arms=7, seed=3).n_arms == 7


def test_bandits_do_not_import_other_banditarena_modules():
    import subprocess
    import sys

    code = ("import sys, banditarena.bandits; bad = sorted(m for m in sys.modules if m.startswith('banditarena.')"
            " and not m.startswith('banditarena.bandits')); heavy = [m for m in ('torch', 'matplotlib', 'sklearn',"
            " 'scipy') if m in sys.modules]; print(bad, heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # the package __init__ (banditarena) pulls errors/types; nothing from other subpackages, no heavy deps
    bad, heavy = out.strip().split("] [")
    assert all(m.strip("[]' ") in ("banditarena.errors", "banditarena.types", "") for m in bad.split(","))
    assert heavy.strip("[]") == ""


@pytest.mark.parametrize("n", [1, 7])
def test_select_shapes(any_policy_factory, n):
    p = any_policy_factory(0)
    ctx_shared = None if p.dim is None else np.ones(D)
    ctx_rows = None if p.dim is None else np.random.default_rng(0).standard_normal((n, D))
    for ctx in (ctx_shared, ctx_rows):
        arms, props = p.select(n, ctx)
        assert arms.shape == (n,) and arms.dtype == np.int64
        assert props.shape == (n,) and props.dtype == np.float64
        assert ((arms >= 0) & (arms < K)).all()
        if getattr(p, "propensity_samples", 1) == 0:
            assert np.isnan(props).all()          # estimation switched off
        else:
            assert ((props > 0) & (props <= 1)).all()


def test_delayed_and_batched_updates_match_sequential():
    a = np.array([0, 1, 1, 2, 0, 3, 3, 3])
    r = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    p1, p2 = UCB1(K, seed=0), UCB1(K, seed=0)
    p1.update(a, r)
    for i in range(len(a)):
        p2.update([a[i]], [r[i]])
    np.testing.assert_allclose(p1.means, p2.means)
    x = np.random.default_rng(1).standard_normal((8, D))
    l1, l2 = LinUCB(K, D, seed=0), LinUCB(K, D, seed=0)
    l1.update(a, r, x)
    for i in range(len(a)):
        l2.update(a[i], r[i], x[i])
    np.testing.assert_allclose(l1.theta, l2.theta, atol=1e-12)
    np.testing.assert_allclose(l1.scores(x), l2.scores(x), atol=1e-12)


def test_delayed_rewards_accepted_in_any_order():
    p = LinUCB(K, D, seed=0)
    x = np.random.default_rng(0).standard_normal((6, D))
    arms, _ = p.select(6, x)
    order = [5, 2, 0, 4, 1, 3]
    for i in order:
        p.update(arms[i:i + 1], [0.5], x[i:i + 1])
    q = LinUCB(K, D, seed=0)
    q.update(arms, np.full(6, 0.5), x)
    np.testing.assert_allclose(p.theta, q.theta, atol=1e-12)


def test_linucb_matches_closed_form_ridge():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, D))
    a = rng.integers(0, K, 40)
    r = rng.standard_normal(40)
    p = LinUCB(K, D, alpha=0.7, l2=2.0, seed=0)
    for i in range(40):
        p.update(a[i:i + 1], r[i:i + 1], x[i:i + 1])
    q = rng.standard_normal(D)
    for arm in range(K):
        rows = a == arm
        A = 2.0 * np.eye(D) + x[rows].T @ x[rows]
        theta = np.linalg.solve(A, x[rows].T @ r[rows])
        ucb = q @ theta + 0.7 * np.sqrt(q @ np.linalg.solve(A, q))
        assert p.scores(q)[arm] == pytest.approx(ucb, rel=1e-9)


def test_linucb_float32_batch_path_picks_float64_arms():
    rng = np.random.default_rng(0)
    p = LinUCB(5, 8, alpha=1.0, seed=0)
    x = rng.standard_normal((400, 8))
    p.update(rng.integers(0, 5, 400), x @ rng.standard_normal(8), x)
    q = rng.standard_normal((3000, 8))
    arms, props = p.select(3000, q)
    exact = p.scores(q)
    assert (exact[np.arange(3000), arms] == exact.max(axis=1)).all()
    assert (props == 1.0).all()


def test_add_and_remove_arms():
    for make in ALL.values():
        p = make(0)
        feed(p, 40)
        new = p.add_arm()
        assert new == K and p.n_arms == K + 1
        p.remove_arm(1)
        assert list(p.active_arms) == [0, 2, 3, 4]
        ctx = None if p.dim is None else np.random.default_rng(2).standard_normal((200, D))
        arms, _ = p.select(200, ctx)
        assert 1 not in arms
        probs = p.probabilities(ctx)
        assert np.allclose(probs[..., 1], 0.0)
        # a delayed reward for the removed arm is still accepted; unknown arms are not
        p.update([1], [0.5], None if p.dim is None else np.zeros((1, D)))
        with pytest.raises(BanditInputError, match="unknown arm 9"):
            p.update([9], [0.5], None if p.dim is None else np.zeros((1, D)))
        feed(p, 20, seed=4)


def test_new_arm_gets_explored_by_ucb():
    p = UCB1(3, seed=0)
    p.update([0, 1, 2] * 20, [1.0, 0.0, 0.5] * 20)
    i = p.add_arm()
    assert p.select()[0][0] == i


def test_cannot_remove_last_or_unknown_arm():
    p = UCB1(2, seed=0)
    with pytest.raises(BanditInputError, match="unknown arm 5"):
        p.remove_arm(5)
    p.remove_arm(0)
    with pytest.raises(BanditInputError, match="already removed"):
        p.remove_arm(0)
    with pytest.raises(BanditInputError, match="last active arm"):
        p.remove_arm(1)


@pytest.mark.parametrize("name", sorted(ALL))
def test_state_dict_round_trip_gives_identical_future(name):
    make = ALL[name]
    p = make(123)
    feed(p, 60, seed=1, batch=3)
    p.add_arm()
    p.remove_arm(0)
    snap = json.loads(json.dumps(p.state_dict(), allow_nan=False))
    q = make(999)
    q.load_state_dict(snap)
    r = from_state_dict(json.loads(json.dumps(snap)))
    rng = np.random.default_rng(7)
    for _ in range(25):
        ctx = None if p.dim is None else rng.standard_normal((2, D))
        out = [pol.select(2, ctx) for pol in (p, q, r)]
        for o in out[1:]:
            np.testing.assert_array_equal(o[0], out[0][0])
            np.testing.assert_array_equal(o[1], out[0][1])
        rew = rng.random(2)
        for pol in (p, q, r):
            pol.update(out[0][0], rew, ctx)


def test_same_seed_same_decisions_and_generator_seed():
    a = ThompsonSampling(K, seed=5)
    b = ThompsonSampling(K, seed=5)
    feed(a, 50)
    feed(b, 50)
    np.testing.assert_array_equal(a.select(20)[0], b.select(20)[0])
    g = np.random.default_rng(11)
    c = EXP3(K, seed=g)
    assert c.rng is g


@pytest.mark.parametrize("make,ctx,msg", [
    (lambda: LinUCB(K, D), np.ones(D + 1), "dimension 4 but LinUCB expects dim=3"),
    (lambda: LinUCB(K, D), None, "required"),
    (lambda: LinTS(K, D), np.ones((2, D)), "2 rows but 5 decisions"),
])
def test_bad_context(make, ctx, msg):
    with pytest.raises(BanditInputError, match=msg):
        make().select(5, ctx)


def test_bad_update_inputs_give_one_line_errors():
    p = ThompsonSampling(K)
    cases = [
        (([0], [np.nan]), "reward nan at index 0 is not finite"),
        (([0, 1], [0.5, np.inf]), "reward inf at index 1 is not finite"),
        (([7], [1.0]), "unknown arm 7"),
        (([0, -1], [1.0, 1.0]), "unknown arm -1 at index 1"),
        (([0], [1.5]), r"outside the declared range \[0.0, 1.0\] of ThompsonSampling"),
        (([0, 1], [0.2]), "arms has 2 entries but rewards has 1"),
        ((["a"], [0.2]), "integer indices"),
    ]
    for args, msg in cases:
        with pytest.raises(BanditInputError, match=msg) as info:
            p.update(*args)
        assert "\n" not in str(info.value)
    lin = LinUCB(K, D)
    with pytest.raises(BanditInputError, match="dimension 2 but LinUCB expects dim=3"):
        lin.update([0], [1.0], np.ones((1, 2)))
    with pytest.raises(BanditInputError, match="contexts of shape"):
        lin.update([0], [1.0])
    with pytest.raises(BanditInputError, match="NaN"):
        lin.update([0], [1.0], np.array([[np.nan, 0, 0]]))
    gauss = ThompsonSampling(K, likelihood="gaussian")
    gauss.update([0], [5.0])  # no declared range for the Gaussian model


def test_bad_constructor_arguments():
    for bad in [lambda: UCB1(0), lambda: EpsilonGreedy(3, epsilon=1.5), lambda: LinUCB(3, 0),
                lambda: ThompsonSampling(3, likelihood="poisson"), lambda: UCB1(3, discount=0.9, window=10),
                lambda: EXP3(3, gamma=0.0), lambda: UCB1(3, seed="x"), lambda: UCB1(3).select(0)]:
        with pytest.raises(BanditInputError):
            bad()
    assert issubclass(BanditInputError, ValueError)


def test_load_state_dict_rejects_other_policy():
    with pytest.raises(BanditInputError, match="snapshot is of UCB1"):
        LinUCB(K, D).load_state_dict(UCB1(K).state_dict())
    with pytest.raises(BanditInputError, match="unknown policy"):
        from_state_dict({"policy": "Nope"})
