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
import sys
from pathlib import Path

from banditarena.errors import ModelError
from banditarena.models.serve import CommandServer, free_port

__all__ = ["LlamaCppServer", "free_port"]


class LlamaCppServer(CommandServer):
    """``python -m llama_cpp.server`` as a managed subprocess (context manager; see :class:`CommandServer`).

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
        super().__init__([], name="llama.cpp server", startup_timeout_s=startup_timeout_s,
                         hint="llama.cpp was compiled for CPU instructions this machine cannot run: rebuild it "
                              "portably (make llama-server, see the Makefile)")
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.extra_args = list(extra_args)
        self.python = python or sys.executable

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
        super().start()
        return self

    def backend(self, model: str = "llama.cpp", **options: object) -> object:  # type: ignore[override]
        return super().backend(model, **options)
