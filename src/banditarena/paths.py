"""Where the shared data lives and how recipe paths resolve."""

from __future__ import annotations

import os
from pathlib import Path

DATA_PREFIX = "data:"


def data_dir() -> Path:
    """The real public data sets: ``$BANDITARENA_DATA``, else ``../shared/data`` next to the project.

    Looked up relative to the current directory first, then relative to the repository this file lives in.
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
    return (Path.cwd() / ".." / "shared" / "data").resolve()


def resolve_path(value: str | os.PathLike[str], base: Path | None = None) -> Path:
    """``data:REL`` -> under :func:`data_dir`; a relative path -> relative to ``base`` (the recipe's folder)."""
    s = str(value)
    if s.startswith(DATA_PREFIX):
        return data_dir() / s[len(DATA_PREFIX) :].lstrip("/")
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
