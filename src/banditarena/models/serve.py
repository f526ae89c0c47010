"""A model server as a managed subprocess: any command that serves an OpenAI-compatible API.

:class:`CommandServer` starts a command (vLLM, SGLang, llama.cpp, or the small CPU server in
:mod:`banditarena.models.serve_local`) on a free port of 127.0.0.1, waits until ``GET {base_url}/models``
answers 200, and stops it (the whole process group) on exit. Its output goes to a log file. A process that
dies (a crash, an out-of-memory kill, SIGILL from a non-portable build) is reported in one line with the
signal's name and the log's tail, both at start-up and when a request fails because the process is gone:
backends made with :meth:`CommandServer.backend` check the process whenever a request gets no answer.

The command is a template: ``{port}``, ``{checkpoint}``, ``{served_name}`` and ``{python}`` are filled in,
e.g. ``vllm serve {checkpoint} --port {port} --served-model-name {served_name}``.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import httpx

from banditarena.errors import ModelError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CommandServer:
    """A serving command as a managed subprocess (context manager).

    Args:
        command: the command template (a string split like a shell does, or a list of arguments).
        fields: values for the template's ``{name}`` fields besides ``port`` and ``python``.
        name: what the server is, in messages (e.g. ``"vLLM server for tiny-it2"``).
        startup_timeout_s: how long to wait for ``GET /v1/models`` to answer 200.
        log_path: where the server's output goes (default: a temporary file, removed after a clean stop).
        hint: a sentence added to the message when the process dies of SIGILL.
    """

    def __init__(self, command: str | list[str], *, fields: dict[str, Any] | None = None, name: str = "model server",
                 startup_timeout_s: float = 180.0, log_path: str | Path | None = None, hint: str = "") -> None:
        self.template = command
        self.fields = dict(fields or {})
        self.name = name
        self.startup_timeout_s = startup_timeout_s
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = Path(log_path) if log_path is not None else None
        self._own_log = log_path is None
        self._log: IO[bytes] | None = None
        self._keep_log = not self._own_log
        self.hint = hint

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        """The command with its fields filled in."""
        values = {**self.fields, "port": self.port, "python": sys.executable}
        parts = shlex.split(self.template) if isinstance(self.template, str) else list(self.template)
        try:
            return [p.format(**values) for p in parts]
        except (KeyError, IndexError, ValueError) as exc:
            raise ModelError(f"{self.name}: the command template {self.template!r} has an unknown field {exc}") from None

    def start(self) -> CommandServer:
        """Launch the server and wait until it answers; raises :class:`ModelError` (one line) if it cannot."""
        self.port = free_port()
        cmd = self.command()
        if self.log_path is None:
            fd, log = tempfile.mkstemp(prefix="banditarena-server-", suffix=".log")
            os.close(fd)
            self.log_path = Path(log)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self._log.write(("$ " + shlex.join(cmd) + "\n").encode())
        self._log.flush()
        try:
            self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            self._keep_log = True
            self.stop()
            raise ModelError(f"{self.name}: command '{cmd[0]}' could not start ({exc.strerror}); log: {self.log_path}") from exc
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            died = self.death_message()
            if died is not None:
                self.stop()
                raise ModelError(died)
            try:
                if httpx.get(self.base_url + "/models", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self._keep_log = True
        self.stop()
        raise ModelError(f"{self.name} not ready after {self.startup_timeout_s:g}s (command: {shlex.join(cmd)}); "
                         f"log: {self.log_path}")

    def death_message(self, wait_s: float = 0.0) -> str | None:
        """One line saying how the server process ended (signal name, exit code, log tail); None while it runs.

        ``wait_s``: how long to give a process that may be dying (a request just lost its connection) to exit."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=wait_s) if wait_s > 0 else None
            except subprocess.TimeoutExpired:
                return None
            if self.proc.poll() is None:
                return None
        self._keep_log = True  # the log explains the death: keep it for the user
        rc = self.proc.returncode
        if rc < 0:
            try:
                sig = signal.Signals(-rc)
                how = f"died with {sig.name} ({signal.strsignal(sig) or 'signal'})"
            except ValueError:
                how = f"died with signal {-rc}"
        else:
            how = f"exited with code {rc}"
        hint = f"; {self.hint}" if rc == -signal.SIGILL and self.hint else ""
        tail = self.log_tail()
        log = f" (log: {self.log_path})" if self.log_path is not None else ""
        return f"{self.name} {how}{hint}: {tail or 'no output'}{log}"

    def check(self) -> None:
        """Raise :class:`ModelError` (one line, see :meth:`death_message`) if the server process is gone."""
        died = self.death_message()
        if died is not None:
            raise ModelError(died)

    def backend(self, model: str, **options: Any) -> Any:
        """An :class:`~banditarena.models.openai.OpenAIBackend` on this server that, when a request gets no
        answer, checks the process and reports its death (signal, log tail) instead of a connection error."""
        from banditarena.models.openai import OpenAIBackend

        return OpenAIBackend(model, self.base_url, liveness=lambda: self.death_message(wait_s=1.0), **options)

    def log_tail(self, n: int = 300) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return " ".join(self.log_path.read_text(errors="replace")[-n:].split())

    def stop(self) -> None:
        """Terminate the server's process group (kill after 10 s); remove a temporary log after a clean run."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except OSError:
                self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.log_path is not None and self._own_log and not self._keep_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> CommandServer:  # noqa: PYI034 - Python 3.10 has no typing.Self
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
