"""Graded outcomes through the user's path: `banditarena battle` + `banditarena leaderboard` on real answers.

A pointwise judge's battle keeps P(A beats B); the leaderboard fits it (soft-label Bradley-Terry, bootstrap
over prompts) and says so in its footer. The same models rank alike whether they battle one baseline or
every other model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from banditarena.judges import combine
from banditarena.types import Judgment
from tests.support.shared import need, requires

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("gpt4_1106_preview", "gpt4_0613", "claude-2.1", "Mixtral-8x7B-Instruct-v0.1", "llama-2-7b-chat-hf",
          "vicuna-7b-v1.5", "oasst-sft-pythia-12b")


def cli(*args: object, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([sys.executable, "-m", "banditarena.cli", *map(str, args)], capture_output=True, text=True,
                         cwd=ROOT, timeout=900, check=False)
    if check and out.returncode != 0:
        raise AssertionError(out.stderr)
    return out


def recipe(pairs: str, limit: int = 60, extra: str = "") -> str:
    contestants = "\n".join(f"  - {{name: {m}, backend: replay, path: data:alpaca_eval/model_outputs/{m}.json}}"
                            for m in MODELS)
    battle = "battle: {pairs: baseline, baseline: gpt4_1106_preview}" if pairs == "baseline" else "battle: {pairs: all}"
    return f"""
name: graded-{pairs}
seed: 0
prompts: {{source: alpaca_eval, limit: {limit}}}
contestants:
{contestants}
judge: {{kind: learned, artifact: judge-learned-fast}}
{battle}
leaderboard: {{bootstrap: 40}}
{extra}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    need("alpaca_eval/model_outputs")
    d = tmp_path_factory.mktemp("graded")
    out = {}
    for pairs in ("baseline", "all"):
        (d / f"{pairs}.yaml").write_text(recipe(pairs))
        res = cli("battle", d / f"{pairs}.yaml", "--run-dir", d / pairs, "--no-progress")
        assert "outcomes: graded" in res.stdout
        out[pairs] = d / pairs
    return out


def _board(run: Path, *extra: str) -> list[dict]:
    return json.loads(cli("leaderboard", run, "--json", "--bootstrap", "30", *extra).stdout)


def test_battles_store_the_graded_outcome_and_the_leaderboard_fits_it(runs: dict[str, Path]) -> None:
    from banditarena.store import RunStore

    store = RunStore(runs["baseline"], create=False)
    b = store.battles(valid_only=True)
    assert len(b) == 6 * 60 and b["outcome"].between(0, 1).all() and b["outcome"].nunique() > 100
    j = store.judgments()
    assert j["prob_first"].notna().all()
    rows = _board(runs["baseline"])
    assert {r["outcome_model"] for r in rows} == {"graded"}
    hard = _board(runs["baseline"], "--outcomes", "winner")
    assert {r["outcome_model"] for r in hard} == {"win/loss/tie"}
    table = cli("leaderboard", runs["baseline"], "--bootstrap", "20").stdout
    assert "outcomes: graded, P(A beats B)" in table


def test_the_same_models_rank_alike_against_a_baseline_and_in_all_pairs(runs: dict[str, Path]) -> None:
    from scipy.stats import spearmanr

    base = {r["model"]: r["rating"] for r in _board(runs["baseline"])}
    allp = {r["model"]: r["rating"] for r in _board(runs["all"])}
    names = [m for m in MODELS if m != "gpt4_1106_preview"]
    rho = spearmanr([base[m] for m in names], [allp[m] for m in names]).statistic
    assert rho >= 0.89, (base, allp)
    # thresholded, the baseline design collapses: the weak models have next to no wins against the reference
    hard = {r["model"]: r for r in _board(runs["baseline"], "--outcomes", "winner")}
    assert sum(hard[m]["wins"] for m in ("llama-2-7b-chat-hf", "vicuna-7b-v1.5", "oasst-sft-pythia-12b")) < 30


@requires("alpaca_eval/model_outputs")
def test_outcomes_graded_with_a_judge_that_cannot_feed_it_is_one_line_naming_the_field(tmp_path: Path) -> None:
    bad = recipe("all", limit=3, extra="").replace("{kind: learned, artifact: judge-learned-fast}", "{kind: similarity}")
    bad = bad.replace("leaderboard: {bootstrap: 40}", "leaderboard: {bootstrap: 40, outcomes: graded}")
    (tmp_path / "bad.yaml").write_text(bad)
    out = cli("battle", tmp_path / "bad.yaml", "--run-dir", tmp_path / "run", "--no-progress", check=False)
    assert out.returncode == 2 and "leaderboard.outcomes" in out.stderr and "similarity" in out.stderr
    assert out.stderr.strip().count("\n") == 0 and not (tmp_path / "run").exists()


def test_combine_averages_both_orders_probabilities() -> None:
    j_ab = Judgment("j", "p", "a", "b", 7.0, 4.0, prob_first=0.8)
    j_ba = Judgment("j", "p", "b", "a", 4.0, 7.0, prob_first=0.3)
    b = combine(j_ab, j_ba, "a", "b", "j")
    assert b.winner == "model_a" and b.outcome == pytest.approx(0.75)
    hard = combine(Judgment("j", "p", "a", "b", 7.0, 4.0), Judgment("j", "p", "b", "a", 4.0, 7.0), "a", "b", "j")
    assert hard.winner == "model_a" and hard.outcome is None


def test_the_bench_path_ranks_exactly_as_the_cli(runs: dict[str, Path], tmp_path: Path) -> None:
    """bench/judge_checks.py rates through run_battles + recipe_leaderboard: the CLI's own functions."""
    from banditarena.arena.service import recipe_leaderboard, run_battles
    from banditarena.config import load_recipe

    (tmp_path / "r.yaml").write_text(recipe("baseline"))
    rec = load_recipe(tmp_path / "r.yaml")
    _, store = run_battles(rec, runs["baseline"], progress=False)  # resumes the CLI's run: nothing new to pay
    lb = recipe_leaderboard(store, rec)
    cli_rows = json.loads(cli("leaderboard", runs["baseline"], "--json", "--bootstrap", "40").stdout)
    assert list(lb.index) == [r["model"] for r in cli_rows]
    assert lb["rating"].round(6).tolist() == [round(r["rating"], 6) for r in cli_rows]
