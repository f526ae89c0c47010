"""The LASeR loop on a tiny random llama: resume, counted skips, bad input, results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from banditarena.errors import ConfigError, ModelError, StoreError
from banditarena.laser import (
    MethodRunner,
    build_reward_model,
    load_problems,
    load_recipe,
    run_laser,
    selection_frequencies,
    selection_over_time,
)
from tests.laser.conftest import tiny_recipe


def test_resume_after_interruption_continues_identically(tiny_llama: Path, tmp_path: Path) -> None:
    rec = tiny_recipe(tiny_llama)
    straight = run_laser(rec, tmp_path / "a", progress=False)
    # the same run, interrupted after one iteration, then resumed by a fresh call
    rc = load_recipe(rec)
    train, dev, test = load_problems(rc)
    rms = [build_reward_model(s) for s in rc.reward_models]
    (tmp_path / "b").mkdir()
    first = MethodRunner("laser", rc, rms, train, tmp_path / "b", str(tiny_llama), test=test, dev=dev)
    st = first.run(stop_after=1)
    assert st.iteration == 1 and not st.done
    assert len(json.loads((tmp_path / "b" / "laser" / "state.json").read_text())["checkpoints"]) <= 1
    resumed = run_laser(rec, tmp_path / "b", progress=False)

    a, b = straight.selections, resumed.selections
    assert len(a) == rc.loop.iterations * rc.loop.batch_size
    assert a["arm"].tolist() == b["arm"].tolist()
    assert a["prompt_id"].tolist() == b["prompt_id"].tolist()
    ra, rb = a["reward"].astype(float).to_numpy(), b["reward"].astype(float).to_numpy()
    assert np.allclose(ra, rb, equal_nan=True)
    la, lb = straight.history["loss"].astype(float), resumed.history["loss"].astype(float)
    assert np.allclose(la, lb, rtol=1e-4, equal_nan=True)
    ta = straight.table.set_index("method")
    tb = resumed.table.set_index("method")
    assert ta.loc["laser", "accuracy"] == tb.loc["laser", "accuracy"]
    assert ta.loc["laser", "rm_calls"] == tb.loc["laser", "rm_calls"] > 0
    # one RM per batch: every prompt of an iteration has the same arm
    assert (a.groupby("iteration")["arm"].nunique() == 1).all()
    # a finished run is not redone
    again = run_laser(rec, tmp_path / "b", progress=False)
    assert again.selections["arm"].tolist() == b["arm"].tolist()
    freq = selection_frequencies(a)
    assert freq.to_numpy().sum() == pytest.approx(1.0)
    sot = selection_over_time(a)
    assert list(sot.columns) == ["step", "arm"] and len(sot) == rc.loop.iterations
    # per-problem results: accuracies carry Wilson CIs, and methods compare paired on the same problems
    n_test = len(test)
    for m, c in straight.correct.items():
        assert len(c) == n_test
        row = ta.loc[m]
        assert row["accuracy"] == pytest.approx(sum(c) / n_test)
        assert row["accuracy_ci_low"] <= row["accuracy"] <= row["accuracy_ci_high"]
    cmp = straight.compare("laser", "base")
    lc, bc = straight.correct["laser"], straight.correct["base"]
    assert cmp["a_only"] == sum(x and not y for x, y in zip(lc, bc))
    assert cmp["diff"] == pytest.approx(ta.loc["laser", "accuracy"] - ta.loc["base", "accuracy"])
    assert 0 <= cmp["p_value"] <= 1


def test_paired_test_is_exact_mcnemar() -> None:
    from banditarena.laser import paired_test

    a = [True] * 8 + [False] * 2 + [True] * 10
    b = [False] * 8 + [True] * 2 + [True] * 10
    r = paired_test(a, b)
    assert (r["a_only"], r["b_only"]) == (8, 2)
    assert r["p_value"] == pytest.approx(0.109375)  # 2 * P(X <= 2), X ~ Bin(10, 1/2)
    assert paired_test([True], [True])["p_value"] == 1.0
    with pytest.raises(ValueError, match="same non-empty"):
        paired_test([True], [True, False])


def test_nan_rm_and_all_tied_answers_are_counted_skips(tiny_llama: Path, tmp_path: Path) -> None:
    rec = tiny_recipe(tiny_llama, reward_models=[
        {"name": "broken", "kind": "refsim", "method": "tokens", "corrupt_p": 1.0, "corrupt_mode": "nan"},
        {"name": "verifier", "kind": "verifier"},
    ], methods=["single"], data={"n_dev": 0})
    res = run_laser(rec, tmp_path / "r", progress=False)
    t = res.table.set_index("method")
    n = 2 * 2  # iterations * batch_size
    assert t.loc["single:broken", "nan_skips"] == n and t.loc["single:broken", "pairs"] == 0
    # a random tiny model never answers correctly: the verifier ties every answer set
    assert t.loc["single:verifier", "tie_skips"] == n and t.loc["single:verifier", "pairs"] == 0
    hist = res.history
    assert hist["n_rows"].sum() == 0 and hist["loss"].isna().all()
    assert t.loc["single:broken", "rm_calls"] == n * 3  # the calls were spent and are counted


def test_paired_streams_make_a_bandit_that_picks_one_rm_train_like_that_single_rm(tiny_llama: Path,
                                                                                  tmp_path: Path) -> None:
    """Common random numbers: with ``loop.paired_streams`` the sampling, RM-noise and training streams do not
    depend on the method, so LASeR with a pool of one noisy RM trains exactly as ``single:noisy``; with one
    stream per method (the default) the same choices train differently."""
    pool = [{"name": "noisy", "kind": "refsim", "method": "tokens", "noise_sigma": 0.3}]
    out = {}
    for paired in (True, False):
        rec = tiny_recipe(tiny_llama, reward_models=pool, methods=["laser:agreement", "single"],
                          data={"n_test": 0}, loop={"paired_streams": paired, "reward": "agreement", "dev_batch": 2})
        res = run_laser(rec, tmp_path / f"p{paired}", progress=False)
        h = res.history.set_index(["method", "iteration"])["loss"].astype(float)
        out[paired] = (h.loc["laser:agreement"].to_numpy(), h.loc["single:noisy"].to_numpy())
    a, b = out[True]
    assert len(a) == 2 and np.all(np.isfinite(a)) and np.array_equal(a, b)
    a, b = out[False]
    assert not np.array_equal(a, b)


def test_instance_mode_picks_per_prompt(tiny_llama: Path, tmp_path: Path) -> None:
    rec = tiny_recipe(tiny_llama, loop={"mode": "instance", "iterations": 1, "batch_size": 3},
                      data={"n_test": 0, "n_dev": 0})
    res = run_laser(rec, tmp_path / "i", progress=False)
    sel = res.selections
    assert len(sel) == 3 and sel["step"].tolist() == [0, 1, 2]
    assert sel["reward"].notna().all() and ((sel["reward"] >= 0) & (sel["reward"] <= 1)).all()


def test_empty_dev_set_with_best_single_is_a_clear_error(tiny_llama: Path, tmp_path: Path) -> None:
    rec = tiny_recipe(tiny_llama, methods=["best_single"], data={"n_dev": 0})
    with pytest.raises(ConfigError, match="dev set is empty"):
        run_laser(rec, tmp_path / "e", progress=False)
    # validated before anything is written: the failed run left nothing behind
    assert not (tmp_path / "e").exists()


def test_the_base_evaluation_alone_starts_a_fresh_run_dir(tiny_llama: Path, tmp_path: Path) -> None:
    """``methods=[]`` (bench/laser_seeds.py's base task, often the first process on a new run directory)."""
    res = run_laser(tiny_recipe(tiny_llama), tmp_path / "new" / "seed0", progress=False, methods=[])
    assert (tmp_path / "new" / "seed0" / "recipe.json").is_file()
    assert (tmp_path / "new" / "seed0" / "base_eval.json").is_file() and "base" in res.correct


def test_a_run_dir_belongs_to_its_recipe(tiny_llama: Path, tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "recipe.json").write_text('{"name": "first", "fingerprint": "abc"}')
    with pytest.raises(StoreError, match="different recipe"):
        run_laser(tiny_recipe(tiny_llama, name="other"), tmp_path / "e", progress=False)


def test_processes_share_a_run_dir_one_writer_per_method(tiny_llama: Path, tmp_path: Path) -> None:
    """bench/laser_seeds.py runs each method in its own process in one run directory: another method runs
    beside a live holder, the same method is refused in one line before any work."""
    import subprocess
    import sys

    run = tmp_path / "shared"
    (run / "laser").mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys, time; from banditarena.store import RunLock; "
         f"RunLock.acquire({str(run / 'laser')!r}); print('held', flush=True); time.sleep(120)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        rec = tiny_recipe(tiny_llama, methods=["laser", "random"])
        with pytest.raises(StoreError, match=r"shared/laser is in use by another run \(pid"):
            run_laser(rec, run, progress=False, methods=["random", "laser"])
        assert not (run / "random" / "state.json").exists()  # refused before any work
        res = run_laser(rec, run, progress=False, methods=["random"], evaluate_base=False)
        assert res.table.set_index("method").loc["random", "iterations"] == 2
        assert json.loads((run / "recipe.json").read_text())["name"] == "tiny"
        assert not list(run.glob(".*.tmp"))  # shared files are written whole (temporary file renamed)
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (killed): its method can run now
    res = run_laser(rec, run, progress=False, methods=["laser"], evaluate_base=False)
    assert res.table.set_index("method").loc["laser", "iterations"] == 2


def test_failing_reward_model_load_raises_model_error(tiny_llama: Path, tmp_path: Path) -> None:
    rec = tiny_recipe(tiny_llama, reward_models=[
        {"name": "ghost-rm", "kind": "likelihood", "model": str(tmp_path / "missing-checkpoint")}])
    with pytest.raises(ModelError, match="ghost-rm"):
        run_laser(rec, tmp_path / "f", progress=False)


def test_recipe_errors_name_the_field(tiny_llama: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pairs_m"):
        load_recipe(tiny_recipe(tiny_llama, loop={"pairs_m": 9}))
    with pytest.raises(ConfigError, match="policy.bogus"):
        load_recipe(tiny_recipe(tiny_llama, policy={"bogus": 1}))
    with pytest.raises(ConfigError, match="duplicate"):
        load_recipe(tiny_recipe(tiny_llama, reward_models=[{"name": "a", "kind": "verifier"},
                                                           {"name": "a", "kind": "verifier"}]))
    bad = tmp_path / "r.yaml"
    bad.write_text("name: x\nreward_models: [\n")
    with pytest.raises(ConfigError, match="r.yaml"):
        load_recipe(bad)
    shipped = Path(__file__).resolve().parents[2] / "src" / "banditarena" / "recipes" / "laser-arith.yaml"
    assert len(load_recipe(shipped).reward_models) >= 4
