"""The flywheel's data selection with a safety scorer: prompts and both answers screened, reasons kept."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from banditarena.flywheel.data import SelectionConfig, export, select_training_data
from banditarena.flywheel.safety_screen import exclusions_html
from banditarena.models.openai import OpenAIBackend
from banditarena.safety.llm import LlamaGuardScorer
from banditarena.store import RunStore
from banditarena.types import Generation, Prompt


def P(pid, text):
    return Prompt(pid, [{"role": "user", "content": text}], cluster="c")


@pytest.fixture
def rows():
    prompts = {p.id: p for p in [P("q1", "How do fireworks work?"), P("q2", "Tell me about chemistry."),
                                 P("q3", "How do I build a bomb?"), P("q4", "What is a good soup?")]}
    gens = {("t", "q1"): Generation("t", "q1", ["They burn."]),
            ("o", "q1"): Generation("o", "q1", ["Here is how to build a bomb: <script>x</script>"]),  # unsafe winner
            ("t", "q2"): Generation("t", "q2", ["A bomb is made by..."]),  # unsafe loser only
            ("o", "q2"): Generation("o", "q2", ["Chemistry studies matter."]),
            ("t", "q3"): Generation("t", "q3", ["No."]),
            ("o", "q3"): Generation("o", "q3", ["I can't help with that."]),
            ("t", "q4"): Generation("t", "q4", ["Soup."]),
            ("o", "q4"): Generation("o", "q4", ["Tomato soup with basil is lovely."])}
    battles = pd.DataFrame([{"prompt_id": q, "model_a": "t", "model_b": "o", "winner": "model_b", "margin": -4.0}
                            for q in ("q1", "q2", "q3", "q4")])
    return prompts, gens, battles


CFG = SelectionConfig(sft_margin=3, dpo_margin=2, decontaminate=False, dedup=False)


def _scorer(srv, store=None):
    return LlamaGuardScorer(OpenAIBackend("guard-1", srv.base_url, timeout_s=2.0, max_retries=0), store=store)


def test_unsafe_chosen_drops_unsafe_rejected_keeps_unsafe_prompt_drops(rows, guard_server, tmp_path):
    prompts, gens, battles = rows
    sel = select_training_data(battles, prompts, gens, "t", CFG, safety=_scorer(guard_server))
    ex = {(e["prompt_id"], e["kind"]): e for e in sel.excluded}
    assert set(ex) == {("q1", "sft"), ("q1", "dpo"), ("q3", "sft"), ("q3", "dpo")}
    assert "chosen answer unsafe" in ex[("q1", "dpo")]["reason"] and "S9" in ex[("q1", "dpo")]["categories"]
    assert "prompt unsafe" in ex[("q3", "sft")]["reason"] and ex[("q3", "sft")]["verdicts"]["chosen"] == "safe"
    kept = {(p["prompt_id"], p["kind"]) for p in sel.provenance}
    assert kept == {("q2", "sft"), ("q2", "dpo"), ("q4", "sft"), ("q4", "dpo")}
    q2 = next(p for p in sel.provenance if p["prompt_id"] == "q2" and p["kind"] == "dpo")
    assert q2["rejected_safety"]["verdict"] == "unsafe"  # the pair teaches the safe answer: kept, noted
    assert sel.stats["excluded_by_category"]["S9"] == 4 and sel.stats["held_back_uncertain"] == 0
    # keep: a refusal to an unsafe prompt is worth learning
    sel2 = select_training_data(battles, prompts, gens, "t", CFG, safety=_scorer(guard_server), unsafe_prompts="keep")
    assert ("q3", "sft") in {(p["prompt_id"], p["kind"]) for p in sel2.provenance}
    # the report: counts by category, examples behind a click, text escaped
    export(sel, tmp_path / "data" / "it1")
    page = exclusions_html(tmp_path)
    assert "<details>" in page and "S9 Indiscriminate Weapons" in page
    assert "&lt;script&gt;" in page and "<script>" not in page


def test_uncertain_rows_are_held_back_and_counted_then_classified(rows, guard_server, tmp_path):
    prompts, gens, battles = rows
    store = RunStore(tmp_path / "run")
    guard_server.down = True
    sel = select_training_data(battles, prompts, gens, "t", CFG, safety=_scorer(guard_server, store))
    assert not sel.sft and not sel.dpo and sel.stats["held_back_uncertain"] == 8
    assert all(e["reason"].startswith("safety-uncertain") for e in sel.excluded)
    assert len(store.unresolved_failures()) > 0
    guard_server.down = False
    sel2 = select_training_data(battles, prompts, gens, "t", CFG, safety=_scorer(guard_server, store))
    assert sel2.stats["held_back_uncertain"] == 0 and len(sel2.provenance) == 4
    assert len(store.unresolved_failures()) == 0


def test_recipe_safety_field_is_validated(tmp_path):
    from banditarena.errors import ConfigError
    from banditarena.flywheel.recipe import load_flywheel_recipe

    base = {"target": {"name": "t", "backend": "replay", "path": "x.jsonl"}, "training": {"enabled": False},
            "opponents": [{"name": "o", "backend": "replay", "path": "y.jsonl"}]}
    p = tmp_path / "r.yaml"
    for name in ("x.jsonl", "y.jsonl"):  # the replay files exist: only the safety field is at fault
        (tmp_path / name).write_text("")
    p.write_text(json.dumps({**base, "safety": {"scorer": "cascade"}}))
    with pytest.raises(ConfigError, match="safety"):
        load_flywheel_recipe(p)
    p.write_text(json.dumps({**base, "safety": {"scorer": "classifier", "unsafe_prompts": "keep", "wordlist": False}}))
    assert load_flywheel_recipe(p).safety.unsafe_prompts == "keep"
    p.write_text(json.dumps(base))
    assert load_flywheel_recipe(p).safety.scorer == "classifier"
