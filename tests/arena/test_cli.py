"""The CLI on an offline arena of replayed real answers: battle, leaderboard, audit, report, testset, errors."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.shared import requires

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, check=True):
    out = subprocess.run([sys.executable, "-m", "banditarena.cli", *map(str, args)], check=False, capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    if check and out.returncode != 0:
        raise AssertionError(out.stderr)
    return out


RECIPE = """
name: replay-arena
prompts: {source: arena_hard, limit: 12, reference_from: "data:arena_hard_v0.1/model_answer/gpt-4-0613.jsonl"}
contestants:
  - {name: gpt-4-0314, backend: replay, path: "data:arena_hard_v0.1/model_answer/gpt-4-0314.jsonl"}
  - {name: gpt-3.5-turbo-0125, backend: replay, path: "data:arena_hard_v0.1/model_answer/gpt-3.5-turbo-0125.jsonl"}
  - {name: gpt-4-0613, backend: replay, path: "data:arena_hard_v0.1/model_answer/gpt-4-0613.jsonl"}
judge: {kind: similarity}
leaderboard: {bootstrap: 50}
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "recipe.yaml").write_text(RECIPE)
    out = cli("battle", d / "recipe.yaml", "--run-dir", d / "run", "--no-progress")
    assert "36 battles" in out.stdout
    return d / "run"


def test_leaderboard_json(run_dir):
    rows = json.loads(cli("leaderboard", run_dir, "--json", "--bootstrap", "50").stdout)
    by = {r["model"]: r for r in rows}
    assert set(by) == {"gpt-4-0314", "gpt-3.5-turbo-0125", "gpt-4-0613"}
    for r in rows:
        assert r["ci_low"] <= r["rating"] <= r["ci_high"] and r["battles"] == 24
    # the reference model's own answers are the references: it must come first
    assert by["gpt-4-0613"]["rank"] == 1


def test_audit_and_report(run_dir):
    audit = json.loads(cli("audit", run_dir, "--json").stdout)
    a = audit["similarity"]
    assert a["position_bias_rate"] == 0.0  # a similarity judge cannot depend on the order
    assert a["invalid_rate"] == 0.0
    path = Path(cli("report", run_dir, "--bootstrap", "50").stdout.strip())
    html = path.read_text()
    assert path.name == "report.html" and "gpt-3.5-turbo-0125" in html
    pngs = list((run_dir / "figures").glob("*.png"))
    assert {p.stem for p in pngs} >= {"leaderboard_ci", "winrate_heatmap"}
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


@requires("vicuna_bench/question.jsonl")
def test_testset_build(tmp_path):
    out = tmp_path / "test.jsonl"
    manifest = json.loads(cli("testset", "build", "vicuna_bench", "--out", out, "--n-clusters", "5", "--per-cluster", "2").stdout)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 10 and len({r["id"] for r in rows}) == 10
    assert manifest["pool_size"] == 80


@pytest.mark.parametrize("content, needle", [
    ('{"question_id": 1, "turns": ["ok"]}\n{not json\n', ":2"),
    ('{"question_id": 1, "turns": [""]}\n', "empty prompt"),
])
def test_bad_prompt_files_give_one_line(tmp_path, content, needle):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    rec = tmp_path / "r.yaml"
    rec.write_text(textwrap.dedent(f"""
        prompts: {{source: "{bad}"}}
        contestants:
          - {{name: a, backend: replay, path: "data:arena_hard_v0.1/model_answer/gpt-4-0314.jsonl"}}
          - {{name: b, backend: replay, path: "data:arena_hard_v0.1/model_answer/gpt-4-0613.jsonl"}}
    """))
    out = cli("battle", rec, "--run-dir", tmp_path / "run", check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    line = out.stderr.strip()
    assert "\n" not in line and str(bad) in line and needle in line


def test_unknown_contestant_and_missing_run(tmp_path):
    rec = tmp_path / "r.yaml"
    rec.write_text(RECIPE + "battle: {pairs: baseline, baseline: claude-9}\n")
    out = cli("battle", rec, "--run-dir", tmp_path / "run", check=False)
    assert out.returncode == 2 and "claude-9" in out.stderr and "\n" not in out.stderr.strip()
    out = cli("leaderboard", tmp_path / "nowhere", check=False)
    assert out.returncode == 2 and "no run store" in out.stderr
