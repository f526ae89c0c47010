"""The ``banditarena`` command line. Thin: parses, calls the library, prints.

Errors a user can cause print one line (``error: ...``) and exit with status 2, no traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, TypeVar

import typer

from banditarena.errors import BanditArenaError

app = typer.Typer(
    name="banditarena",
    help="Arena Learning, WizardArena and LASeR with multi-armed bandits: battles, leaderboards, training data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
testset_app = typer.Typer(help="Offline test sets (WizardArena): diverse + hard prompts.", no_args_is_help=True)
app.add_typer(testset_app, name="testset")

F = TypeVar("F", bound=Callable[..., Any])


def _clean_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BanditArenaError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except ValueError as exc:  # the pure cores' input errors (bandits, ratings): one line too
            from banditarena.bandits import BanditInputError
            from banditarena.ratings import RatingsInputError

            if not isinstance(exc, (BanditInputError, RatingsInputError)):
                raise
            typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: everything finished so far is stored; rerun the same command to resume", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _console() -> Any:
    from rich.console import Console

    return Console()


def _print_leaderboard(lb: Any, title: str = "Leaderboard") -> None:
    from rich.table import Table

    t = Table(title=title)
    for col in ("rank", "model", "rating", "95% CI", "battles"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for model, r in lb.sort_values("rating", ascending=False).iterrows():
        t.add_row(
            str(int(r["rank"])), str(model), f"{r['rating']:.1f}",
            f"-{r['rating'] - r['ci_low']:.1f}/+{r['ci_high'] - r['rating']:.1f}", str(int(r["battles"])),
        )
    _console().print(t)


@app.command()
@_clean_errors
def battle(
    recipe: Path = typer.Argument(..., help="Arena recipe (YAML)."),
    run_dir: Path = typer.Option(..., "--run-dir", help="Run directory (created; rerun to resume)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Run (or resume) an arena recipe: generate, judge both orders, store battles, print the leaderboard."""
    from banditarena.arena.service import leaderboard, run_battles
    from banditarena.config import load_recipe

    rec = load_recipe(recipe)
    result, store = run_battles(rec, run_dir, progress=progress)
    s = result.summary()
    typer.echo(
        f"{s['battles']} battles ({s['invalid']} invalid, {s['inconsistent']} inconsistent orders); "
        f"paid {s['paid_generations']} generations and {s['paid_judgments']} judgments this run; "
        f"{s['generation_failures']} generation and {s['judge_failures']} judge failures"
    )
    for line in result.skipped[:10]:
        typer.echo(f"  skipped: {line}")
    if len(result.skipped) > 10:
        typer.echo(f"  ... and {len(result.skipped) - 10} more (rerun the same command to retry them)")
    if s["battles"] - s["invalid"] > 0:
        _print_leaderboard(leaderboard(store, bootstrap=rec.leaderboard.bootstrap, seed=rec.seed, anchor=rec.leaderboard.anchor))


@app.command("leaderboard")
@_clean_errors
def leaderboard_cmd(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    bootstrap: int = typer.Option(100, help="Bootstrap rounds for the 95% CIs."),
    seed: int = typer.Option(0),
    anchor: Optional[str] = typer.Option(None, help="MODEL=RATING anchor (default: mean 1000)."),
    tag: Optional[str] = typer.Option(None, help="Only battles of this recipe/iteration tag."),
) -> None:
    """Bradley-Terry leaderboard with 95% bootstrap CIs, rank and battle counts."""
    from banditarena.arena.service import leaderboard
    from banditarena.store import RunStore

    store = RunStore(run_dir, create=False)
    lb = leaderboard(store, tag=tag, bootstrap=bootstrap, seed=seed, anchor=anchor)
    if as_json:
        rows = [{"model": m, **{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}} for m, r in lb.iterrows()]
        typer.echo(json.dumps(rows, indent=2))
    else:
        _print_leaderboard(lb)


