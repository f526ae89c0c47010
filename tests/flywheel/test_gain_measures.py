"""Issue 29's pieces of the flywheel: baseline selection modes at equal rows (random, distill, row caps), replayed
opponents only on prompts they answer, and the evaluation's measures the data was not mined with (verifiable
accuracy with paired CIs, a second judge, answer length)."""

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from banditarena.flywheel.data import (
    SelectionConfig,
    distill_candidates,
    filter_candidates,
    select_training_data,
)
from banditarena.types import Generation, Prompt

WORDS = ["rainbows", "haiku", "baking", "hamlet", "volcano", "tides", "bread", "chess", "comets", "bees", "maps",
         "opera"]


def P(pid, text, cluster="c"):
    return Prompt(pid, [{"role": "user", "content": text}], cluster=cluster)


@pytest.fixture
def many():
    """12 battles of target t against o: margins from -6 (t lost badly) to +5."""
    prompts, gens, rows = {}, {}, []
    for i, (w, m) in enumerate(zip(WORDS, [-6, -5, -4, -3, -2, -1.5, -0.5, 0.5, 1, 2, 4, 5], strict=True)):
        pid = f"p{i}"
        prompts[pid] = P(pid, f"Tell me something surprising about {w} number {i} please.")
        gens[("t", pid)] = Generation("t", pid, [f"target on {w}"])
        gens[("o", pid)] = Generation("o", pid, [f"opponent on {w}"])
        rows.append({"prompt_id": pid, "model_a": "t", "model_b": "o", "winner": "model_a" if m > 0 else "model_b",
                     "margin": float(m)})
    return prompts, gens, pd.DataFrame(rows)


def cfg(**kw):
    return SelectionConfig(sft_margin=3, dpo_margin=3, decontaminate=False, safety=False, **kw)


def test_row_caps_keep_a_seeded_subset_and_list_the_rest(many):
    prompts, gens, battles = many
    full = select_training_data(battles, prompts, gens, "t", cfg())
    assert len(full.sft) == 4 and len(full.dpo) == 6  # lost by >= 3: p0-p3; |margin| >= 3: + p10, p11
    capped = select_training_data(battles, prompts, gens, "t", cfg(sft_rows=2, dpo_rows=3), seed=7)
    assert len(capped.sft) == 2 and len(capped.dpo) == 3
    assert all(r in full.sft for r in capped.sft) and all(r in full.dpo for r in capped.dpo)
    assert len(capped.provenance) == 5  # provenance follows the kept rows
    caps = [e for e in capped.excluded if e["reason"].startswith("cap:")]
    assert len(caps) == 2 + 3 and {e["kind"] for e in caps} == {"sft", "dpo"}
    again = select_training_data(battles, prompts, gens, "t", cfg(sft_rows=2, dpo_rows=3), seed=7)
    assert again.sft == capped.sft and again.dpo == capped.dpo  # the seed fixes the subset
    subsets = {json.dumps(select_training_data(battles, prompts, gens, "t", cfg(sft_rows=2), seed=s).sft)
               for s in range(8)}
    assert len(subsets) > 1  # and another seed draws another one


def test_random_mode_takes_as_many_rows_regardless_of_margin(many):
    prompts, gens, battles = many
    margin_rule = select_training_data(battles, prompts, gens, "t", cfg())
    lost_by = {f"p{i}": m for i, m in enumerate([-6, -5, -4, -3, -2, -1.5, -0.5, 0.5, 1, 2, 4, 5])}
    seen_small = False
    for seed in range(10):
        sel = select_training_data(battles, prompts, gens, "t", cfg(mode="random"), seed=seed)
        assert len(sel.sft) == len(margin_rule.sft) and len(sel.dpo) == len(margin_rule.dpo)
        sft_prompts = [p["prompt_id"] for p in sel.provenance if p["kind"] == "sft"]
        assert all(lost_by[p] < 0 for p in sft_prompts)  # still the opponent's answer where the target lost
        seen_small |= any(lost_by[p] > -3 for p in sft_prompts)
    assert seen_small  # ... but not only where it lost by the margin


def test_distill_rows_are_the_teachers_answers_without_any_battle(many):
    prompts, gens, _ = many
    ps = list(prompts.values())
    cands = distill_candidates(ps, gens, "o")
    sel = filter_candidates(cands, cfg(mode="distill", distill_from="o", sft_rows=5), seed=1)
    assert len(sel.sft) == 5 and not sel.dpo
    assert all(r["messages"][-1]["content"].startswith("opponent on") for r in sel.sft)
    # a prompt the teacher never answered gives no row
    assert len(distill_candidates([*ps, P("new", "Something the teacher did not answer at all.")], gens, "o")) == 12


