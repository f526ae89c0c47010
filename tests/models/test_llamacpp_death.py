"""A llama.cpp server process that dies is reported in one line with the signal and the log tail."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from banditarena.errors import ModelError
from banditarena.models.base import ChatRequest
from banditarena.models.llamacpp import LlamaCppServer
from banditarena.types import Strategy

FAKE = Path(__file__).with_name("fake_llama_server.py")


def _server(tmp_path: Path, mode: str) -> LlamaCppServer:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    srv = LlamaCppServer(gguf, startup_timeout_s=30, python=sys.executable)
    srv.command = lambda: [sys.executable, str(FAKE), mode, "-m", "llama_cpp.server", "--port", str(srv.port)]  # type: ignore[method-assign]
    return srv


def test_death_at_startup_names_the_signal_and_keeps_the_log(tmp_path: Path) -> None:
    srv = _server(tmp_path, "startup")
    with pytest.raises(ModelError) as err:
        srv.start()
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("llama.cpp server died with SIGILL (Illegal instruction)")
    assert "rebuild it portably" in msg and "AMX_INT8 = 1" in msg  # the hint and the log tail
    assert srv.log_path is not None and srv.log_path.exists() and str(srv.log_path) in msg
    srv.log_path.unlink()


def test_death_on_a_request_is_reported_instead_of_a_connection_error(tmp_path: Path) -> None:
    srv = _server(tmp_path, "request").start()
    try:
        backend = srv.backend("fake", max_retries=3, backoff_base_s=0.01, timeout_s=10)
        (c,) = backend.complete([ChatRequest("p", 0, [{"role": "user", "content": "hi"}])], Strategy(max_tokens=4))
        assert not c.ok
        assert "llama.cpp server died with SIGILL (Illegal instruction)" in c.error
        assert "about to run an AMX kernel" in c.error
        assert backend.stats["attempts"] == 1  # a dead process is not retried
        with pytest.raises(ModelError, match="died with SIGILL"):
            srv.check()
    finally:
        srv.stop()
        if srv.log_path is not None:
            srv.log_path.unlink(missing_ok=True)


def test_a_running_server_reports_nothing(tmp_path: Path) -> None:
    srv = _server(tmp_path, "request").start()
    try:
        assert srv.death_message() is None
        srv.check()
    finally:
        srv.stop()
    assert srv.log_path is not None and not srv.log_path.exists()  # a clean stop removes the log
