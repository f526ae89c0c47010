"""banditarena vote import / export / serve: one summary line, one-line errors with exit status 2, nothing
written by a command that fails."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from banditarena.cli import app
from tests.votes.test_fastchat import native_log

RECIPE = Path(__file__).resolve().parents[2] / "src" / "banditarena" / "recipes" / "vote-arena-hard.yaml"


def test_import_then_export_through_the_cli(tmp_path):
    log = tmp_path / "conv.json"
    native_log(log)
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["vote", "import", str(log), "--run-dir", str(run)])
    assert r.exit_code == 0, r.output
    (out,) = r.output.strip().splitlines()
    # without a recipe every model is accepted: delta-1b's vote is kept
    assert out.startswith("read 16 records, imported 5 votes; skipped ") and "every model accepted" in out
    assert (run / "web.secret").stat().st_mode & 0o777 == 0o600
    r = CliRunner().invoke(app, ["vote", "export", str(run), "--conv", str(tmp_path / "o.jsonl"),
                                 "--clean", str(tmp_path / "o.json")])
    assert r.exit_code == 0, r.output
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 5
    assert len(json.loads((tmp_path / "o.json").read_text())) == 5


def test_import_with_the_recipe_skips_models_not_in_it(tmp_path):
    log = tmp_path / "conv.json"
    native_log(log)
    r = CliRunner().invoke(app, ["vote", "import", str(log), "--run-dir", str(tmp_path / "run"),
                                 "--recipe", str(RECIPE)])
    assert r.exit_code == 0, r.output
    assert "imported 0 votes" in r.output and "model not in recipe" in r.output   # the log's models are others


def test_errors_are_one_line_and_write_nothing(tmp_path):
    run = tmp_path / "run"
    cases = [
        (["vote", "import", str(tmp_path / "missing.json"), "--run-dir", str(run)], "missing.json: no such vote log"),
        (["vote", "export", str(run), "--conv", str(tmp_path / "x")], "no run store here"),
        (["vote", "serve", str(tmp_path / "nope.yaml"), "--run-dir", str(run)], "nope.yaml"),
        (["vote", "serve", str(RECIPE), "--run-dir", str(run), "--sampler", "psychic"], "--sampler"),
    ]
    for args, needle in cases:
        r = CliRunner().invoke(app, args)
        lines = r.output.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and needle in lines[0], (args, r.output)
    assert not run.exists()
    bad = tmp_path / "bad.json"
    bad.write_text("[{not json")
    r = CliRunner().invoke(app, ["vote", "import", str(bad), "--run-dir", str(run)])
    assert r.exit_code == 2 and "bad.json: not a JSON list of battles" in r.output and not run.exists()
