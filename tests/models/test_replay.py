"""ReplayBackend on the real shared answer files (Arena-Hard model_answer and FastChat formats)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from banditarena.errors import DataError, ModelError
from banditarena.models.base import ChatRequest
from banditarena.models.replay import ReplayBackend, replay_models
from banditarena.paths import data_dir
from banditarena.types import Strategy
from tests.support.shared import requires

DATA = data_dir()
AH = DATA / "arena_hard_v0.1" / "model_answer"
FC = DATA / "arena_bench_v1" / "model_answer"


def first_line(path: Path) -> dict:
    with path.open() as fh:
        return json.loads(fh.readline())


def test_arena_hard_format_matches_uid_and_turn() -> None:
    rec = first_line(AH / "gpt-4-0314.jsonl")
    b = ReplayBackend("gpt-4-0314", AH / "gpt-4-0314.jsonl")
    assert len(b.prompt_ids) == 500
    req = ChatRequest(rec["uid"], 0, [{"role": "user", "content": rec["messages"][0]["content"]}])
    (c,) = b.complete([req], Strategy())
    assert c.ok and c.text == rec["messages"][1]["content"]["answer"]
    assert b.lookup(f"arena_hard:{rec['uid']}").text == c.text  # namespaced ids fall back to the tail
    second = b.lookup(rec["uid"], turn=1)
    assert not second.ok and "turn 1" in second.error and "gpt-4-0314.jsonl:1" in second.error
    missing = b.lookup("no-such-uid")
    assert not missing.ok and "'no-such-uid'" in missing.error and "gpt-4-0314.jsonl" in missing.error


@requires("arena_bench_v1/model_answer")
def test_fastchat_format_from_directory_with_multi_turn_answers() -> None:
    b = ReplayBackend("claude-1", FC)
    assert b.files == [FC / "claude-1.jsonl"] and len(b.prompt_ids) == 300
    multi = next(json.loads(line) for line in (FC / "claude-1.jsonl").open()
                 if len(json.loads(line)["choices"][0]["turns"]) == 2)
    qid, turns = multi["question_id"], multi["choices"][0]["turns"]
    reqs = [ChatRequest(qid, 0, [{"role": "user", "content": "x"}]), ChatRequest(qid, 1, [])]
    done: list[int] = []
    out = asyncio.run(b.acomplete(reqs, Strategy(), progress=done.append))
    assert [c.text for c in out] == turns and done == [2]
    assert not b.lookup(qid, 2).ok


@requires("arena_bench_v1/model_answer")
def test_models_listing_and_unknown_model() -> None:
    fc = replay_models(FC)
    assert sorted(fc) == sorted(p.stem for p in FC.glob("*.jsonl")) and len(fc) == 8
    assert list(replay_models(AH)) == ["gpt-3.5-turbo-0125", "gpt-4-0314", "gpt-4-0613"]
    assert list(replay_models(AH / "gpt-4-0613.jsonl")) == ["gpt-4-0613"]
    with pytest.raises(ModelError, match="no answers of model 'gpt-5'.*claude-1"):
        ReplayBackend("gpt-5", FC)
    with pytest.raises(ModelError, match="does not exist"):
        ReplayBackend("x", DATA / "nope.jsonl")


def test_single_model_file_answers_under_an_alias() -> None:
    b = ReplayBackend("reference", AH / "gpt-4-0613.jsonl")
    assert b.source_model == "gpt-4-0613" and b.identity()["source_model"] == "gpt-4-0613"
    assert b.lookup(b.prompt_ids[0]).ok


@requires("arena_bench_v1/model_answer/claude-1.jsonl")
def test_malformed_lines_name_file_and_line(tmp_path: Path) -> None:
    good = (FC / "claude-1.jsonl").read_text().splitlines()[:2]
    for bad, why in (("{not json", "invalid JSON"),
                     ('{"foo": 1}', "not an answer record"),
                     ('{"question_id": "q", "model_id": "claude-1", "choices": []}', "choices"),
                     ('{"uid": "u", "model": "claude-1", "messages": []}', "arena-hard record in a fastchat")):
        f = tmp_path / "answers.jsonl"
        f.write_text("\n".join([*good, bad]) + "\n")
        with pytest.raises(DataError) as exc:
            ReplayBackend("claude-1", f)
        msg = str(exc.value)
        assert msg.startswith(f"{f}:3: ") and why in msg and "\n" not in msg
    f = tmp_path / "ah.jsonl"
    rec = first_line(AH / "gpt-4-0314.jsonl")
    rec["messages"][1]["content"] = {"no_answer": 1}
    f.write_text("\n" + json.dumps(rec) + "\n")
    with pytest.raises(DataError, match=r"ah.jsonl:2: .*answer"):
        ReplayBackend("gpt-4-0314", f)


def test_identity_carries_the_file_content_hash(tmp_path: Path) -> None:
    src = AH / "gpt-3.5-turbo-0125.jsonl"
    a = ReplayBackend("gpt-3.5-turbo-0125", src)
    copy = tmp_path / src.name
    copy.write_bytes(src.read_bytes())
    assert ReplayBackend("gpt-3.5-turbo-0125", copy).identity() == a.identity()
    lines = src.read_text().splitlines()
    rec = json.loads(lines[0])
    rec["messages"][1]["content"]["answer"] = "edited"
    copy.write_text("\n".join([json.dumps(rec), *lines[1:]]) + "\n")
    edited = ReplayBackend("gpt-3.5-turbo-0125", copy)
    assert edited.identity() != a.identity() and edited.lookup(rec["uid"]).text == "edited"
    req = ChatRequest(rec["uid"], 0, [{"role": "user", "content": "q"}])
    assert edited.cache_key(req, Strategy()) != a.cache_key(req, Strategy())


AE = DATA / "alpaca_eval" / "model_outputs"


@requires("alpaca_eval/model_outputs")
def test_alpaca_eval_outputs_match_by_instruction_text() -> None:
    from banditarena.prompts import load_prompts

    prompts = load_prompts("alpaca_eval")
    rows = json.loads((AE / "claude.json").read_text())
    assert len(prompts) == 805 and prompts[0].id == "alpaca_eval-0" and prompts[0].category == rows[0]["dataset"]
    # the named set's references are the AlpacaEval 2.0 baseline's answers
    base = json.loads((AE / "gpt4_1106_preview.json").read_text())
    assert prompts[7].reference == base[7]["output"]
    b = ReplayBackend("claude", AE)  # a folder of model_outputs: <model>.json is read alone
    assert b.files == [AE / "claude.json"] and b.by_instruction and len(b.prompt_ids) == 805
    # any id works: the answer is found by the instruction text of the request
    reqs = [ChatRequest("whatever-id", 0, [{"role": "system", "content": "s"},
                                             {"role": "user", "content": "  " + rows[5]["instruction"] + "\n"}]),
            ChatRequest("alpaca_eval-x", 0, [{"role": "user", "content": "not an AlpacaEval instruction"}])]
    ok, missing = b.complete(reqs, Strategy())
    assert ok.text == rows[5]["output"]
    assert not missing.ok and "claude.json" in missing.error and "alpaca_eval-x" in missing.error
    b.check_prompts(prompts, "alpaca_eval")  # every entry answers a prompt of the set
    with pytest.raises(DataError, match=r"claude\.json\[10\]: instruction .* is not in the first ten"):
        b.check_prompts(prompts[:10], "the first ten")


@requires("alpaca_eval/model_outputs")
def test_alpaca_eval_single_file_alias_and_identity(tmp_path: Path) -> None:
    rows = json.loads((AE / "vicuna-7b-v1.5.json").read_text())[:20]
    f = tmp_path / "outs.json"
    f.write_text(json.dumps(rows))
    b = ReplayBackend("mine", f)  # one generator in the file: answers under any name
    assert b.source_model == "vicuna-7b-v1.5" and b.lookup("p", text=rows[3]["instruction"]).text == rows[3]["output"]
    rows[3]["output"] = "edited"
    f.write_text(json.dumps(rows))
    assert ReplayBackend("mine", f).identity() != b.identity()


@pytest.mark.parametrize(("content", "needle"), [
    ('{"instruction": "a", "output": "b"}', r"outs\.json: an AlpacaEval outputs file must be a JSON list"),
    ('[{"instruction": "a", "output": "b"}, {"instruction": "c", "generator": "m"}]',
     r"outs\.json\[1\]: entry has no string 'output'"),
    ('[{"output": "b"}]', r"outs\.json\[0\]: entry has no string 'instruction'"),
    ('[1, 2]', r"outs\.json\[0\]: expected an object"),
    ('[{"instruction": "a", "output": "b"},', r"outs\.json:1: invalid JSON"),
])
def test_bad_alpaca_eval_files_name_file_and_entry(tmp_path: Path, content: str, needle: str) -> None:
    f = tmp_path / "outs.json"
    f.write_text(content)
    with pytest.raises(DataError, match=needle) as exc:
        ReplayBackend("m", f)
    assert "\n" not in str(exc.value)
