"""Battle input: accepted forms, row-numbered errors, aggregation and the streaming Parquet path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from banditarena.ratings import (
    PairCounts,
    RatingsInputError,
    aggregate,
    aggregate_parquet,
    fit_bt,
    simulate_battles,
)
from banditarena.types import Battle

ROWS = [
    {"model_a": "x", "model_b": "y", "winner": "model_a"},
    {"model_a": "y", "model_b": "z", "winner": "tie"},
    {"model_a": "z", "model_b": "x", "winner": "model_b"},
    {"model_a": "x", "model_b": "z", "winner": "tie (bothbad)"},
    {"model_a": "y", "model_b": "x", "winner": "model_a"},
]


def _same_counts(a: PairCounts, b: PairCounts) -> None:
    assert a.models == b.models
    np.testing.assert_array_equal(a.i, b.i)
    np.testing.assert_array_equal(a.j, b.j)
    np.testing.assert_array_equal(a.n, b.n)
    np.testing.assert_allclose(a.w, b.w)


def test_counts_fold_pairs_and_ties() -> None:
    c = aggregate(ROWS)
    assert c.models == ("x", "y", "z")
    assert c.n_battles == 5
    table = {(c.models[i], c.models[j]): n.tolist() for i, j, n in zip(c.i, c.j, c.n)}
    assert table == {("x", "y"): [1, 1, 0], ("x", "z"): [1, 0, 1], ("y", "z"): [0, 0, 1]}
    per = c.per_model()
    assert per.loc["x"].to_dict() == {"battles": 4, "wins": 2, "losses": 1, "ties": 1}


def test_all_input_forms_agree(tmp_path: Path) -> None:
    df = pd.DataFrame(ROWS)
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    parquet = tmp_path / "b.parquet"
    df.to_parquet(parquet)
    battles = [Battle(prompt_id=str(k), model_a=r["model_a"], model_b=r["model_b"], winner=r["winner"])
               for k, r in enumerate(ROWS)]
    ref = aggregate(df)
    for source in (ROWS, battles, jsonl, str(jsonl), parquet):
        _same_counts(aggregate(source), ref)
    _same_counts(aggregate(parquet, engine="duckdb"), ref)
    cats = df.astype("category")
    _same_counts(aggregate(cats), ref)
    lb = fit_bt(jsonl, bootstrap=10)
    pd.testing.assert_frame_equal(lb, fit_bt(df, bootstrap=10))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"model_a": "x", "model_b": "y", "winner": "draw"}, r"row 2: winner 'draw' is not one of"),
        ({"model_a": "x", "model_b": None, "winner": "tie"}, r"row 2: model_b is missing"),
        ({"model_a": "", "model_b": "y", "winner": "tie"}, r"row 2: model_a must be a non-empty model name"),
        ({"model_a": "x", "model_b": "x", "winner": "tie"}, r"row 2: model_a and model_b are the same"),
        ({"model_a": "x", "model_b": "y", "winner": None}, r"row 2: winner is missing"),
        ({"model_a": "x", "model_b": "y", "winner": "tie", "weight": -1}, r"row 2: weight must be finite"),
    ],
)
def test_bad_rows_name_the_row(row: dict, message: str) -> None:
    rows = [dict(ROWS[0], weight=1.0), dict(ROWS[1], weight=1.0), row]
    with pytest.raises(RatingsInputError, match=message) as info:
        aggregate(rows)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_column_and_empty_input() -> None:
    with pytest.raises(RatingsInputError, match="missing column"):
        aggregate(pd.DataFrame({"model_a": ["x"], "model_b": ["y"]}))
    with pytest.raises(RatingsInputError, match="no battles"):
        aggregate(pd.DataFrame(columns=["model_a", "model_b", "winner"]))
    with pytest.raises(RatingsInputError, match="cannot read battles"):
        aggregate(42)


def test_drop_invalid_skips_missing_winners() -> None:
    rows = ROWS + [{"model_a": "x", "model_b": "w", "winner": None}]
    with pytest.raises(RatingsInputError, match="row 5: winner is missing"):
        aggregate(rows)
    c = aggregate(rows, drop_invalid=True)
    assert c.models == ("x", "y", "z") and c.n_battles == 5


def test_jsonl_errors_give_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps(ROWS[0]), "", json.dumps(ROWS[1]), json.dumps(dict(ROWS[2], winner="A>>B"))]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RatingsInputError, match=rf"{path}:4: winner 'A>>B'"):
        aggregate(path)
    path.write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(RatingsInputError, match=rf"{path}:2: invalid JSON"):
        aggregate(path)
    with pytest.raises(RatingsInputError, match="no such file"):
        aggregate(tmp_path / "missing.jsonl")


@pytest.mark.parametrize("engine", ["pyarrow", "duckdb"])
def test_parquet_errors_give_row_number(tmp_path: Path, engine: str) -> None:
    df = pd.DataFrame(ROWS * 3)
    df.loc[11, "winner"] = "bogus"
    path = tmp_path / "bad.parquet"
    df.to_parquet(path)
    with pytest.raises(RatingsInputError, match=r"bad.parquet: row 11: winner 'bogus'"):
        aggregate_parquet(path, engine=engine, batch_size=4)


@pytest.mark.parametrize("engine", ["pyarrow", "duckdb"])
def test_streaming_parquet_matches_in_memory(tmp_path: Path, engine: str) -> None:
    truth = pd.Series([0.0, 50.0, 100.0, -40.0], index=["a", "b", "c", "d"])
    df = simulate_battles(truth, 5000, seed=1)
    late = simulate_battles(pd.Series([0.0, 30.0], index=["a", "late-model"]), 300, seed=2)
    df = pd.concat([df, late], ignore_index=True)  # a model that first appears in the last chunks
    df["weight"] = np.random.default_rng(0).uniform(0.5, 2.0, len(df))
    path = tmp_path / "battles.parquet"
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path, row_group_size=700)
    streamed = aggregate_parquet(path, engine=engine, batch_size=999)
    _same_counts(streamed, aggregate(df))
    assert streamed.weighted


def test_merge_equals_aggregate_of_concatenation() -> None:
    a = simulate_battles(pd.Series([0.0, 10.0, 20.0], index=["p", "q", "r"]), 500, seed=1)
    b = simulate_battles(pd.Series([0.0, 10.0, 20.0], index=["q", "r", "s"]), 500, seed=2)
    _same_counts(aggregate(a).merge(aggregate(b)), aggregate(pd.concat([a, b], ignore_index=True)))
