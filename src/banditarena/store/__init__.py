"""SQLite run store: one ``run.sqlite`` (WAL) per run directory.

Every request result is stored under its content-addressed cache key the moment it arrives, in its own
transaction, so a process killed at any moment (SIGKILL) loses nothing it paid for, and a rerun of the same
command skips everything already stored.
"""

from banditarena.store.lock import RunLock
from banditarena.store.sqlite import RunStore

__all__ = ["RunLock", "RunStore"]
