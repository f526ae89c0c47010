"""The ``banditarena`` command line. Thin: parses, calls the library, prints.

Errors a user can cause print one line (``error: ...``) and exit with status 2, no traceback. Each command
group lives in its own module and registers itself on :data:`app`; importing this package registers them all.
"""

from __future__ import annotations

from banditarena.cli import arena, flywheel, judge, laser, safety, tutor, vote  # noqa: F401  (register the commands)
from banditarena.cli.app import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console entry
    app()
