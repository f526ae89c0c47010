"""Judge commands: ``judge train`` (build the learned judge's artifact) and ``judge eval`` (grouped CV)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from banditarena.cli.app import app, clean_errors, console

judge_app = typer.Typer(help="The learned offline judge: train it, validate it honestly.", no_args_is_help=True)
app.add_typer(judge_app, name="judge")


@judge_app.command("train")
@clean_errors
def train_cmd(
    recipe: Path = typer.Argument(..., help="Learned-judge training recipe (YAML), e.g. recipes/judge-learned.yaml."),
    out: Path | None = typer.Option(None, "--out", help="Artifact path prefix (default: the recipe's output)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Train the learned judge on the recipe's real judge labels and write PREFIX.npz + PREFIX.json."""
    from banditarena.judges.training import train

    res = train(recipe, out=out, progress=progress)
    lab = res.labels
    skipped = ", ".join(f"{k} {v}" for k, v in lab["skipped"].items() if v) or "none"
    typer.echo(f"trained on {lab['rows']} labels ({', '.join(f'{k} {v}' for k, v in lab['by_source'].items())}); "
               f"skipped: {skipped}")
    typer.echo(f"artifact: {res.npz} + {res.manifest.name} (digest {res.artifact.digest[:16]}, {res.seconds:.0f} s)")


@judge_app.command("eval")
@clean_errors
def eval_cmd(
    recipe: Path = typer.Argument(..., help="Learned-judge training recipe (YAML)."),
    mode: list[str] | None = typer.Option(None, "--mode", help="Plain grouped CV of the recipe's fixed configuration: "
                                          "instruction, model, both (repeatable). Default: the nested CV."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Nested grouped cross-validation (every choice made inside the training folds; models and instructions
    held out) vs Chatbot Arena Elo, with the adversarial (NullModel, gpt4_gamed) and length-twin checks.
    --mode runs the plain CV of the recipe's fixed configuration instead."""
    from rich.table import Table

    from banditarena.judges.training import cross_validate

    if not mode:
        _nested_eval(recipe, as_json=as_json, progress=progress)
        return

    res = cross_validate(recipe, modes=tuple(mode), progress=progress)
    if as_json:
        typer.echo(json.dumps({"modes": res.table().to_dict(orient="index"), "length_bias": res.length_bias,
                               "labels": res.labels, "seconds": res.seconds}, indent=2, default=float))
        return
    t = Table(title=f"Learned judge, out-of-fold, vs Chatbot Arena Elo ({len(res.elo)} models)")
    cols = ["spearman", "spearman_style", "kendall", "agreement_with_ci", "separability", "label_agreement",
            "within_instruction_pair_accuracy", "annotated_winrate_spearman", "fits"]
    t.add_column("held out")
    for c in cols:
        t.add_column(c.replace("_", " "), justify="right")
    for name, row in res.table().iterrows():
        t.add_row(str(name), *[f"{row[c]:.3f}" if c != "fits" else str(int(row[c])) for c in cols])
    import sys

    from rich.console import Console

    out = console() if sys.stdout.isatty() else Console(width=160)  # logs and pipes: readable width
    out.print(t)
    if res.length_bias:
        lb = Table(title="Length bias on the same pairs (annotated model vs reference)")
        for c in ("judge", "pairs", "answer win rate", "longer wins", "longer wins, balanced", "length slope (95% CI)"):
            lb.add_column(c, justify="left" if c == "judge" else "right")
        for name, b in res.length_bias.items():
            lb.add_row(name, str(int(b["pairs"])), f"{b['answer_win_rate']:.3f}", f"{b['longer_win_rate']:.3f}",
                       f"{b['longer_win_rate_balanced']:.3f}",
                       f"{b['length_slope']:.2f} ({b['length_slope_ci_low']:.2f}, {b['length_slope_ci_high']:.2f})")
        out.print(lb)
        typer.echo("longer wins, balanced: the longer answer's share of wins averaged over 'answer longer' and "
                   "'reference longer' (0.5: length decides nothing); the plain share mostly reflects how often the "
                   "usually longer reference wins.")
    typer.echo(f"labels: {res.labels['rows']} (skipped {res.labels['skipped']}); {res.seconds:.0f} s")


def _nested_eval(recipe_path: Path, *, as_json: bool, progress: bool) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    from banditarena.judges import nested
    from banditarena.judges.training import load_train_recipe

    rec = load_train_recipe(recipe_path)
    v = rec.validation
    prep = nested.prepare(rec, progress=progress, adversarial=rec.resolve(v.adversarial) if v.adversarial else None)
    res = nested.nested_cross_validate(prep, groups=v.model_groups)
    checks = nested.adversarial_checks(prep, res.final, res.scores) if prep.extra else {}
    twins = nested.twin_gaps(prep, res.final, rec.resolve(v.twins)) if v.twins else None
    if as_json:
        typer.echo(json.dumps({"outer": res.metrics, "final": res.final.name, "final_grades": res.final_grades,
                               "cells": res.choices.to_dict(orient="records"), "checks": checks,
                               "twins": [] if twins is None else twins.to_dict(orient="records"),
                               "fits": res.fits, "seconds": res.seconds}, indent=2, default=float))
        return
    out = console() if sys.stdout.isatty() else Console(width=160)
    t = Table(title=f"Learned judge, nested CV (outer: {v.model_groups} model groups x {v.folds} instruction folds), "
                    f"vs Chatbot Arena Elo ({int(res.metrics['models'])} models), graded outcomes")
    cols = ["spearman", "spearman_style", "spearman_vs_baseline", "kendall", "agreement_with_ci", "separability",
            "within_instruction_pair_accuracy", "annotated_winrate_spearman"]
    for c in cols:
        t.add_column(c.replace("_", " "), justify="right")
    t.add_row(*[f"{res.metrics[c]:.3f}" for c in cols])
    out.print(t)
    counts = res.choices["chosen"].value_counts()
    typer.echo("chosen in the outer cells' inner folds: " + "; ".join(f"{k} x{n}" for k, n in counts.items()))
    typer.echo(f"to ship (the inner procedure on all the data): {res.final.name} "
               f"(inner Spearman {res.final_grades[res.final.name]:.3f})")
    if checks:
        typer.echo(f"adversarial: NullModel rank {checks.get('nullmodel_rank')} of {checks['models']} "
                   f"({'last' if checks.get('nullmodel_last') else 'NOT last'}); gpt4_gamed rank "
                   f"{checks.get('gpt4_gamed_rank')} vs gpt4_0613 {checks.get('gpt4_0613_rank')} "
                   f"({'below' if checks.get('gamed_below_gpt4_0613') else 'NOT below'})")
    if twins is not None and not twins.empty:
        tt = Table(title="Length-steered twins: win rate vs the reference (twin and base model labels held out)")
        for c in twins.columns:
            tt.add_column(c.replace("_", " "), justify="left" if c == "twin" else "right")
        for _, r in twins.iterrows():
            tt.add_row(str(r["twin"]), *[f"{r[c]:.3f}" if c != "mean_words" else f"{r[c]:.0f}"
                                          for c in twins.columns if c != "twin"])
        out.print(tt)
    typer.echo(f"labels: {prep.labels.summary()['rows']}; {res.fits} fits; {res.seconds:.0f} s")
