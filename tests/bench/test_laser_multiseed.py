"""The multi-seed report: pooled paired tests, CIs over seeds and problems, overrides, the HTML page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from banditarena.errors import ConfigError
from bench.experiments.multiseed import (
    apply_overrides,
    bootstrap_ci,
    collect,
    noisy_recipe,
    paired_pooled,
    write_seeds_report,
)


def _state(method: str, correct: list[bool], rms: list[str]) -> dict:
    sel = [{"iteration": it, "category": c, "rm": rms[(it + i) % len(rms)], "arm": 0}
           for it in range(2) for i, c in enumerate(["add", "mul"])]
    return {"method": method, "done": True, "test": {"accuracy": float(np.mean(correct)), "correct": correct},
            "rm_calls": {"a": 8, "b": 0}, "cost": {"dev_gens": 12, "dev_rm_calls": 6}, "wall_s": 1.0,
            "stats": {"pairs": 3, "tie_skips": 1}, "rm_skips": {"a": {"nan": 1, "error": 2}},
            "history": [{"iteration": 0, "test_acc": 0.25}, {"iteration": 1}], "selections": sel, "dev": None}


def _write(run: Path, seed: int, method: str, correct: list[bool], part: str = "clean") -> None:
    d = run / f"seed{seed}" / part / method.replace(":", "_")
    d.mkdir(parents=True)
    (d / "state.json").write_text(json.dumps(_state(method, correct, ["a", "b"])))


def test_pooled_paired_test_and_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for s in (0, 1, 2):
        _write(tmp_path, s, "laser", [bool(x) for x in rng.random(20) < 0.7])
        _write(tmp_path, s, "random", [bool(x) for x in rng.random(20) < 0.3])
    (tmp_path / "seed0" / "clean" / "base_eval.json").write_text(json.dumps({"accuracy": 0.2,
                                                                              "correct": [True] * 4 + [False] * 16}))
    runs = collect(tmp_path, [0, 1, 2], ["laser", "random", "missing"])
    assert set(runs) == {"laser", "random"} and sorted(runs["laser"]) == [0, 1, 2]
    r = paired_pooled(runs, "laser", "random")
    a = [x for s in (0, 1, 2) for x in runs["laser"][s]["test"]["correct"]]
    b = [x for s in (0, 1, 2) for x in runs["random"][s]["test"]["correct"]]
    assert r["pairs"] == 60 and r["a_only"] == sum(x and not y for x, y in zip(a, b)) and r["p_value"] < 0.01
    assert paired_pooled(runs, "laser", "base", {"correct": [True] * 20})["pairs"] == 60
    html = write_seeds_report(tmp_path, [0, 1, 2], ["laser", "random"], ["laser"])
    text = html.read_text()
    assert "Selection over time per category (laser)" in text and "Learning curves per method" in text
    md = (tmp_path / "report.md").read_text()
    assert "a: 6 error, 3 nan" in md  # skips per RM summed over the 3 seeds
    assert (tmp_path / "figures" / "selection_laser_add.png").read_bytes()[:4] == b"\x89PNG"


def test_bootstrap_ci_and_overrides() -> None:
    c = np.zeros((3, 50))
    c[:, :25] = 1
    lo, hi = bootstrap_ci(c)
    assert lo < 0.5 < hi and hi - lo < 0.35
    d = apply_overrides({"loop": {"iterations": 16}, "reward_models": [{"name": "p"}]},
                        ["loop.iterations=4", "data.n_train=32"])
    assert d["loop"]["iterations"] == 4 and d["data"]["n_train"] == 32
    assert noisy_recipe({"name": "x", "reward_models": [{"name": "p"}]}, "p", 0.3)["reward_models"][0][
        "noise_sigma"] == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="noise_rm"):
        noisy_recipe({"name": "x", "reward_models": [{"name": "p"}]}, "q", 0.3)
    with pytest.raises(ConfigError, match="--set"):
        apply_overrides({}, ["nokey"])


def test_learning_curve_averages_every_seed_even_when_two_seeds_score_the_same() -> None:
    from bench.experiments.multiseed import learning_curves

    def st(mid: float, end: float) -> dict:
        return {"history": [{"iteration": 0, "test_acc": mid}, {"iteration": 1, "test_acc": end}],
                "test": {"accuracy": end}}

    curve = learning_curves({"m": {0: st(0.25, 0.25), 1: st(0.25, 0.5), 2: st(0.5, 0.5)}})
    # seeds 1 and 2 both end at 0.5 and seeds 0 and 1 both start at 0.25: each counts once per seed
    assert curve.loc[1, "m"] == pytest.approx(1 / 3, abs=1e-3)
    assert curve.loc[2, "m"] == pytest.approx(5 / 12, abs=1e-3)


def test_noise_table_pairs_the_noisy_run_with_the_clean_run_of_the_same_seed(tmp_path: Path) -> None:
    from bench.experiments.multiseed import report_seeds

    clean0 = [True] * 10 + [False] * 10
    for s in (0, 1):
        _write(tmp_path, s, "laser", clean0 if s == 0 else [True] * 20)
    # seed 0 only under noise: 2 problems lost, 8 gained against the same seed's clean run
    _write(tmp_path, 0, "laser", [False] * 2 + [True] * 8 + [True] * 8 + [False] * 2, part="noisy")
    md = report_seeds(tmp_path, [0, 1], ["laser"], ["laser"], noise_rm="a", sigma=0.3)
    row = next(line for line in md.split("## Noise")[1].splitlines() if line.startswith("| laser"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # clean on the paired seed only (seed 1's 100% is left out)
    assert [float(c) for c in cells[1:4]] == pytest.approx([0.5, 0.8, 0.3])
    assert cells[4] == "8 / 2"
    assert float(cells[5]) == pytest.approx(0.109375, abs=5e-4)  # exact McNemar: 2 * P(Bin(10, 1/2) <= 2)


def test_sampled_answer_sets_reads_every_method_and_part_of_a_run(tmp_path: Path) -> None:
    from banditarena.laser import load_recipe
    from banditarena.laser.run import load_problems
    from bench.experiments.multiseed import sampled_answer_sets

    with pytest.raises(ConfigError, match="no seed"):
        sampled_answer_sets(tmp_path)
    recipe = {"name": "t", "policy": {"model": "unused"}, "data": {"source": "arithmetic", "n_train": 4,
                                                                   "n_dev": 0, "n_test": 0},
              "reward_models": [{"name": "v", "kind": "verifier"}], "methods": ["single"]}
    rec = load_recipe(recipe).model_dump(mode="json")
    train, _, _ = load_problems(load_recipe(rec))
    (tmp_path / "seed0" / "clean").mkdir(parents=True)
    (tmp_path / "seed0" / "clean" / "recipe.json").write_text(json.dumps({"recipe": rec}))
    for part, method, pid, answers in [("clean", "random", train[0].id, ["a", "b"]),
                                       ("noisy", "laser", train[1].id, ["c", "d"])]:
        d = tmp_path / "seed0" / part / method / "iter_000"
        d.mkdir(parents=True)
        rows = [{"prompt_id": pid, "answers": answers}, {"prompt_id": "not-a-training-prompt", "answers": ["x"]}]
        (d / "samples.json").write_text(json.dumps(rows))
    got, sets = sampled_answer_sets(tmp_path)
    assert got == rec
    assert [(p.id, a) for p, a in sets] == [(train[0].id, ["a", "b"]), (train[1].id, ["c", "d"])]
    _, clean = sampled_answer_sets(tmp_path, part="clean")
    assert [p.id for p, _ in clean] == [train[0].id]
