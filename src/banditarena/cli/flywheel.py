"""Flywheel commands: flywheel (Arena Learning iterations) and demo (the main job on the embedded default)."""

from __future__ import annotations

from pathlib import Path

import typer

from banditarena.cli.app import app, clean_errors


@app.command()
@clean_errors
def flywheel(
    recipe: Path = typer.Argument(..., help="Flywheel recipe (YAML)."),
    run_dir: Path = typer.Option(..., "--run-dir", help="Run directory (created; rerun to resume)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
    train: bool | None = typer.Option(None, help="Override the recipe's training.enabled."),
) -> None:
    """Arena Learning iterations: bandit-allocated battles, SFT/DPO data, TRL training, Elo per iteration."""
    from banditarena.flywheel.loop import run_flywheel
    from banditarena.flywheel.report import print_table, write_flywheel_report

    result = run_flywheel(recipe, run_dir, progress=progress, train=train)
    print_table(result)
    typer.echo(f"report: {write_flywheel_report(run_dir, result)}")


@app.command()
@clean_errors
def demo(
    run_dir: Path = typer.Option(Path("runs/demo"), "--run-dir", help="Run directory (rerun to resume)."),
    arena: bool = typer.Option(False, "--arena", help="Only the offline arena evaluation (WizardArena style)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """The main job on the embedded default (offline, CPU): the Arena Learning flywheel."""
    from banditarena.cli.demo import run_arena_demo, run_flywheel_demo

    (run_arena_demo if arena else run_flywheel_demo)(run_dir, progress=progress)
