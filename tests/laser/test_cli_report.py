"""`banditarena laser RECIPE` end to end on a tiny model: table, report with the selection-over-time plot."""

from pathlib import Path

import yaml
from typer.testing import CliRunner

from banditarena.cli import app
from tests.laser.conftest import tiny_recipe


def test_laser_cli_writes_table_and_report(tiny_llama: Path, tmp_path: Path) -> None:
    rec = tmp_path / "laser.yaml"
    rec.write_text(yaml.safe_dump(tiny_recipe(tiny_llama, methods=["laser", "random"], data={"n_dev": 0})))
    out = CliRunner().invoke(app, ["laser", str(rec), "--run-dir", str(tmp_path / "run"), "--no-progress"])
    assert out.exit_code == 0, out.output
    assert "laser" in out.output and "random" in out.output
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Reward-model selection over time" in html
    png = tmp_path / "run" / "figures" / "rm_selection_over_time.png"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_laser_cli_bad_recipe_is_one_line(tmp_path: Path) -> None:
    rec = tmp_path / "bad.yaml"
    rec.write_text("name: x\npolicy: {model: /nowhere}\nreward_models: []\n")
    out = CliRunner().invoke(app, ["laser", str(rec), "--run-dir", str(tmp_path / "run")])
    assert out.exit_code == 2
    assert out.output.strip().startswith("error:") and out.output.strip().count("\n") == 0