@app.command()
@_clean_errors
def audit(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Judge bias audit: position-flip rate, first-position win rate, length bias, invalid rate."""
    from banditarena.arena.audit import run_audit

    res = run_audit(run_dir)
    if as_json:
        typer.echo(json.dumps(res, indent=2, default=float))
        return
    for judge, a in res.items():
        typer.echo(f"judge {judge}:")
        for k, v in a.items():
            if isinstance(v, (list, dict)):
                continue
            typer.echo(f"  {k:<28} {v:.4f}" if isinstance(v, float) else f"  {k:<28} {v}")


@app.command()
@_clean_errors
def report(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    bootstrap: int = typer.Option(100),
    seed: int = typer.Option(0),
) -> None:
    """Write RUN_DIR/report.html with the leaderboard, CI plot, win-rate heatmap and bias audit (PNG figures)."""
    from banditarena.arena.audit import write_run_report

    path = write_run_report(run_dir, bootstrap=bootstrap, seed=seed)
    typer.echo(str(path))


@testset_app.command("build")
@_clean_errors
def testset_build(
    source: str = typer.Argument(..., help="Prompt pool: a named set (arena_hard, mt_bench, ...) or a JSONL/Parquet path."),
    out: Path = typer.Option(..., "--out", help="Output JSONL (a manifest JSON is written beside it)."),
    n_clusters: int = typer.Option(20, help="k-means clusters for Offline-Diverse."),
    per_cluster: int = typer.Option(2, help="Prompts per cluster for Offline-Diverse."),
    n_hard: int = typer.Option(0, help="Offline-Hard prompts to add."),
    hard_from: Optional[Path] = typer.Option(None, help="Run dir whose battle margins score difficulty."),
    dedup_threshold: float = typer.Option(0.8, help="MinHash Jaccard threshold for near-duplicates."),
    decontaminate_against: Optional[str] = typer.Option(None, help="Remove prompts too close to this test set."),
    seed: int = typer.Option(0),
) -> None:
    """Build a WizardArena-style offline test set: dedup, embed, k-means, a few per cluster + hard prompts."""
    from banditarena.arena.testsets import build_testset_cli

    manifest = build_testset_cli(
        source, out, n_clusters=n_clusters, per_cluster=per_cluster, n_hard=n_hard, hard_from=hard_from,
        dedup_threshold=dedup_threshold, decontaminate_against=decontaminate_against, seed=seed,
    )
    typer.echo(json.dumps(manifest, indent=2, default=str))


@app.command()
@_clean_errors
def flywheel(
    recipe: Path = typer.Argument(..., help="Flywheel recipe (YAML)."),
    run_dir: Path = typer.Option(..., "--run-dir", help="Run directory (created; rerun to resume)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
    train: Optional[bool] = typer.Option(None, help="Override the recipe's training.enabled."),
) -> None:
    """Arena Learning iterations: bandit-allocated battles, SFT/DPO data, TRL training, Elo per iteration."""
    from banditarena.flywheel.loop import run_flywheel
    from banditarena.flywheel.report import print_table, write_flywheel_report

    result = run_flywheel(recipe, run_dir, progress=progress, train=train)
    print_table(result)
    typer.echo(f"report: {write_flywheel_report(run_dir, result)}")


@app.command()
@_clean_errors
def laser(
    recipe: Path = typer.Argument(..., help="LASeR recipe (YAML)."),
    run_dir: Path = typer.Option(Path("runs/laser"), "--run-dir", help="Run directory (created; rerun to resume)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """LASeR: a contextual bandit picks the reward model for each batch of iterative DPO; baselines alongside."""
    from banditarena.laser import run_laser
    from banditarena.laser.report import write_laser_report

    res = run_laser(recipe, run_dir, progress=progress)
    _console().print(res.table.to_string(index=False))
    typer.echo(f"report: {write_laser_report(run_dir, res)}")


@app.command()
@_clean_errors
def demo(
    run_dir: Path = typer.Option(Path("runs/demo"), "--run-dir", help="Run directory (rerun to resume)."),
    arena: bool = typer.Option(False, "--arena", help="Only the offline arena evaluation (WizardArena style)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """The main job on the embedded default (offline, CPU): the Arena Learning flywheel."""
    from banditarena.arena.demo import run_arena_demo, run_flywheel_demo

    (run_arena_demo if arena else run_flywheel_demo)(run_dir, progress=progress)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