def test_distill_and_caps_are_checked_at_load():
    with pytest.raises(ValidationError, match="distill_from"):
        SelectionConfig(mode="distill", sft_rows=4)
    with pytest.raises(ValidationError, match="only used with mode: distill"):
        SelectionConfig(distill_from="o")
    with pytest.raises(ValidationError):
        SelectionConfig(sft_rows=0)


def test_a_replayed_opponent_answers_only_its_own_prompts(tmp_path):
    from banditarena.flywheel.battles import answers
    from banditarena.models import make_backend

    f = tmp_path / "worked.jsonl"
    f.write_text(json.dumps({"uid": "a1", "model": "worked", "messages": [
        {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": {"answer": "4"}}]}) + "\n")
    replay = make_backend("replay", "worked", path=str(f))
    assert answers(replay, P("a1", "2+2?")) and not answers(replay, P("b7", "Name a river."))
    assert answers(object(), P("b7", "Name a river."))  # a generating backend answers anything


def test_verifiable_accuracy_and_its_paired_ci():
    """Accuracy per iteration with a bootstrap CI over problems; the change from iteration 0 with a paired CI
    (the same resampled problems), which is narrower than the two marginal CIs suggest."""
    from banditarena.flywheel.evaluation import Evaluator
    from banditarena.flywheel.recipe import FlywheelRecipe

    rec = FlywheelRecipe.model_validate({
        "target": {"name": "t", "backend": "local", "model": "x"},
        "opponents": [{"name": "o", "backend": "replay", "path": "data:arena_hard_v0.1/model_answer/gpt-4-0314.jsonl"}],
        "eval": {"bootstrap": 400}})
    ev = Evaluator(rec, None, None, None, [], None)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    c0 = (rng.random(200) < 0.3).astype(float)
    c1 = c0.copy()
    c1[np.flatnonzero(c0 == 0)[:30]] = 1.0  # 30 more right, none lost: +15 points
    ev.correct = {0: c0, 1: c1}
    a0, a1 = ev.accuracy(0), ev.accuracy(1)
    assert a0["accuracy"] == pytest.approx(c0.mean()) and a1["accuracy"] == pytest.approx(c0.mean() + 0.15)
    assert a0["accuracy_low"] < a0["accuracy"] < a0["accuracy_high"]
    assert a1["accuracy_gain"] == pytest.approx(0.15)
    assert 0 < a1["accuracy_gain_low"] < 0.15 < a1["accuracy_gain_high"]
    assert a1["accuracy_gain_high"] - a1["accuracy_gain_low"] < a1["accuracy_high"] - a0["accuracy_low"]
    assert np.isnan(ev.accuracy(2)["accuracy"])  # not evaluated: NaN, not 0


def _mixed_recipe(tiny, tmp_path, **over):
    """A pool mixing Arena-Hard prompts with arithmetic problems; the worked solutions answer only the latter."""
    from banditarena.config import PromptsConfig
    from banditarena.flywheel.recipe import FlywheelRecipe
    from banditarena.laser.data import arithmetic_problems
    from banditarena.prompts import load_pool
    from banditarena.prompts.loaders import save_prompts

    ref = "data:arena_hard_v0.1/model_answer/gpt-4-0613.jsonl"
    hard = load_pool(PromptsConfig(source="arena_hard", limit=14, max_chars=600, reference_from=ref), seed=0)
    arith = arithmetic_problems(10, seed=1)
    save_prompts([*hard, *arith], tmp_path / "pool.jsonl")
    save_prompts(arithmetic_problems(6, seed=2, id_prefix="held"), tmp_path / "held.jsonl")
    with (tmp_path / "worked.jsonl").open("w") as fh:
        for p in arith:
            fh.write(json.dumps({"uid": p.id, "model": "worked", "messages": [
                {"role": "user", "content": p.text},
                {"role": "assistant", "content": {"answer": p.reference.replace("\n#### ", ". The answer is ")}}]}) + "\n")
    d = {
        "name": "gain-test", "seed": 0,
        "target": {"name": "tiny", "backend": "local", "model": str(tiny), "batch_size": 8},
        "opponents": [
            {"name": "gpt-4-0314", "backend": "replay", "path": "data:arena_hard_v0.1/model_answer/gpt-4-0314.jsonl"},
            {"name": "worked", "backend": "replay", "path": str(tmp_path / "worked.jsonl")}],
        "strategies": {"plain": {"max_tokens": 10}},
        "pool": {"source": str(tmp_path / "pool.jsonl")},
        "cluster_field": "category",
        "iterations": 1, "battles_per_iteration": 12, "bandit": {"batch": 4},
        "selection": {"sft_margin": 0.0, "dpo_margin": 0.0, "decontaminate": False, "sft_rows": 3, "dpo_rows": 3},
        "training": {"epochs": 1, "batch_size": 2, "max_length": 256, "max_steps": 1},
        "eval": {"testset": {"source": "arena_hard", "limit": 3, "max_chars": 600, "reference_from": ref},
                 "opponents": ["gpt-4-0314"], "bootstrap": 20,
                 "verifiable": {"source": str(tmp_path / "held.jsonl")},
                 "judges": {"second": {"kind": "learned", "artifact": "judge-learned-fast"}}},
    }
    d.update(over)
    return FlywheelRecipe.model_validate(d)


@pytest.mark.slow
def test_mixed_pool_verifiable_accuracy_second_judge_and_distill(tiny_llama, tmp_path):
    from banditarena.flywheel.loop import Flywheel
    from banditarena.judges import ReferenceSimilarityJudge
    from banditarena.prompts.embed import HashEmbedder

    rec = _mixed_recipe(tiny_llama, tmp_path)
    fw = Flywheel(rec, tmp_path / "run", judge=ReferenceSimilarityJudge(embedder=HashEmbedder()))
    res = fw.run()
    assert res.iterations[0].battles == 12  # the budget is spent, on prompts each opponent can answer
    b = fw.store.battles("it1")
    opp = np.where(b["model_a"].str.startswith("tiny"), b["model_b"], b["model_a"])
    arith = b["prompt_id"].str.startswith("arith")
    assert set(opp[arith.to_numpy()]) <= {"worked"} and set(opp[~arith.to_numpy()]) <= {"gpt-4-0314"}
    assert len(res.iterations) == 1 and res.iterations[0].sft_rows <= 3 and res.iterations[0].dpo_rows <= 3
    # the second judge re-judged exactly the evaluation battles; the held-out problems are never battled
    ev, ev2 = fw.store.battles("eval"), fw.store.battles("eval:second")
    assert len(ev) == len(ev2) == 3 * (1 + 2)  # it0 vs gpt-4-0314; it1 vs gpt-4-0314 and it0 (snapshots)
    assert set(ev["prompt_id"]) == {p.id for p in fw.test} and not any(fw.store.battles()["prompt_id"].str.startswith("held"))
    t = res.table()
    for r in t.to_dict("records"):
        assert 0 <= r["accuracy"] <= 1 and r["accuracy_low"] <= r["accuracy"] <= r["accuracy_high"]
        assert r["answer_tokens"] > 0
        assert r["second_gain_low"] <= r["second_gain"] + 1e-9 and r["second_gain"] <= r["second_gain_high"] + 1e-9
    assert t["second_gain"].iloc[0] == 0 and t["accuracy_gain"].iloc[0] == 0
    from banditarena.text import is_correct

    gens = {(g.contestant, g.prompt_id): g for g in fw.store.generations().itertuples() if g.prompt_id.startswith("held")}
    assert len(gens) == 6 * 2  # each checkpoint answered every held-out problem once
    held = {p.id: p for p in fw.verifiable}
    n_right = sum(is_correct(g.text, held[pid].reference) for (_, pid), g in gens.items())
    assert n_right == round(6 * (t["accuracy"].iloc[0] + t["accuracy"].iloc[1]))
    # a rerun pays for nothing and gives the same measures
    counts = fw.store.counts()
    fw.store.close()
    fw2 = Flywheel(rec, tmp_path / "run", judge=ReferenceSimilarityJudge(embedder=HashEmbedder()))
    assert fw2.run().table()["accuracy"].tolist() == t["accuracy"].tolist()
    assert fw2.store.counts() == counts
    fw2.store.close()

    # the distillation baseline: no battle, no judge call in training data, the teacher's answers only
    rec_d = _mixed_recipe(tiny_llama, tmp_path, name="gain-distill", selection={
        "mode": "distill", "distill_from": "gpt-4-0314", "sft_rows": 4, "decontaminate": False})
    fw_d = Flywheel(rec_d, tmp_path / "distill", judge=ReferenceSimilarityJudge(embedder=HashEmbedder()))
    res_d = fw_d.run()
    assert res_d.iterations[0].battles == 0 and fw_d.store.battles("it1").empty
    rows = [json.loads(x) for x in (tmp_path / "distill" / "data" / "it1" / "sft.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and res_d.iterations[0].dpo_rows == 0
    prov = [json.loads(x) for x in (tmp_path / "distill" / "data" / "it1" / "provenance.jsonl").read_text().splitlines()]
    assert {p["winner"] for p in prov} == {"gpt-4-0314"} and not any(p["prompt_id"].startswith("arith") for p in prov)
