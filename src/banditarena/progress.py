"""Rich progress bars for long arena work (quiet when not attached to a terminal or when disabled)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

#: ``progress(stage, advance, total)``: ``advance == 0`` starts (or restarts) a stage's bar.
ProgressFn = Callable[[str, int, int], None]


@contextlib.contextmanager
def rich_progress(enabled: bool = True) -> Iterator[ProgressFn]:
    """Yield a ``progress(stage, advance, total)`` callback that drives one bar per stage."""
    if not enabled:
        yield lambda stage, advance, total: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bars: dict[str, int] = {}
    with Progress(
        TextColumn("[bold]{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), transient=False,
    ) as prog:

        def update(stage: str, advance: int, total: int) -> None:
            """``advance == 0`` starts (or restarts) the stage's bar at 0 of ``total``."""
            if stage not in bars:
                bars[stage] = prog.add_task(stage, total=total)
            elif advance == 0:
                prog.reset(bars[stage], total=total)
            prog.update(bars[stage], advance=advance, total=total)

        yield update
