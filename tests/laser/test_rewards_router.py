"""The bandit's reward is pluggable (loss / agreement with its cost counted), the classifier router, and
reward models that raise or return NaN mid-run (counted skips per RM, the run resumes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from banditarena.errors import ConfigError
from banditarena.laser import MethodRunner, build_reward_model, load_problems, load_recipe, run_laser
from tests.laser.conftest import tiny_recipe


def test_a_raising_rm_is_counted_per_rm_and_the_run_resumes(tiny_llama: Path, tmp_path: Path) -> None:
    rms = [{"name": "flaky", "kind": "refsim", "method": "tokens", "corrupt_p": 0.5, "corrupt_mode": "raise"},
           {"name": "holes", "kind": "refsim", "method": "tokens", "corrupt_p": 0.5, "corrupt_mode": "nan"}]
    rec = tiny_recipe(tiny_llama, reward_models=rms, methods=["ensemble_avg"],
                      loop={"iterations": 2, "batch_size": 3}, data={"n_dev": 0, "n_test": 2})
    rc = load_recipe(rec)
    train, _, test = load_problems(rc)
    first = MethodRunner("ensemble_avg", rc, [build_reward_model(s) for s in rc.reward_models], train,
                         tmp_path / "r", str(tiny_llama), test=test)
    st = first.run(stop_after=1)  # interrupted after one iteration
    assert st.iteration == 1
    res = run_laser(rec, tmp_path / "r", progress=False)  # resumes
    row = res.table.set_index("method").loc["ensemble_avg"]
    state = json.loads((tmp_path / "r" / "ensemble_avg" / "state.json").read_text())
    errors, nans = state["rm_skips"]["flaky"]["error"], state["rm_skips"]["holes"]["nan"]
    assert errors > 0 and nans > 0  # both faults happened, and each is counted against its own RM
    assert state["rm_skips"]["holes"]["error"] == 0 and state["rm_skips"]["flaky"]["nan"] == 0
    assert f"flaky: {errors} error" in row["rm_skips"] and f"holes: {nans} nan" in row["rm_skips"]
    assert "injected fault" in state["rm_first_error"]["flaky"]
    assert row["error_skips"] == errors  # the ensemble skipped those prompts: no silent fallback
    assert row["error_skips"] + row["nan_skips"] + row["tie_skips"] + (row["pairs"] > 0) >= 1
    assert res.history["iteration"].tolist() == [0, 1]


def test_agreement_reward_counts_its_cost_and_checks_the_dev_batch(tiny_llama: Path, tmp_path: Path) -> None:
    rec = tiny_recipe(tiny_llama, methods=["laser:agreement", "laser:loss"], loop={"dev_batch": 2},
                      data={"n_dev": 2, "n_test": 0})
    res = run_laser(rec, tmp_path / "a", progress=False)
    t = res.table.set_index("method")
    # 2 iterations x 2 dev problems x 3 samples generated for the reward; the paper's reward costs nothing
    assert t.loc["laser:agreement", "dev_gens"] == 2 * 2 * 3 and t.loc["laser:loss", "dev_gens"] == 0
    assert t.loc["laser:agreement", "rm_calls"] == t.loc["laser:loss", "rm_calls"] == 2 * 2 * 3
    # bad input: one line naming the field
    for bad, field in [({"loop": {"dev_batch": 3}}, "loop.dev_batch"), ({"loop": {"dev_batch": 1}}, "dev_batch"),
                       ({"data": {"n_dev": 0}}, "loop.dev_batch")]:
        with pytest.raises(ConfigError, match=field) as e:
            load_recipe(tiny_recipe(tiny_llama, methods=["laser:agreement"], **bad))
        assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="methods: unknown method 'laser:vibes'"):
        load_recipe(tiny_recipe(tiny_llama, methods=["laser:vibes"]))


def test_router_routes_by_category_from_dev(tiny_llama: Path, tmp_path: Path) -> None:
    rec = tiny_recipe(tiny_llama, methods=["router"], data={"n_dev": 4, "n_test": 0},
                      loop={"iterations": 1, "batch_size": 4})
    res = run_laser(rec, tmp_path / "c", progress=False)
    sel = res.selections
    assert len(sel) == 4 and sel["step"].tolist() == [0, 1, 2, 3]
    state = json.loads((tmp_path / "c" / "router" / "state.json").read_text())
    table = state["selector"]["table"]
    assert all(table.get(c, state["selector"]["default"]) == a for c, a in zip(sel["category"], sel["arm"]))
    assert state["cost"]["router_rm_calls"] == 4 * 3 * 3  # every dev answer scored by every RM, counted
    with pytest.raises(ConfigError, match="data.n_dev"):
        load_recipe(tiny_recipe(tiny_llama, methods=["router"], data={"n_dev": 0}))


def _bandit_run(warmup: int, seed: int, batches: int = 16) -> list[int]:
    """LinUCB choosing among 3 RMs whose dev agreement is 0.85, 0.90 and 1.00 (the verifier agrees with
    itself), each batch rewarded at 8 dev contexts near the batch's, as the agreement reward does."""
    import numpy as np

    from banditarena import bandits
    from banditarena.laser.selection import RMSelector
    from banditarena.types import Prompt

    rng = np.random.default_rng(seed)
    sel = RMSelector(bandits.make_policy("linucb", 3, seed=seed, dim=16, alpha=1.0), "batch", warmup=warmup)
    centre = rng.normal(size=16)
    agreement = np.array([0.85, 0.90, 1.00])
    picks = []
    for _ in range(batches):
        ctx = centre + 0.3 * rng.normal(size=(16, 16))
        ctx /= np.linalg.norm(ctx, axis=1, keepdims=True)
        choice = sel.choose([Prompt(f"p{i}", [{"role": "user", "content": "x"}]) for i in range(16)], ctx)
        arm = int(choice.arms[0])
        picks.append(arm)
        dev = centre + 0.3 * rng.normal(size=(8, 16))
        dev /= np.linalg.norm(dev, axis=1, keepdims=True)
        sel.update_at(np.full(8, arm), np.clip(agreement[arm] + 0.05 * rng.normal(size=8), 0, 1), dev)
    return picks


