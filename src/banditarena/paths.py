"""Where the shared data lives and how recipe paths resolve."""

from __future__ import annotations

import os
from pathlib import Path

DATA_PREFIX = "data:"
PACKAGED_DATA = Path(__file__).resolve().parent / "data" / "public"
"""Copies of the few public files the demos need (Arena-Hard questions and three models' answers, Apache-2.0;
``NOTICE.md`` there), so a plain clone runs ``banditarena demo`` without ``../shared/data``."""


def data_dir() -> Path:
    """The real public data sets: ``$BANDITARENA_DATA``, else ``../shared/data`` next to the project.

    Looked up relative to the current directory first, then relative to the repository this file lives in;
    where none exists (a plain clone), the packaged copies (:data:`PACKAGED_DATA`).
    """
    env = os.environ.get("BANDITARENA_DATA")
    if env:
        return Path(env)
    candidates = [Path.cwd() / ".." / "shared" / "data", Path.cwd() / "shared" / "data"]
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidates.append(parent / ".." / "shared" / "data")
        candidates.append(parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return PACKAGED_DATA


def data_file(rel: str | os.PathLike[str]) -> Path:
    """``REL`` under :func:`data_dir`; where that file is missing but a packaged copy exists, the copy."""
    rel_s = str(rel).lstrip("/")
    path = data_dir() / rel_s
    if not path.exists():
        packaged = PACKAGED_DATA / rel_s
        if packaged.exists():
            return packaged
    return path


def resolve_path(value: str | os.PathLike[str], base: Path | None = None) -> Path:
    """``data:REL`` -> :func:`data_file` (the shared folder, else the packaged copy); a relative path ->
    relative to ``base`` (the recipe's folder)."""
    s = str(value)
    if s.startswith(DATA_PREFIX):
        return data_file(s[len(DATA_PREFIX) :])
    p = Path(os.path.expanduser(s))
    if not p.is_absolute() and base is not None:
        p = base / p
    return p


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``path`` whole or not at all: a per-process temporary file beside it, renamed over it (readers
    never see half a file, and processes writing the same file do not share a temporary)."""
    out = Path(path)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out
