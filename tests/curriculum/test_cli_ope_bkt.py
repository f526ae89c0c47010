"""The tutor commands, off-policy estimates checked against the simulator's truth, and BKT fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from banditarena.cli import app
from banditarena.curriculum.bktfit import fit_bkt, log_from_run
from banditarena.curriculum.classroom import run_classrooms
from banditarena.curriculum.learners import make_learners
from banditarena.curriculum.ope import off_policy_estimates, replay_probabilities
from banditarena.curriculum.policies import make_policy
from banditarena.curriculum.sim import simulate

runner = CliRunner()


def test_simulate_command_writes_table_and_figures_and_resumes(small_recipe, tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(app, ["tutor", "simulate", str(small_recipe), "--run-dir", str(out), "--workers", "2",
                            "--no-progress"])
    assert r.exit_code == 0, r.output
    s = pd.read_csv(out / "summary.csv")
    assert len(s) == 6 and set(s.policy) == {"zpdes", "expert", "random"} and set(s.population) == {"mixed", "irt"}
    assert (s.final_ci_low <= s.final_mastery).all() and (s.final_mastery <= s.final_ci_high).all()
    assert (out / "figures" / "mastery_mixed.png").stat().st_size > 5000
    assert (out / "figures" / "zpd_mixed_zpdes.png").exists() and (out / "figures" / "steps_to_mastery.png").exists()
    g = pd.read_csv(out / "groups.csv")
    assert set(g.profile) == {"average", "fast"}
    files = sorted((out / "runs").glob("*.npz"))
    stamps = [f.stat().st_mtime_ns for f in files]
    r = runner.invoke(app, ["tutor", "simulate", str(small_recipe), "--run-dir", str(out), "--no-progress"])
    assert r.exit_code == 0 and [f.stat().st_mtime_ns for f in files] == stamps     # nothing simulated twice


def test_results_do_not_depend_on_the_number_of_workers(small_recipe, tmp_path):
    one = run_classrooms(small_recipe, tmp_path / "a", workers=1, progress=False, figures=False).summary
    two = run_classrooms(small_recipe, tmp_path / "b", workers=2, progress=False, figures=False).summary
    cols = ["population", "policy", "final_mastery", "accuracy"]
    pd.testing.assert_frame_equal(one[cols], two[cols])


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["simulate"]["policies"].append({"name": "z2", "kind": "zpdes", "params": {"gamma": 2}}),
     "gamma must lie in [0, 1]"),
    (lambda d: d["simulate"].update(baseline="teacher"), "baseline 'teacher' is not one of the policies"),
    (lambda d: d["simulate"]["populations"][0]["mix"].update(genius=0.1), "unknown bkt learner profile 'genius'"),
    (lambda d: d.update(curriculum="nowhere.yaml"), "curriculum file not found"),
])
def test_bad_recipes_exit_2_with_one_line(small_recipe, tmp_path, edit, message):
    doc = yaml.safe_load(small_recipe.read_text())
    edit(doc)
    small_recipe.write_text(yaml.safe_dump(doc))
    r = runner.invoke(app, ["tutor", "simulate", str(small_recipe), "--run-dir", str(tmp_path / "x")])
    assert r.exit_code == 2 and message in r.output and r.output.count("\n") == 1, r.output
    assert not (tmp_path / "x" / "summary.csv").exists()


def test_curriculum_command(tmp_path):
    r = runner.invoke(app, ["tutor", "curriculum", "arith"])
    assert r.exit_code == 0 and "decompose-1 -> decompose-2" in r.output
    bad = tmp_path / "c.yaml"
    bad.write_text("name: c\nskills: [{id: a}]\nactivities: [{id: a-1, skill: b, generator: {kind: add}}]\n")
    r = runner.invoke(app, ["tutor", "curriculum", str(bad)])
    assert r.exit_code == 2 and "activity 'a-1': unknown skill 'b'" in r.output


def test_off_policy_estimates_cover_the_true_value(arith):
    """Random logging (full support): IPS/SNIPS/DR of ZPDES's and mastery's one-step value contain the exact value."""
    L, T = 300, 60
    lr = make_learners("bkt", arith, L, {"average": 1.0}, np.random.default_rng(1))
    run = simulate(lr, make_policy("random", arith, L, np.random.default_rng(2)), T, np.random.default_rng(3),
                   counterfactual=True)
    for target in ("zpdes", "mastery"):
        res = off_policy_estimates(run, replay_probabilities(run, arith, target), reward="gain")
        truth = res["true_value"]
        assert truth > 1.5 * res["logged_value"]           # both teach better than the random logger
        for k in ("ips", "snips", "dr"):
            e = res[k]
            assert e.ci_low <= truth <= e.ci_high, (target, k, e, truth)


def test_ope_command(small_recipe, tmp_path):
    out = tmp_path / "run"
    run_classrooms(small_recipe, out, workers=1, progress=False, figures=False)
    r = runner.invoke(app, ["tutor", "ope", str(small_recipe), "--run-dir", str(out), "--population", "mixed",
                            "--logged", "random", "--target", "zpdes", "--reward", "correct"])
    assert r.exit_code == 0 and "snips" in r.output, r.output
    r = runner.invoke(app, ["tutor", "ope", str(small_recipe), "--run-dir", str(out), "--population", "nope"])
    assert r.exit_code == 2 and "no population named 'nope'" in r.output


def test_bkt_fit_recovers_the_simulators_parameters(arith):
    L, T = 400, 70
    lr = make_learners("bkt", arith, L, {"average": 1.0}, np.random.default_rng(1),
                       {"average": {"prereq_penalty": 1.0, "learn_sd": 0.0, "learn_level_decay": 1.0}})
    run = simulate(lr, make_policy("random", arith, L, np.random.default_rng(2)), T, np.random.default_rng(3))
    fit = fit_bkt(log_from_run(run, arith.activity_ids), skills=["decompose-1", "times-1"]).set_index("skill")
    p = lr.profiles["average"]
    for sk in ("decompose-1", "times-1"):
        assert abs(fit.loc[sk, "prior"] - p.p_init) < 0.08
        assert abs(fit.loc[sk, "learns"] - p.learn) < 0.06
        assert abs(fit.loc[sk, "guesses"] - p.guess) < 0.05
        assert abs(fit.loc[sk, "slips"] - p.slip) < 0.04


def test_fit_bkt_command_on_a_simulated_run_and_a_csv(small_recipe, tmp_path):
    out = tmp_path / "run"
    run_classrooms(small_recipe, out, workers=1, progress=False, figures=False)
    npz = min((out / "runs").glob("mixed__random__*.npz"))
    r = runner.invoke(app, ["tutor", "fit-bkt", str(npz), "--out", str(tmp_path / "p.csv")])
    assert r.exit_code == 0, r.output
    assert set(pd.read_csv(tmp_path / "p.csv").columns) >= {"skill", "prior", "learns", "guesses", "slips"}
    bad = tmp_path / "log.csv"
    bad.write_text("user_id,skill_name,order_id,correct\nu,a,0,2\n")
    r = runner.invoke(app, ["tutor", "fit-bkt", str(bad)])
    assert r.exit_code == 2 and "row 2: correct must be 0 or 1" in r.output
