"""LASeR command."""

from __future__ import annotations

from pathlib import Path

import typer

from banditarena.cli.app import app, clean_errors, console


@app.command()
@clean_errors
def laser(
    recipe: Path = typer.Argument(..., help="LASeR recipe (YAML)."),
    run_dir: Path = typer.Option(Path("runs/laser"), "--run-dir", help="Run directory (created; rerun to resume)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """LASeR: a contextual bandit picks the reward model for each batch of iterative DPO; baselines alongside."""
    from banditarena.laser import run_laser
    from banditarena.laser.report import write_laser_report

    res = run_laser(recipe, run_dir, progress=progress)
    console().print(res.table.to_string(index=False))
    typer.echo(f"report: {write_laser_report(run_dir, res)}")
