"""Nested validation of the learned judge: choices inside the training folds, the adversarial and twin checks,
bounded length control."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from banditarena.judges import nested
from banditarena.judges.learned import FeatureSpec
from banditarena.judges.training import load_train_recipe
from tests.support.shared import need

ROOT = Path(__file__).resolve().parents[2]
RECIPE = """
name: tiny-nested
seed: 0
labels:
  alpaca_eval: [data:alpaca_eval/annotations_gpt4_turbo/claude.json, data:alpaca_eval/annotations_gpt4_turbo/vicuna-7b-v1.5.json,
                data:alpaca_eval/annotations_gpt4_turbo_more/alpaca-7b.json.gz]
features: {blocks: [overlap, coverage, length, markdown, refusal], controlled: [length], orthogonal: true}
head: {l2: 1.0}
validation: {folds: 3, model_groups: 3, bootstrap: 0}
output: artifact/tiny
"""
GRID = (nested.Variant(True, None), nested.Variant(True, math.log(2)))


@pytest.fixture(scope="module")
def prep(tmp_path_factory: pytest.TempPathFactory) -> nested.Prepared:
    need("alpaca_eval/annotations_gpt4_turbo", "alpaca_eval/annotations_gpt4_turbo_more", "alpaca_eval/adversarial",
         "alpaca_eval/model_outputs", "alpaca_eval/benchmarks.csv", "arena_bench_v1/model_judgment")
    d = tmp_path_factory.mktemp("nested")
    (d / "judge.yaml").write_text(RECIPE)
    rec = load_train_recipe(d / "judge.yaml")
    return nested.prepare(rec, progress=False, adversarial=rec.resolve("data:alpaca_eval/adversarial"))


def test_bounded_length_control_keeps_the_penalty_beyond_the_band() -> None:
    spec = FeatureSpec(blocks=("length",), controlled=("length",), length_band=math.log(2))
    full = FeatureSpec(blocks=("length",), controlled=("length",))
    lr = math.log1p(200)
    X = np.array([[math.log1p(150), lr, math.log1p(150) - lr],   # within 2x: neutralised completely
                  [math.log1p(10), lr, math.log1p(10) - lr]])     # 20x shorter: keeps what lies beyond 2x
    out = spec.neutralise(X)
    assert out[0, 0] == pytest.approx(lr) and out[0, 2] == pytest.approx(0.0)
    assert out[1, 2] == pytest.approx(math.log1p(10) - lr + math.log(2)) and out[1, 2] < -2
    assert full.neutralise(X)[1, 2] == 0.0
    assert FeatureSpec(controlled=("length",)).to_dict().get("length_band", "absent") == "absent"  # old digests
    with pytest.raises(ValueError, match="length_band needs length"):
        FeatureSpec(blocks=("overlap",), controlled=(), length_band=1.0)


def test_the_inner_choice_never_looks_at_the_held_out_models_elo(prep: nested.Prepared) -> None:
    models = sorted(prep.arena.answers)
    groups = nested.model_groups(models, 3, prep.recipe.seed)
    g = groups[0]
    keep = ~prep.excluded(g) & (prep.lab_fold != 0)
    others = [m for m in models if m not in g]
    best, grades = nested.select_variant(prep, keep, others, [1, 2], GRID)
    saved = prep.elo.copy()
    try:
        prep.elo.loc[[m for m in g if m in prep.elo.index]] = -prep.elo.loc[[m for m in g if m in prep.elo.index]]
        best2, grades2 = nested.select_variant(prep, keep, others, [1, 2], GRID)
    finally:
        prep.elo[:] = saved
    assert best2 == best and grades2 == grades
    # ... and the held-out group's labels (and its aliases' and steered twins') are out of its training rows
    assert not set(prep.lab_model[keep]) & set(g)


def test_nested_cv_scores_every_model_out_of_fold_and_reports_its_choices(prep: nested.Prepared) -> None:
    res = nested.nested_cross_validate(prep, grid=GRID, groups=3)
    assert len(res.choices) == 9 and set(res.choices["chosen"]) <= {v.name for v in GRID}
    assert all(np.isfinite(s).all() for m, s in res.scores.items() if m != "gpt4_1106_preview")
    assert res.scores["gpt4_1106_preview"].tolist() == [0.5] * 805
    assert -1 <= res.metrics["spearman"] <= 1 and res.metrics["models"] == 27
    assert res.final in GRID and res.leaderboard.attrs["outcome_model"] == "graded"


def test_adversarial_checks_rank_nullmodel_and_the_truncated_gpt4(prep: nested.Prepared) -> None:
    res = nested.nested_cross_validate(prep, grid=GRID[:1], groups=3)
    checks = nested.adversarial_checks(prep, GRID[0], res.scores)
    assert checks["models"] == 29 and 1 <= checks["nullmodel_rank"] <= 29
    assert isinstance(checks["gamed_below_gpt4_0613"], bool)
    # the junk string is one text for every instruction: the judge must see it as a poor answer
    assert checks["nullmodel_mean_p"] < 0.3


def test_twins_and_a_refitted_length_controlled_win_rate(prep: nested.Prepared) -> None:
    tw = nested.twin_gaps(prep, GRID[0], prep.recipe.resolve("data:alpaca_eval/annotations_gpt4_turbo_more"))
    assert set(tw["twin"]) == {"alpaca-7b_concise", "alpaca-7b_verbose", "gpt-3.5-turbo-1106_concise",
                               "gpt-3.5-turbo-1106_verbose"}
    v = tw.set_index("twin")
    # GPT-4 Turbo loves length: the verbose twin wins far more often than the concise one, raw
    assert v.loc["gpt-3.5-turbo-1106_verbose", "gpt4_turbo_win_rate"] > v.loc["gpt-3.5-turbo-1106_concise",
                                                                             "gpt4_turbo_win_rate"] + 0.05
    assert v.loc["gpt-3.5-turbo-1106_verbose", "mean_words"] > v.loc["gpt-3.5-turbo-1106_concise", "mean_words"]
    # the refitted LC win rate closes most of that gap
    raw_gap = abs(v.loc["gpt-3.5-turbo-1106_verbose", "gpt4_turbo_win_rate"] - v.loc["gpt-3.5-turbo-1106_concise",
                                                                                     "gpt4_turbo_win_rate"])
    lc_gap = abs(v.loc["gpt-3.5-turbo-1106_verbose", "gpt4_turbo_lc_win_rate"]
                 - v.loc["gpt-3.5-turbo-1106_concise", "gpt4_turbo_lc_win_rate"])
    assert lc_gap < raw_gap


def test_a_truncated_or_foreign_label_file_is_one_line_naming_it(tmp_path: Path) -> None:
    src = (ROOT.parent / "shared" / "data" / "alpaca_eval" / "annotations_gpt4_turbo_more" / "alpaca-7b.json.gz")
    blob = src.read_bytes()
    (tmp_path / "cut.json.gz").write_bytes(blob[: len(blob) // 2])
    (tmp_path / "dict.json").write_text('{"a": 1}')
    for name, needle in (("cut.json.gz", "truncated or corrupt gzip"), ("dict.json", "must be a JSON list")):
        rec = tmp_path / f"{name}.yaml"
        rec.write_text(RECIPE.replace(
            "alpaca_eval: [data:alpaca_eval/annotations_gpt4_turbo/claude.json, data:alpaca_eval/annotations_gpt4_turbo/vicuna-7b-v1.5.json,\n"
            "                data:alpaca_eval/annotations_gpt4_turbo_more/alpaca-7b.json.gz]",
            f"alpaca_eval: [{tmp_path / name}]"))
        out = subprocess.run([sys.executable, "-m", "banditarena.cli", "judge", "train", str(rec), "--no-progress",
                              "--out", str(tmp_path / "a")], capture_output=True, text=True, cwd=ROOT, timeout=300,
                             check=False)
        assert out.returncode == 2 and needle in out.stderr and name in out.stderr, out.stderr
        assert out.stderr.strip().count("\n") == 0 and not (tmp_path / "a.npz").exists()
