"""Style-controlled ratings beside the raw ones: leaderboard (table and JSON) and report."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from banditarena.arena.style import (
    add_style_columns,
    battles_with_style,
    battles_with_texts,
    style_controlled,
)
from banditarena.ratings import fit_bt
from banditarena.store import RunStore

ROOT = Path(__file__).resolve().parents[2]
RECIPE = """
name: style
prompts: {source: arena_hard, limit: 16, reference_from: "data:arena_hard_v0.1/model_answer/gpt-4-0613.jsonl"}
contestants:
  - {name: gpt-4-0314, backend: replay, path: "data:arena_hard_v0.1/model_answer/gpt-4-0314.jsonl"}
  - {name: gpt-3.5-turbo-0125, backend: replay, path: "data:arena_hard_v0.1/model_answer/gpt-3.5-turbo-0125.jsonl"}
  - {name: gpt-4-0613, backend: replay, path: "data:arena_hard_v0.1/model_answer/gpt-4-0613.jsonl"}
judge: {kind: similarity}
leaderboard: {bootstrap: 30}
"""


def cli(*args):
    out = subprocess.run([sys.executable, "-m", "banditarena.cli", *map(str, args)], capture_output=True, text=True,
                         cwd=ROOT, timeout=600, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_leaderboard_and_report_carry_the_style_controlled_rating(tmp_path):
    (tmp_path / "r.yaml").write_text(RECIPE)
    table = cli("battle", tmp_path / "r.yaml", "--run-dir", tmp_path / "run", "--no-progress")
    assert "style-controlled (95% CI)" in table
    rows = json.loads(cli("leaderboard", tmp_path / "run", "--json", "--bootstrap", "30"))
    for r in rows:
        assert r["style_ci_low"] <= r["style_rating"] <= r["style_ci_high"] and r["style_rank"] >= 1
    # the same fit by hand: battles joined with the stored answers' texts
    store = RunStore(tmp_path / "run", create=False)
    b = battles_with_texts(store)
    assert len(b) == 48 and b["response_a"].str.len().min() > 0
    res = style_controlled(b, bootstrap=30, seed=0)
    assert {r["model"]: r["style_rating"] for r in rows} == res.leaderboard["rating"].to_dict()
    # the leaderboard's lighter path (each answer's style counted once, no texts in the frame) fits the same
    counted = battles_with_style(store)
    assert len(counted) == 48 and (counted["length_a"] > 0).all() and "response_a" not in counted.columns
    assert (counted["length_a"].tolist() == b["response_a"].str.split().str.len().tolist())
    assert style_controlled(counted, bootstrap=30, seed=0).leaderboard.equals(res.leaderboard)
    html = Path(cli("report", tmp_path / "run", "--bootstrap", "30").strip()).read_text()
    assert "Style controlled 95 ci" in html and "Style rank" in html


def test_a_win_that_is_only_length_vanishes_under_style_control():
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(600):  # three equally good models; "long" writes twice as much, and the judge loves length
        a, b = rng.choice(["long", "plain", "other"], 2, replace=False)
        la, lb = (rng.integers(150, 250) if m == "long" else rng.integers(60, 120) for m in (a, b))
        p = 1 / (1 + np.exp(-3 * (la - lb) / (la + lb)))
        rows.append({"model_a": a, "model_b": b, "winner": "model_a" if rng.random() < p else "model_b",
                     "response_a": "w " * int(la), "response_b": "w " * int(lb)})
    df = pd.DataFrame(rows)
    raw = fit_bt(df[["model_a", "model_b", "winner"]], bootstrap=0)
    lb = add_style_columns(raw, style_controlled(df, bootstrap=50))
    raw_gap = raw.loc["long", "rating"] - raw.loc["plain", "rating"]
    gap = lb.loc["long", "style_rating"] - lb.loc["plain", "style_rating"]
    assert raw_gap > 150 and abs(gap) < raw_gap / 2  # most of the raw gain was length (what is left: estimation)
    assert lb.attrs["style_coefficients"]["length"]["coef"] > 0
