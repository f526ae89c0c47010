"""The shared public data sets in the tests (``../shared/data``, or ``$BANDITARENA_DATA``; ``banditarena.paths``).

A test that needs one names what it reads: ``@requires("gsm8k/test.jsonl")`` on the test, or ``need(...)`` inside
a test or fixture. Where it is absent (a plain clone), the test is skipped with a reason that starts with
"shared data", which ``tests/conftest.py`` turns into a failure under ``CI=true``: a missing set never passes
unnoticed there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from banditarena.paths import data_dir


def _missing(rels: tuple[str, ...]) -> list[str]:
    root = data_dir()
    return [r for r in rels if not (root / r).exists()]


def _reason(missing: list[str]) -> str:
    return (f"shared data not found: {', '.join(missing)} under {data_dir()} "
            "(set BANDITARENA_DATA, or put the shared data folder at ../shared/data)")


def need(*rels: str) -> Path:
    """The shared data folder, once each of ``rels`` (paths below it) exists; else the test is skipped."""
    missing = _missing(rels)
    if missing:
        pytest.skip(_reason(missing))
    return data_dir()


def requires(*rels: str) -> pytest.MarkDecorator:
    """Skip the marked test (or the module, as ``pytestmark``) unless each of ``rels`` exists."""
    missing = _missing(rels)
    return pytest.mark.skipif(bool(missing), reason=_reason(missing) if missing else "")
