"""Arena commands: battle, leaderboard, audit, report, testset build."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from banditarena.cli.app import app, clean_errors, print_leaderboard

testset_app = typer.Typer(help="Offline test sets (WizardArena): diverse + hard prompts.", no_args_is_help=True)
app.add_typer(testset_app, name="testset")


@app.command()
@clean_errors
def battle(
    recipe: Path = typer.Argument(..., help="Arena recipe (YAML)."),
    run_dir: Path = typer.Option(..., "--run-dir", help="Run directory (created; rerun to resume)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Run (or resume) an arena recipe: generate, judge both orders, store battles, print the leaderboard."""
    from banditarena.arena.service import recipe_leaderboard, run_battles
    from banditarena.config import load_recipe

    rec = load_recipe(recipe)
    result, store = run_battles(rec, run_dir, progress=progress)
    s = result.summary()
    typer.echo(
        f"{s['battles']} battles ({s['invalid']} invalid, {s['inconsistent']} inconsistent orders); "
        f"paid {s['paid_generations']} generations and {s['paid_judgments']} judgments this run; "
        f"{s['generation_failures']} generation and {s['judge_failures']} judge failures"
    )
    faults = result.fault_summary()
    if faults:
        typer.echo(f"  retried or lost within the run: {faults}")
    for line in result.skipped[:10]:
        typer.echo(f"  skipped: {line}")
    if len(result.skipped) > 10:
        typer.echo(f"  ... and {len(result.skipped) - 10} more (rerun the same command to retry them)")
    if result.all_failed:
        typer.echo(f"error: every request of this run failed ({s['generation_failures']} generation and "
                   f"{s['judge_failures']} judge failures); check the endpoints, then rerun to resume", err=True)
        raise typer.Exit(1)
    if s["battles"] - s["invalid"] > 0:
        print_leaderboard(recipe_leaderboard(store, rec))


@app.command("leaderboard")
@clean_errors
def leaderboard_cmd(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    bootstrap: int = typer.Option(100, help="Bootstrap rounds for the 95% CIs."),
    seed: int = typer.Option(0),
    anchor: str | None = typer.Option(None, help="MODEL=RATING anchor (default: mean 1000)."),
    tag: str | None = typer.Option(None, help="Only battles of this recipe/iteration tag."),
    outcomes: str | None = typer.Option(None, help="auto | graded | winner: fit the judge's P(A beats B) (graded) "
                                        "or win/loss/tie (default: what the run's recipe said, else auto)."),
    judge: str | None = typer.Option(None, "--judge", help="Only this judge's battles. 'human': the human votes' "
                                     "leaderboard, then each AI judge's on the same battles (default: every AI "
                                     "judge's battles, never the human votes)."),
) -> None:
    """Bradley-Terry leaderboard with 95% bootstrap CIs, rank and battle counts, and the style-controlled
    rating beside the raw one (answer length and markdown as covariates). Graded judges' battles are fitted
    on P(A beats B); the footer says which outcome model was used."""
    import math

    from banditarena.arena.style import leaderboard_with_style
    from banditarena.config import parse_anchor
    from banditarena.store import RunStore

    parse_anchor(anchor)  # a bad anchor is one line, before the store is opened
    store = RunStore(run_dir, create=False)

    def plain(v: object) -> object:
        v = v.item() if hasattr(v, "item") else v
        return None if isinstance(v, float) and math.isnan(v) else v

    def rows_of(lb: object, **extra: object) -> list[dict[str, object]]:
        return [{"model": m, **extra, "outcome_model": lb.attrs.get("outcome_model"),  # type: ignore[attr-defined]
                 **{k: plain(v) for k, v in r.items()}} for m, r in lb.iterrows()]  # type: ignore[attr-defined]

    if judge == "human":
        from banditarena.votes.board import human_and_judges

        boards = human_and_judges(store, bootstrap=bootstrap, seed=seed, anchor=anchor)
        if as_json:
            typer.echo(json.dumps([r for name, lb, note in boards for r in rows_of(lb, judge=name, battles_note=note)],
                                  indent=2))
            return
        for name, lb, note in boards:
            print_leaderboard(lb, title=("Human votes" if name == "human" else f"Judge {name}, on the same battles")
                              + f" ({note})")
        return
    lb = leaderboard_with_style(store, tag=tag, bootstrap=bootstrap, seed=seed, anchor=anchor, outcomes=outcomes,
                                judge=judge)
    if as_json:
        typer.echo(json.dumps(rows_of(lb), indent=2))
    else:
        print_leaderboard(lb)
        if judge is None and store.vote_count():
            typer.echo(f"({store.vote_count()} human votes not included: see --judge human)")


