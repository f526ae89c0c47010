"""Loaders: every shared set, every record shape, and the bad-input errors (file:line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from banditarena.errors import DataError
from banditarena.paths import data_dir
from banditarena.prompts import load_prompts, load_prompts_report, save_prompts
from banditarena.types import Prompt

DATA = data_dir()
needs_data = pytest.mark.skipif(not (DATA / "mt_bench").is_dir(), reason="shared data not found")


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


# ------------------------------------------------------------------ shared sets (counts from data/README.md)
@needs_data
@pytest.mark.parametrize(
    "name,count,n_refs,turns",
    [
        ("mt_bench", 80, 30, 2),
        ("vicuna_bench", 80, 10, 1),
        ("arena_hard", 500, 0, 1),
        ("arena_bench_v1", 300, 300, 1),
        ("gsm8k:train", 7473, 7473, 1),
        ("gsm8k:test", 1319, 1319, 1),
    ],
)
def test_named_sets_counts(name, count, n_refs, turns):
    ps = load_prompts(name)
    assert len(ps) == count
    assert len({p.id for p in ps}) == count
    assert all(isinstance(p.id, str) for p in ps)
    assert sum(p.reference is not None for p in ps) == n_refs
    assert all(len(p.user_turns) == turns for p in ps)
    assert all(m["role"] == "user" and m["content"].strip() for p in ps for m in p.messages)
    assert all(p.source == name for p in ps)


@needs_data
def test_mt_bench_fields_and_reference_alignment():
    ps = {p.id: p for p in load_prompts("mt_bench")}
    assert ps["81"].category == "writing"
    assert len({p.category for p in ps.values()}) == 8
    ref = json.loads((DATA / "mt_bench/reference_answer_gpt-4.jsonl").read_text().splitlines()[0])
    p = ps[str(ref["question_id"])]
    # the reference answers the last user turn; all turns are kept in meta
    assert p.reference == ref["choices"][0]["turns"][-1]
    assert p.meta["reference_turns"] == ref["choices"][0]["turns"]
    # question 95 has only an inline (FastChat) reference: kept in meta, not as the GPT-4 reference
    assert ps["95"].reference is None and ps["95"].meta["inline_reference"]


@needs_data
def test_arena_hard_clusters_and_reference_model():
    ps = load_prompts("arena_hard")
    assert len({p.cluster for p in ps}) == 250
    assert ps[0].id == "328c149ed45a41c0b9d6f14659e63599"
    assert ps[0].text.startswith("Use ABC notation")
    ref = load_prompts("arena_hard", reference_model="gpt-4-0314", limit=5)
    assert len(ref) == 5 and all(p.reference for p in ref)
    with pytest.raises(DataError, match="no answers of model 'nope'"):
        load_prompts("arena_hard", reference_model="nope")


@needs_data
def test_gsm8k_reference_is_final_number():
    p = load_prompts("gsm8k:test", limit=1)[0]
    assert p.id == "gsm8k-test-0" and p.reference == "18" and p.category == "math"
    assert p.meta["solution"].endswith("#### 18")
    # the same file by path gets row ids from the stem
    q = load_prompts(DATA / "gsm8k/test.jsonl", limit=2)
    assert [x.id for x in q] == ["test-0", "test-1"] and q[0].reference == "18"


@needs_data
def test_data_prefix_and_env_override(tmp_path, monkeypatch):
    assert len(load_prompts("data:vicuna_bench/question.jsonl")) == 80
    (tmp_path / "vicuna_bench").mkdir()
    write_jsonl(tmp_path / "vicuna_bench/question.jsonl", [{"question_id": 1, "turns": ["only one"]}])
    monkeypatch.setenv("BANDITARENA_DATA", str(tmp_path))
    ps = load_prompts("vicuna_bench")
    assert len(ps) == 1 and ps[0].text == "only one"


def test_unknown_set_lists_known_names():
    with pytest.raises(DataError) as e:
        load_prompts("mt_bnech")
    msg = str(e.value)
    assert "unknown prompt set 'mt_bnech'" in msg and "mt_bench" in msg and "gsm8k:test" in msg
    assert "\n" not in msg
    with pytest.raises(DataError, match="file not found"):
        load_prompts("/nonexistent/x.jsonl")


# ------------------------------------------------------------------ record shapes
def test_record_shapes(tmp_path):
    rows = [
        {
            "id": "p1",
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            "category": "chat",
            "cluster": 3,
            "reference": "hello",
            "meta": {"k": 1},
        },
        {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]},
        {"question_id": 7, "category": "math", "turns": ["t1", "t2"], "reference": ["r1", "r2"]},
        {"uid": "u9", "category": "arena-hard-v0.1", "cluster": "Topic", "prompt": "Write a folk tune."},
        {"instruction": "Translate", "input": "bonjour", "output": "hello"},
        {"question": "Q?", "answer": "work\n#### 1,234"},
        {
            "prompt": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "multi"}, {"type": "text", "text": "part"}],
                }
            ]
        },
        {"question_id": "q2", "turns": [{"content": "dict turn"}]},
    ]
    ps = load_prompts(write_jsonl(tmp_path / "pool.jsonl", rows))
    assert [p.id for p in ps] == ["p1", "pool-1", "7", "u9", "pool-4", "pool-5", "pool-6", "q2"]
    p1 = ps[0]
    assert p1.messages[0]["role"] == "system" and p1.text == "hi" and p1.cluster == "3"
    assert p1.reference == "hello" and p1.meta == {"k": 1} and p1.category == "chat"
    assert ps[1].messages == [{"role": "user", "content": "2+2?"}] and ps[1].reference == "4"
    assert ps[2].user_turns == ["t1", "t2"] and ps[2].reference == "r2" and ps[2].category == "math"
    assert ps[3].cluster == "Topic" and ps[3].text == "Write a folk tune."
    assert ps[4].text == "Translate\n\nbonjour" and ps[4].reference == "hello"
    assert ps[5].reference == "1234"
    assert ps[6].text == "multipart"
    assert ps[7].text == "dict turn"


def test_id_field_text_field_and_limit(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"key": f"k{i}", "body": f"text {i}"} for i in range(5)])
    ps = load_prompts(path, id_field="key", text_field="body", limit=3)
    assert [p.id for p in ps] == ["k0", "k1", "k2"] and ps[2].text == "text 2"
    with pytest.raises(DataError, match=r"x\.jsonl:1: no prompt field"):
        load_prompts(path)
    with pytest.raises(DataError, match=r"x\.jsonl:1: no id field 'nope'"):
        load_prompts(path, id_field="nope", text_field="body")


# ------------------------------------------------------------------ bad input
def test_malformed_jsonl_names_file_and_line(tmp_path):
    path = write_jsonl(
        tmp_path / "bad.jsonl", [{"prompt": "ok"}, "", {"prompt": "ok2"}, '{"prompt": "broken"']
    )
    with pytest.raises(DataError) as e:
        load_prompts(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}:4: invalid JSON (")
    assert "\n" not in msg


def test_empty_prompt_names_file_and_line(tmp_path):
    path = write_jsonl(
        tmp_path / "empty.jsonl", [{"prompt": "fine"}, {"prompt": "   "}, {"turns": ["a", ""]}]
    )
    with pytest.raises(DataError) as e:
        load_prompts(path)
    assert str(e.value) == f"{path}:2: empty prompt"
    with pytest.warns(UserWarning, match="skipped 2 empty prompt"):
        res = load_prompts_report(path, skip_empty=True)
    assert [p.text for p in res.prompts] == ["fine"]
    assert res.skipped == [f"{path}:2", f"{path}:3"]


def test_other_bad_records(tmp_path):
    with pytest.raises(DataError, match=r"d\.jsonl:2: duplicate id 'a' \(first at .*d\.jsonl:1\)"):
        load_prompts(
            write_jsonl(tmp_path / "d.jsonl", [{"id": "a", "prompt": "x"}, {"id": "a", "prompt": "y"}])
        )
    with pytest.raises(DataError, match=r"l\.jsonl:1: expected a JSON object, got list"):
        load_prompts(write_jsonl(tmp_path / "l.jsonl", [[1, 2]]))
    with pytest.raises(DataError, match=r"r\.jsonl:1: messages\[0\] has unknown role 'robot'"):
        load_prompts(write_jsonl(tmp_path / "r.jsonl", [{"messages": [{"role": "robot", "content": "x"}]}]))
    with pytest.raises(DataError, match=r"only-assistant\.jsonl:1: empty prompt"):
        load_prompts(
            write_jsonl(
                tmp_path / "only-assistant.jsonl", [{"messages": [{"role": "assistant", "content": "x"}]}]
            )
        )
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="unsupported file type '.csv'"):
        load_prompts(tmp_path / "x.csv")


# ------------------------------------------------------------------ round trips, parquet, datasets
def _pool() -> list[Prompt]:
    return [
        Prompt(
            id="a",
            messages=[{"role": "user", "content": "first"}, {"role": "user", "content": "second"}],
            category="c",
            cluster="1",
            reference="r",
            source="s",
            meta={"x": [1, 2]},
        ),
        Prompt(id="b", messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": "only"}]),
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_save_load_round_trip(tmp_path, suffix):
    path = save_prompts(_pool(), tmp_path / f"pool{suffix}")
    back = load_prompts(path)
    assert [p.to_dict() for p in back] == [p.to_dict() for p in _pool()]


def test_parquet_errors_name_the_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"prompt": ["ok", ""]}), tmp_path / "e.parquet")
    with pytest.raises(DataError, match=r"e\.parquet:row 2: empty prompt"):
        load_prompts(tmp_path / "e.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_prompts(tmp_path / "junk.parquet")


def test_datasets_object_and_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(
        [{"question": "What is 1+1?", "answer": "#### 2"}, {"question": "Q2", "answer": "#### 3"}]
    )
    ps = load_prompts(ds)
    assert [p.id for p in ps] == ["dataset-0", "dataset-1"] and ps[0].reference == "2"
    dd = datasets.DatasetDict({"train": ds, "test": ds.select([1])})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert [p.text for p in load_prompts(tmp_path / "dd", split="test")] == ["Q2"]
    with pytest.raises(DataError, match="choose one with split="):
        load_prompts(tmp_path / "dd")
    bad = datasets.Dataset.from_list([{"prompt": "fine"}, {"prompt": ""}])
    with pytest.raises(DataError, match=r"dataset\[1\]: empty prompt"):
        load_prompts(bad)
