"""The safety CLI: score, info, bad input as one line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from banditarena.cli import app

runner = CliRunner()


def test_score_texts_and_file(tmp_path):
    out = runner.invoke(app, ["safety", "score", "What is a good soup?", "My SSN is 078-05-1120", "--wordlist", "--json"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert rows[0]["verdict"] == "safe" and rows[1]["verdict"] == "unsafe" and "S7" in rows[1]["categories"]
    f = tmp_path / "a.jsonl"
    f.write_text(json.dumps({"q": "How do I boil an egg?", "a": "Boil it for nine minutes."}) + "\n")
    out = runner.invoke(app, ["safety", "score", "--file", str(f), "--text-field", "a", "--prompt-field", "q"])
    assert out.exit_code == 0 and "safe" in out.stdout


def test_info_and_errors(tmp_path):
    out = runner.invoke(app, ["safety", "info"])
    assert out.exit_code == 0 and "clf-1+" in out.stdout and "hh_rlhf/harmless-base-test.jsonl.gz" in out.stdout
    bad = runner.invoke(app, ["safety", "info", str(tmp_path / "nope.json")])
    assert bad.exit_code == 2 and "banditarena safety train" in bad.output and len(bad.output.strip().splitlines()) == 1
    for args, needle in ((["safety", "score"], "give texts"),
                         (["safety", "score", "x", "--scorer", "nope"], "scorer"),
                         (["safety", "score", "x", "--scorer", "llamaguard"], "base_url"),
                         (["safety", "train", "--set", "C=-1", "--out", str(tmp_path)], "C"),
                         (["safety", "score", "--file", str(tmp_path / "missing.jsonl")], "not found")):
        r = runner.invoke(app, args)
        assert r.exit_code == 2 and needle in r.output, (args, r.output)
        assert len(r.output.strip().splitlines()) == 1
