"""The Typer app and what every command shares: one-line errors, the console, the leaderboard table.

Errors a user can cause print one line (``error: ...``) and exit with status 2, no traceback.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from banditarena.errors import BanditArenaError
from banditarena.models.hub import offline

offline()  # the CLI never reaches a model hub, and prints our progress and results, not the ML stack's chatter

app = typer.Typer(
    name="banditarena",
    help="Arena Learning, WizardArena and LASeR with multi-armed bandits: battles, leaderboards, training data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def clean_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BanditArenaError as exc:
            from banditarena.secrets import redact

            typer.echo(f"error: {redact(str(exc))}", err=True)
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


def console() -> Any:
    from rich.console import Console

    return Console()


def print_leaderboard(lb: Any, title: str = "Leaderboard") -> None:
    """Rank, model, rating with its 95% CI and battles; with the style-controlled rating beside the raw one
    when ``lb`` has the ``style_rating`` columns (:func:`banditarena.arena.style.leaderboard_with_style`)."""
    from rich.table import Table

    from banditarena.arena.service import outcome_footer

    style = "style_rating" in lb.columns and lb["style_rating"].notna().any()
    caption = outcome_footer(lb)
    if style:
        caption += "\nstyle-controlled: Bradley-Terry with answer length and markdown (headers, lists, bold) as covariates"
    t = Table(title=title, caption=caption)
    cols = ["rank", "model", "rating", "95% CI", *(["style-controlled (95% CI)", "style rank"] if style else []),
            "battles"]
    for col in cols:
        t.add_column(col, justify="left" if col == "model" else "right")
    for model, r in lb.sort_values("rating", ascending=False).iterrows():
        extra = []
        if style:
            sr = r["style_rating"]
            extra = ["-", "-"] if math.isnan(sr) else [
                f"{sr:.1f} (-{sr - r['style_ci_low']:.1f}/+{r['style_ci_high'] - sr:.1f})", str(int(r["style_rank"]))]
        t.add_row(
            str(int(r["rank"])), str(model), f"{r['rating']:.1f}",
            f"-{r['rating'] - r['ci_low']:.1f}/+{r['ci_high'] - r['rating']:.1f}", *extra, str(int(r["battles"])),
        )
    import sys

    from rich.console import Console

    # a log file or pipe gets a readable width instead of rich's 80-column default
    (console() if sys.stdout.isatty() else Console(width=140)).print(t)