def test_the_warm_start_lets_linucb_find_the_rm_the_reward_prefers_where_a_cold_start_locks_on() -> None:
    """Rewards above the prior's optimism: a cold LinUCB keeps the first RM it tried; after each RM has had one
    batch, it settles on the best one. The warm start's clock survives a save and load."""
    from banditarena import bandits
    from banditarena.laser.selection import RMSelector

    for seed in range(5):
        cold, warm = _bandit_run(0, seed), _bandit_run(1, seed)
        assert len(set(cold)) == 1  # locked on whichever RM came first
        assert warm[:3] == [0, 1, 2] and warm[3:].count(2) >= 10  # the best RM, with some exploration left
    sel = RMSelector(bandits.make_policy("linucb", 3, seed=0, dim=4, alpha=1.0), "instance", warmup=2)
    import numpy as np

    from banditarena.types import Prompt

    ps = [Prompt("p", [{"role": "user", "content": "x"}])] * 5
    ctx = np.eye(4)[[0, 1, 2, 3, 0]]
    assert sel.choose(ps, ctx).arms.tolist() == [0] * 5 and sel.choose(ps, ctx).arms.tolist() == [1] * 5
    again = RMSelector(bandits.make_policy("linucb", 3, seed=0, dim=4, alpha=1.0), "instance", warmup=2)
    again.load_state_dict(sel.state_dict())
    assert [again.choose(ps, ctx).arms[0] for _ in range(4)] == [2, 0, 1, 2]
    with pytest.raises(ConfigError, match="loop.warmup"):
        RMSelector(bandits.make_policy("linucb", 3, seed=0, dim=4), "batch", warmup=-1)


def test_gain_reward_tracks_what_the_round_taught_on_held_out_pairs(tiny_llama: Path, tmp_path: Path) -> None:
    import numpy as np

    from banditarena.laser.loop import Batch, DevProbe, Pairs
    from banditarena.laser.pairs import PairStats
    from banditarena.laser.rewards import dev_pair_rows, margin_gain, pair_logps
    from banditarena.laser.selection import Choice
    from banditarena.training import preference_row

    rc = load_recipe(tiny_recipe(tiny_llama, methods=["laser:gain"], loop={"dev_batch": 2}, data={"n_test": 0}))
    train, dev, _ = load_problems(rc)
    # only (right, wrong) pairs with different texts, every one of them
    rows = dev_pair_rows(dev, [["4", "5", "4 ", "6"], ["1", "1", "1"]],
                         [np.array([1.0, 0, 1, 0]), np.array([0.0, 0, 0])])
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == \
        [("4", "5"), ("4", "6"), ("4 ", "5"), ("4 ", "6")]
    assert np.isnan(margin_gain(np.zeros((0, 4)), np.zeros((0, 4))))

    gains = {}
    for name, (good, bad) in {"right": ("12", "13"), "wrong": ("13", "12")}.items():
        runner = MethodRunner("laser:gain", rc, [build_reward_model(s) for s in rc.reward_models], train,
                              tmp_path / name, str(tiny_llama), dev=dev)
        runner._load()
        assert runner.policy is not None
        held_out = [preference_row(dev[0], "12", "13")]  # the dev problem's right answer is "12"
        before = pair_logps(runner.policy.model, runner.policy.tok, held_out, 96)
        probe = DevProbe(held_out, before, gens=6, informative=1, seconds=0.0)
        # the round trains on a *training* prompt: the dev pair is held out
        pairs = Pairs([[preference_row(train[0], good, bad)] * 4, []], PairStats())
        update = runner.train_round(Batch(0, train[:2]), pairs)
        fb = runner._gain_reward(Choice.everyone(2), probe)
        assert update.losses and fb.dev_gens == 6 and np.isfinite(fb.reward).all()
        gains[name] = float(fb.raw[0])
    # a round that taught "12 over 13" raises the held-out margin, the reversed round lowers it
    assert gains["right"] > 0 > gains["wrong"]

    res = run_laser(tiny_recipe(tiny_llama, methods=["laser:gain", "laser:loss"], loop={"dev_batch": 2},
                                data={"n_dev": 2, "n_test": 0}), tmp_path / "run", progress=False)
    t = res.table.set_index("method")
    # the same dev generations as the agreement reward, and no RM call beyond the training prompts'
    assert t.loc["laser:gain", "dev_gens"] == 2 * 2 * 3
    assert t.loc["laser:gain", "rm_calls"] == t.loc["laser:loss", "rm_calls"]
    for bad, field in [({"loop": {"dev_batch": 3}}, "loop.dev_batch: the gain reward"),
                       ({"loop": {"mode": "instance", "dev_batch": 2}}, "loop.mode")]:
        with pytest.raises(ConfigError, match=field) as e:
            load_recipe(tiny_recipe(tiny_llama, methods=["laser:gain"], **bad))
        assert "\n" not in str(e.value)
