"""Start and stop llama-cpp-python's OpenAI-compatible server for a GGUF model on 127.0.0.1.

Used by the real-server integration test and by ``bench/arena_throughput.py``; handy for serving the
embedded default (``banditarena.models.hub.smollm2_gguf()``) to an :class:`OpenAIBackend` offline::

    with LlamaCppServer(smollm2_gguf()) as srv:
        backend = OpenAIBackend("smollm2", srv.base_url)

llama-cpp-python's server handles one completion at a time (requests queue behind a lock), so its
saturation throughput is one request's service time at a time, whatever the client's concurrency.

A server process that dies (for example with SIGILL, when llama.cpp was compiled for CPU instructions this
machine cannot run) is reported in one line with the signal's name and the tail of its log, both at
start-up and when a request fails because the process is gone: backends made with :meth:`backend` check
the process whenever a request gets no answer, instead of reporting a bare connection error.
"""

from __future__ import annotations

import importlib.util
import os
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


class LlamaCppServer:
    """``python -m llama_cpp.server`` as a managed subprocess (context manager).

    Args:
        model_path: the GGUF file to serve.
        n_ctx: context window.
        n_threads: CPU threads for generation (None: llama-cpp-python's default).
        extra_args: more command-line flags for the server.
        startup_timeout_s: how long to wait for ``GET /v1/models`` to answer 200.
        python: interpreter that has ``llama_cpp`` installed (default: this one).
    """

    def __init__(
        self,
        model_path: str | Path,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        extra_args: tuple[str, ...] | list[str] = (),
        startup_timeout_s: float = 180.0,
        python: str | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.extra_args = list(extra_args)
        self.startup_timeout_s = startup_timeout_s
        self.python = python or sys.executable
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.log_path: Path | None = None
        self._keep_log = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @staticmethod
    def available() -> bool:
        """Whether ``llama_cpp.server`` can be imported by this interpreter."""
        return importlib.util.find_spec("llama_cpp") is not None

    def command(self) -> list[str]:
        cmd = [self.python, "-m", "llama_cpp.server", "--model", str(self.model_path), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(self.n_ctx)]
        if self.n_threads is not None:
            cmd += ["--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads)]
        return cmd + self.extra_args

    def start(self) -> LlamaCppServer:
        """Launch the server and wait until it answers; raises :class:`ModelError` if it cannot start."""
        if self.python == sys.executable and not self.available():
            raise ModelError("llama-cpp-python is not installed: pip install 'llama-cpp-python[server]'")
        if not self.model_path.is_file():
            raise ModelError(f"llama.cpp server: GGUF model {self.model_path} not found")
        self.port = free_port()
        fd, log = tempfile.mkstemp(prefix="llamacpp-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT)
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
        self.stop()
        raise ModelError(f"llama.cpp server on port {self.port} not ready after {self.startup_timeout_s:g}s")

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
        hint = ""
        if rc == -signal.SIGILL:
            hint = ("; llama.cpp was compiled for CPU instructions this machine cannot run: rebuild it portably "
                    "(make llama-server, see the Makefile)")
        tail = self.log_tail()
        log = f" (log: {self.log_path})" if self.log_path is not None else ""
        return f"llama.cpp server {how}{hint}: {tail or 'no output'}{log}"

    def check(self) -> None:
        """Raise :class:`ModelError` (one line, see :meth:`death_message`) if the server process is gone."""
        died = self.death_message()
        if died is not None:
            raise ModelError(died)

    def backend(self, model: str = "llama.cpp", **options: Any) -> Any:
        """An :class:`~banditarena.models.openai.OpenAIBackend` on this server that, when a request gets no
        answer, checks the process and reports its death (signal, log tail) instead of a connection error."""
        from banditarena.models.openai import OpenAIBackend

        return OpenAIBackend(model, self.base_url, liveness=lambda: self.death_message(wait_s=1.0), **options)

    def log_tail(self, n: int = 300) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return " ".join(self.log_path.read_text(errors="replace")[-n:].split())

    def stop(self) -> None:
        """Terminate the server (kill after 10 s) and remove its log (kept when the process died by itself)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.log_path is not None and not self._keep_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> LlamaCppServer:  # noqa: PYI034 - Python 3.10 has no typing.Self
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
