"""The human leaderboard beside an AI judge's on the same battles, and judge-vs-human agreement, on a run with
known votes and judges whose agreement is known by construction."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from banditarena.cli import app
from banditarena.store import RunStore
from banditarena.types import Battle
from banditarena.votes.agreement import agreement_against_human
from banditarena.votes.board import human_and_judges
from banditarena.votes.records import vote_row
from tests.votes.conftest import MODELS, fill_store, make_prompts

STRENGTH = {"alpha-7b": 0.0, "beta-13b": 1.0, "gamma-70b": 2.0}
FLIP = {"model_a": "model_b", "model_b": "model_a", "tie": "tie", "tie (bothbad)": "tie"}


@pytest.fixture()
def run(tmp_path):
    """24 prompts; 400 votes of people preferring the stronger model (logistic in STRENGTH, 10% ties); three AI
    judges on every matchup voted on: 'oracle' picks what the first person picked, 'contrarian' the same except the
    opposite on the prompts of topic cluster c0, 'lazy' always says tie. The AI battles store the pair in the other order half
    the time (the comparison must orient them)."""
    import math

    rng = random.Random(0)
    run_dir = tmp_path / "run"
    with RunStore(run_dir) as store:
        prompts = make_prompts(24)
        answers = fill_store(store, prompts)
        votes, first = [], {}
        for i in range(400):
            p = rng.choice(prompts)
            a, b = rng.sample(MODELS, 2)
            pr = 1 / (1 + math.exp(-(STRENGTH[a] - STRENGTH[b])))
            t = "tievote" if rng.random() < 0.1 else ("leftvote" if rng.random() < pr else "rightvote")
            v = vote_row(vote_id=f"h_{i}", voter=f"v_{i:016x}", tstamp=1000.0 + i, type_=t, prompt_id=p.id,
                         model_a=a, model_b=b, gen_a=answers[(a, p.id)].cache_key, gen_b=answers[(b, p.id)].cache_key)
            votes.append(v)
            key = (p.id, frozenset((a, b)))
            first.setdefault(key, (a, b, {"leftvote": "model_a", "rightvote": "model_b"}.get(t, "tie")))
        stored = store.put_votes(votes)
        rows = {"oracle": [], "contrarian": [], "lazy": []}
        for k, ((pid, _), (a, b, w)) in enumerate(sorted(first.items(), key=lambda x: (x[0][0], sorted(x[0][1])))):
            swap = k % 2 == 1
            ma, mb, ww = (b, a, FLIP[w]) if swap else (a, b, w)
            writing = next(p for p in prompts if p.id == pid).cluster != "c0"
            keys = ("j1", "j2", answers[(ma, pid)].cache_key, answers[(mb, pid)].cache_key)
            rows["oracle"].append((f"o{k}", Battle(pid, ma, mb, ww, 0.0, False, "oracle"), k, keys))
            rows["contrarian"].append((f"c{k}", Battle(pid, ma, mb, ww if writing else FLIP[ww], 0.0, False,
                                                       "contrarian"), k, keys))
            rows["lazy"].append((f"l{k}", Battle(pid, ma, mb, "tie", 0.0, False, "lazy"), k, keys))
        for judge, r in rows.items():
            store.put_battles(r, tag=judge)
    # by names, orientation-free: the first vote's winner name (None: tie) per matchup, and every vote's
    winner_name = {"leftvote": 0, "rightvote": 1}
    expected = []
    for v in votes:
        a, b, w = first[(v["prompt_id"], frozenset((v["model_a"], v["model_b"])))]
        oracle = None if w == "tie" else (a if w == "model_a" else b)
        k = winner_name.get(v["type"])
        human = None if k is None else (v["model_a"], v["model_b"])[k]
        if oracle is not None and human is not None:
            expected.append(oracle == human)
    return run_dir, sum(stored), len(first), sum(expected) / len(expected)


def test_agreement_is_measured_on_the_same_battles(run):
    run_dir, n_votes, _, expected = run
    with RunStore(run_dir, create=False) as store:
        res = agreement_against_human(store, rounds=300)
    assert set(res) == {"oracle", "contrarian", "lazy"}
    o, c, lazy = res["oracle"], res["contrarian"], res["lazy"]
    assert o["matched_votes"] == n_votes == 400
    # the oracle copies the first vote on each matchup: its agreement is what counting by names gives
    assert o["agreement"]["value"] == pytest.approx(expected) and 0.6 < expected < 1.0
    lo, hi = o["agreement"]["ci"]
    assert lo < o["agreement"]["value"] < hi and hi - lo < 0.15
    worst, *rest = c["by_category"]
    assert worst["category"] == "c0" and worst["agreement"] == pytest.approx(1 - expected, abs=0.12)
    assert {r["category"] for r in rest} == {"c1", "c2"} and all(r["agreement"] > 0.55 for r in rest)
    assert lazy["judge_tie_rate"] == 1.0 and lazy["agreement"]["n"] == 0
    assert 0.05 < o["human_tie_rate"] < 0.2
    assert [b["bin"] for b in o["by_length"]] == ["similar lengths", "middle", "very different lengths"]
    hh = o["human_vs_human"]
    assert hh["pairs"] > 100 and 0.5 < hh["agreement"] < 0.9


def test_human_leaderboard_beside_each_judge(run):
    run_dir, _, n_matchups, _ = run
    with RunStore(run_dir, create=False) as store:
        boards = human_and_judges(store, bootstrap=50)
    names = [b[0] for b in boards]
    assert names[0] == "human" and set(names[1:]) == {"oracle", "contrarian", "lazy"}
    human = boards[0][1]
    assert list(human.sort_values("rating", ascending=False).index) == ["gamma-70b", "beta-13b", "alpha-7b"]
    assert {"ci_low", "ci_high", "style_rating"} <= set(human.columns)
    by = {n: lb for n, lb, _ in boards}
    oracle = by["oracle"]
    assert by["lazy"]["rating"].max() - by["lazy"]["rating"].min() < 1.0          # all ties: all equal
    assert list(oracle.sort_values("rating", ascending=False).index) == ["gamma-70b", "beta-13b", "alpha-7b"]
    assert f"of the {n_matchups} matchups" in boards[1][2]


def test_cli_leaderboard_judge_human_and_audit_against_human(run):
    run_dir, *_ = run
    r = CliRunner().invoke(app, ["leaderboard", str(run_dir), "--judge", "human", "--bootstrap", "30"])
    assert r.exit_code == 0, r.output
    assert "Human votes (400 human votes)" in r.output and "Judge oracle, on the same battles" in r.output
    r = CliRunner().invoke(app, ["leaderboard", str(run_dir), "--judge", "human", "--json", "--bootstrap", "30"])
    rows = json.loads(r.output)
    assert {x["judge"] for x in rows} == {"human", "oracle", "contrarian", "lazy"}
    r = CliRunner().invoke(app, ["leaderboard", str(run_dir), "--bootstrap", "30"])
    assert r.exit_code == 0 and "(400 human votes not included: see --judge human)" in r.output
    r = CliRunner().invoke(app, ["audit", str(run_dir), "--against", "human"])
    assert r.exit_code == 0, r.output
    assert "judge oracle against 400 of 400 human votes" in r.output and "agreement without ties" in r.output
    r = CliRunner().invoke(app, ["audit", str(run_dir), "--against", "robots"])
    assert r.exit_code == 2 and r.output.strip().splitlines()[-1] == \
        "error: --against: only 'human' is supported, got 'robots'"


def test_no_votes_is_one_line(tmp_path):
    with RunStore(tmp_path / "run") as store:
        fill_store(store, make_prompts(2))
        store.put_battles([("x", Battle("p0", "alpha-7b", "beta-13b", "model_a", 1.0, False, "oracle"), 0,
                            ("j", "j", "", ""))], tag="t")
    for args in (["leaderboard", str(tmp_path / "run"), "--judge", "human"],
                 ["audit", str(tmp_path / "run"), "--against", "human"]):
        r = CliRunner().invoke(app, args)
        assert r.exit_code == 2
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and "no human votes" in lines[0] and "run.sqlite" in lines[0]