@app.command()
@clean_errors
def audit(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    fairness: bool = typer.Option(False, "--fairness", help="Also run the counterfactual demographic fairness audit "
                                  "(judges the sampled battles again with names/gender/nationality/religion swapped)."),
    fairness_items: int = typer.Option(40, help="Battles sampled for the fairness audit."),
    seed: int = typer.Option(0, help="Seed of the fairness sample and injected attributes."),
    against: str | None = typer.Option(None, "--against", help="'human': each AI judge's agreement with the human "
                                       "votes on the same battles (95% CIs), and where they disagree most."),
) -> None:
    """Judge bias audit: position-flip rate, first-position win rate, length bias, invalid rate (+ fairness)."""
    from banditarena.report.run import run_audit

    if against is not None:
        from banditarena.cli.vote import print_agreement
        from banditarena.errors import ConfigError

        if against != "human":
            raise ConfigError(f"--against: only 'human' is supported, got '{against}'")
        print_agreement(run_dir, as_json=as_json, seed=seed)
        return

    res = run_audit(run_dir)
    if fairness:
        from banditarena.cli.safety import print_fairness

        fres = print_fairness(run_dir, fairness_items, seed, quiet=as_json)
        res = {j: {**a, "fairness": fres} if j == fres["judge"] else a for j, a in res.items()}
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
@clean_errors
def report(
    run_dir: Path = typer.Argument(..., help="Run directory."),
    bootstrap: int = typer.Option(100),
    seed: int = typer.Option(0),
) -> None:
    """Write RUN_DIR/report.html with the leaderboard, CI plot, win-rate heatmap and bias audit (PNG figures)."""
    from banditarena.report.run import write_run_report

    path = write_run_report(run_dir, bootstrap=bootstrap, seed=seed)
    typer.echo(str(path))


@testset_app.command("build")
@clean_errors
def testset_build(
    source: str = typer.Argument(..., help="Prompt pool: a named set (arena_hard, mt_bench, ...) or a JSONL/Parquet path."),
    out: Path = typer.Option(..., "--out", help="Output JSONL (a manifest JSON is written beside it)."),
    n_clusters: int = typer.Option(20, help="k-means clusters for Offline-Diverse."),
    per_cluster: int = typer.Option(2, help="Prompts per cluster for Offline-Diverse."),
    n_hard: int = typer.Option(0, help="Offline-Hard prompts to add."),
    hard_from: Path | None = typer.Option(None, help="Run dir whose battle margins score difficulty."),
    dedup_threshold: float = typer.Option(0.8, help="MinHash Jaccard threshold for near-duplicates."),
    decontaminate_against: str | None = typer.Option(None, help="Remove prompts too close to this test set."),
    seed: int = typer.Option(0),
) -> None:
    """Build a WizardArena-style offline test set: dedup, embed, k-means, a few per cluster + hard prompts."""
    from banditarena.prompts.testset import build_testset_files

    manifest = build_testset_files(
        source, out, n_clusters=n_clusters, per_cluster=per_cluster, n_hard=n_hard, hard_from=hard_from,
        dedup_threshold=dedup_threshold, decontaminate_against=decontaminate_against, seed=seed,
    )
    typer.echo(json.dumps(manifest, indent=2, default=str))
