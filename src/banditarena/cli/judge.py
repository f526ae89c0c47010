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
    mode: list[str] | None = typer.Option(None, "--mode", help="instruction, model, both (default: all three)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    progress: bool = typer.Option(True, help="Show progress bars."),
) -> None:
    """Grouped cross-validation: out-of-fold scores, all-pairs arena, Spearman/Kendall vs Chatbot Arena Elo."""
    from rich.table import Table

    from banditarena.judges.training import MODES, cross_validate

    res = cross_validate(recipe, modes=tuple(mode or MODES), progress=progress)
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
