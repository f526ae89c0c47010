import json

import pandas as pd
import pytest

from banditarena.flywheel.data import SelectionConfig, export, select_training_data, yields_data
from banditarena.flywheel.safety import DefaultSafetyFilter
from banditarena.types import Generation, Prompt


@pytest.mark.parametrize("text, reason", [
    ("Contact me at jane.doe@gmail.com for details", "email"),
    ("My SSN is 123-45-6789", "social security"),
    ("Card: 4111 1111 1111 1111 exp 12/29", "payment card"),
    ("Call me on (415) 867-2309 tonight", "phone"),
    ("The server is at 84.23.11.200", "IP address"),
    ("I will kill you if you answer that", "toxicity"),
    ("Here is how to make a pipe bomb at home", "toxicity"),
])
def test_safety_flags_with_reason(text, reason):
    v = DefaultSafetyFilter().check(text)
    assert not v.ok and any(reason in r for r in v.reasons)


@pytest.mark.parametrize("text", [
    "Write to user@example.com (a placeholder address).",
    "Version 1.2.3.4 of the package, and localhost 127.0.0.1.",
    "The order number is 1234 5678 9012 3456.",  # not Luhn-valid
    "To kill a process in Linux, run `kill -9 PID`.",
    "Call 555-123-4567 in the movie script.",
    "Compute 3x + 2y + 4 = 0 for x in 1..10.",
])
def test_safety_passes_benign_text(text):
    assert DefaultSafetyFilter().check(text).ok


def P(pid, text, cluster="c"):
    return Prompt(pid, [{"role": "user", "content": text}], cluster=cluster)


def G(name, pid, text):
    return Generation(name, pid, [text])


@pytest.fixture
def data():
    prompts = {p.id: p for p in [
        P("p1", "Explain how rainbows form in the sky after rain."),
        P("p2", "Write a haiku about autumn leaves falling slowly."),
        P("p3", "Explain how Rainbows form in the sky, after rain!"),  # near-duplicate of p1
        P("p4", "List three uses of baking soda in cleaning."),
        P("p5", "Summarise the plot of Hamlet in two sentences."),
    ]}
    gens = {}
    for pid in prompts:
        gens[("t", pid)] = G("t", pid, f"target answer {pid}")
        gens[("o", pid)] = G("o", pid, f"opponent answer {pid}")
    gens[("o", "p4")] = G("o", "p4", "Email me at real.person@corp-mail.com and I will explain.")
    battles = pd.DataFrame([
        {"prompt_id": "p1", "model_a": "t", "model_b": "o", "winner": "model_b", "margin": -4.0},  # SFT + DPO
        {"prompt_id": "p2", "model_a": "o", "model_b": "t", "winner": "model_a", "margin": 2.5},   # DPO only
        {"prompt_id": "p3", "model_a": "t", "model_b": "o", "winner": "model_b", "margin": -5.0},  # dup of p1
        {"prompt_id": "p4", "model_a": "t", "model_b": "o", "winner": "model_b", "margin": -6.0},  # unsafe winner
        {"prompt_id": "p5", "model_a": "t", "model_b": "o", "winner": "model_a", "margin": 3.0},   # target won
    ])
    return prompts, gens, battles


def test_selection_rules_filters_and_reasons(data, tmp_path):
    prompts, gens, battles = data
    sel = select_training_data(battles, prompts, gens, "t", SelectionConfig(sft_margin=3, dpo_margin=2, decontaminate=False))
    assert [r["messages"][-1]["content"] for r in sel.sft] == ["opponent answer p1"]
    chosen = [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in sel.dpo]
    assert ("opponent answer p1", "target answer p1") in chosen
    assert ("opponent answer p2", "target answer p2") in chosen
    assert ("target answer p5", "opponent answer p5") in chosen  # target won by 3: a valid pair too
    reasons = {(e["prompt_id"], e["reason"].split(":")[0]) for e in sel.excluded}
    assert ("p4", "safety") in reasons and ("p3", "near-duplicate") in reasons
    assert sel.stats["excluded_by_reason"]["safety"] == 2  # SFT and DPO rows of p4
    only_losses = select_training_data(battles, prompts, gens, "t",
                                       SelectionConfig(dpo_losses_only=True, decontaminate=False))
    assert all(r["chosen"][0]["content"].startswith("opponent") for r in only_losses.dpo)

    files = export(sel, tmp_path)
    from datasets import load_dataset

    sft = load_dataset("json", data_files=str(files["sft.jsonl"]), split="train")
    assert sft[0]["messages"][0]["role"] == "user"
    dpo = load_dataset("parquet", data_files=str(files["dpo.parquet"]), split="train")
    assert set(dpo.column_names) == {"prompt", "chosen", "rejected"} and len(dpo) == len(sel.dpo)
    excluded = [json.loads(x) for x in files["excluded"].read_text().splitlines()]
    assert any("email" in e["reason"] for e in excluded)


def test_no_yield_at_high_k(data):
    prompts, gens, battles = data
    sel = select_training_data(battles, prompts, gens, "t", SelectionConfig(sft_margin=9, dpo_margin=9, decontaminate=False))
    assert not sel.sft and not sel.dpo
    row = battles.iloc[0].to_dict()
    assert yields_data(row, {"t"}, 3) and not yields_data(row, {"t"}, 5) and not yields_data(row, {"o"}, 3)


def test_identical_rows_are_kept_once(data):
    """The target lost p1 to the same opponent under two strategies: the winner's SFT row is the same both
    times (kept once, the copy excluded with its reason); the DPO pairs differ in their rejected answers."""
    prompts, gens, _ = data
    gens[("t/a", "p1")] = G("t/a", "p1", "terse target answer")
    gens[("t/b", "p1")] = G("t/b", "p1", "expert target answer")
    battles = pd.DataFrame([
        {"prompt_id": "p1", "model_a": "t/a", "model_b": "o", "winner": "model_b", "margin": -4.0},
        {"prompt_id": "p1", "model_a": "o", "model_b": "t/b", "winner": "model_a", "margin": 5.0},
    ])
    sel = select_training_data(battles, prompts, gens, {"t/a", "t/b"},
                               SelectionConfig(sft_margin=3, dpo_margin=2, decontaminate=False, dedup=False))
    assert len(sel.sft) == 1 and len(sel.dpo) == 2
    dup = [e for e in sel.excluded if e["reason"].startswith("duplicate")]
    assert len(dup) == 1 and dup[0]["kind"] == "sft" and "loser t/b" in dup[0]["reason"]
    assert sum(1 for p in sel.provenance if p["kind"] == "sft") == 1
