"""AlpacaEval on real data: replayed outputs in an arena, the recorded GPT-4 Turbo judge, training labels."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from banditarena.arena.service import run_battles
from banditarena.config import ArenaRecipe
from banditarena.errors import DataError
from banditarena.judges import JudgeRequest
from banditarena.judges.annotations import AnnotationJudge, load_annotations, price_of
from banditarena.judges.labels import alpaca_eval_labels, arena_bench_labels
from banditarena.paths import data_dir
from banditarena.types import Generation, Prompt
from tests.support.shared import requires

DATA = data_dir()
ANN = DATA / "alpaca_eval" / "annotations_gpt4_turbo"


def _recipe(n: int, models: list[str], **judge: object) -> ArenaRecipe:
    return ArenaRecipe.model_validate({
        "name": "ae", "prompts": {"source": "alpaca_eval", "limit": n},
        "contestants": [{"name": m, "backend": "replay", "path": f"data:alpaca_eval/model_outputs/{m}.json"}
                        for m in models],
        "battle": {"pairs": "baseline", "baseline": models[0]}, **judge})


@requires("alpaca_eval/annotations_gpt4_turbo", "alpaca_eval/model_outputs")
def test_recorded_gpt4_turbo_judge_replays_preferences_and_price(tmp_path: Path) -> None:
    judge = AnnotationJudge(sorted(ANN.glob("*.json")))
    models = ["gpt4_1106_preview", "claude", "vicuna-7b-v1.5", "Mixtral-8x7B-Instruct-v0.1"]
    res, store = run_battles(_recipe(12, models), tmp_path / "run", progress=False, judge=judge)
    ann = {m: json.loads((ANN / f"{m}.json").read_text())[:12] for m in ("claude", "vicuna-7b-v1.5")}
    b = store.battles(valid_only=False)
    assert len(b) == 36 and b["inconsistent"].sum() == 0
    for m, rows in ann.items():
        got = b[b["model_b"] == m].set_index("prompt_id")
        for k, r in enumerate(rows):
            pref = float(r["preference"])
            want = "model_b" if pref > 1.5 else "model_a" if pref < 1.5 else "tie"
            assert got.loc[f"alpaca_eval-{k}", "winner"] == want
            assert got.loc[f"alpaca_eval-{k}", "margin"] == pytest.approx((2 - pref) - (pref - 1), abs=1e-5)
    # Mixtral has no recorded annotations: invalid battles, counted, never ties
    assert b[b["model_b"] == "Mixtral-8x7B-Instruct-v0.1"]["winner"].isna().all()
    assert res.n_invalid == 12
    paid = sum(float(r["price_per_example"]) for rows in ann.values() for r in rows)
    assert judge.price_usd == pytest.approx(paid)
    stored = sum(price_of(j) for j in store.get_judgments(list(store.judgments()["cache_key"])).values())
    assert stored == pytest.approx(paid)


@requires("alpaca_eval/model_outputs")
def test_alpaca_outputs_that_do_not_match_the_prompt_set_fail_before_writing(tmp_path: Path) -> None:
    rows = json.loads((DATA / "alpaca_eval" / "model_outputs" / "claude.json").read_text())
    rows[3]["instruction"] = "What is the capital of Atlantis?"
    bad = tmp_path / "claude.json"
    bad.write_text(json.dumps(rows))
    recipe = ArenaRecipe.model_validate({
        "name": "ae", "prompts": {"source": "alpaca_eval", "limit": 5},
        "contestants": [{"name": "base", "backend": "replay", "path": "data:alpaca_eval/model_outputs/gpt4_1106_preview.json"},
                        {"name": "claude", "backend": "replay", "path": str(bad)}]})
    with pytest.raises(DataError, match=r"claude\.json\[3\]: instruction 'What is the capital of Atlantis\?' is not in "
                                        r"prompts\.source 'alpaca_eval' \(805 prompts\)"):
        run_battles(recipe, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


@requires("alpaca_eval/annotations_gpt4_turbo")
def test_annotation_judge_is_content_addressed_and_order_free() -> None:
    rows = json.loads((ANN / "claude-2.1.json").read_text())
    judge = AnnotationJudge([ANN / "claude-2.1.json"], name="gpt4t")
    r = rows[0]
    p = Prompt("any", [{"role": "user", "content": r["instruction"]}])
    a, b = Generation("x", "any", [r["output_1"]]), Generation("y", "any", [r["output_2"]])
    j1, j2, j3 = judge.judge([JudgeRequest(p, a, b), JudgeRequest(p, b, a),
                              JudgeRequest(p, a, Generation("y", "any", [r["output_2"] + "!"]))])
    pref = float(r["preference"])
    assert (j1.score_first, j1.score_second) == (pytest.approx(2 - pref, abs=1e-6), pytest.approx(pref - 1, abs=1e-6))
    assert (j2.score_first, j2.score_second) == (j1.score_second, j1.score_first)
    assert not j3.ok and "no recorded annotation" in j3.error


@requires("alpaca_eval/annotations_gpt4_turbo")
def test_labels_count_and_skip_bad_preferences(tmp_path: Path) -> None:
    rows = json.loads((ANN / "vicuna-7b-v1.5.json").read_text())[:40]
    rows[0]["preference"] = None
    rows[1]["preference"] = "nan"
    rows[2]["preference"] = 2.5
    rows[3]["preference"] = 0
    rows[4]["output_2"] = rows[4]["output_1"]
    f = tmp_path / "ann.json"
    f.write_text(json.dumps(rows))
    lab = alpaca_eval_labels([f])
    assert len(lab) == 35 and lab.skipped == {"nan": 2, "out_of_range": 2, "identical_answers": 1}
    assert all(0 <= t <= 1 for t in lab.target) and set(lab.source) == {"alpaca_eval"}
    assert lab.files["alpaca_eval/ann.json"] and load_annotations([f]).skipped == 4
    f.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(DataError, match=r"ann\.json: annotations must be a JSON list"):
        alpaca_eval_labels([f])


@requires("arena_bench_v1/model_judgment", "arena_bench_v1/model_answer")
def test_arena_bench_labels_read_back_question_reference_and_answer() -> None:
    f = DATA / "arena_bench_v1" / "model_judgment" / "claude-1.jsonl"
    lab = arena_bench_labels([f])
    raw = [json.loads(line) for line in f.open()]
    scored = [r for r in raw if isinstance(r.get("score"), (int, float)) and 1 <= r["score"] <= 10]
    assert len(lab) == len(scored) and sum(lab.skipped.values()) == len(raw) - len(scored)
    answers = {json.loads(line)["question_id"]: json.loads(line)["choices"][0]["turns"][0]
               for line in (DATA / "arena_bench_v1" / "model_answer" / "claude-1.jsonl").open()}
    assert lab.answer[0].strip() == answers[scored[0]["question_id"]].strip()
    assert math.isclose(lab.target[0], (scored[0]["score"] - 1) / 9)
