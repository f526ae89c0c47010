"""One writer per run directory: an advisory lock on ``RUN_DIR/run.lock``.

The lock is an ``fcntl.flock`` on an open file, so the kernel releases it when the holding process ends in
any way (SIGKILL included): a lock left by a killed process is simply taken over, and the file's contents
(pid, host, start time of the last holder) are rewritten. While it is held, a second writer gets one line
naming the holder and exits non-zero instead of paying for every request a second time.

Within one process the lock is shared: several stores opened on one run directory (a flywheel and the arena
it drives) count references and release it with the last one.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from banditarena.errors import StoreError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; one writer is then the user's job
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "run.lock"
_HELD: dict[str, RunLock] = {}
_GUARD = threading.Lock()


@dataclass
class RunLock:
    path: Path
    handle: IO[str] | None
    refs: int = 1

    @classmethod
    def acquire(cls, run_dir: str | Path) -> RunLock:
        """Take (or share, within this process) the lock of ``run_dir``; raise :class:`StoreError` if another
        live process holds it."""
        path = Path(run_dir) / LOCK_NAME
        key = str(path.resolve())
        with _GUARD:
            held = _HELD.get(key)
            if held is not None:
                held.refs += 1
                return held
            try:
                handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open while locked
            except OSError as exc:
                raise StoreError(f"{path}: cannot open the run lock ({exc.strerror})") from exc
            if fcntl is not None:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    holder = _describe(path)
                    handle.close()
                    raise StoreError(
                        f"{Path(run_dir)} is in use by another run ({holder}); wait for it to finish or stop it, "
                        f"then rerun (lock: {path})"
                    ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}))
            handle.flush()
            lock = _HELD[key] = cls(path, handle)
            return lock

    def release(self) -> None:
        with _GUARD:
            self.refs -= 1
            if self.refs > 0 or self.handle is None:
                return
            _HELD.pop(str(self.path.resolve()), None)
            handle, self.handle = self.handle, None
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            except OSError:
                pass
        handle.close()


def writer_active(run_dir: str | Path) -> bool:
    """Whether a live process holds ``run_dir``'s writer lock (never creates the lock file)."""
    path = Path(run_dir) / LOCK_NAME
    if str(path.resolve()) in _HELD:
        return True
    if fcntl is None or not path.exists():
        return False
    try:
        with open(path, encoding="utf-8") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return False
    except OSError:
        return False


def _describe(path: Path) -> str:
    """'pid 123 on host h since 2026-11-29 17:03:01' from the lock file (best effort)."""
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["started"])))
        return f"pid {info['pid']} on host {info['host']} since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not written its details yet"
