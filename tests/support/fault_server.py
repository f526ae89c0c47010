"""A tiny OpenAI-compatible chat server with fault injection, for the model-backend tests.

:class:`FaultServer` listens on ``127.0.0.1`` (a free port), answers ``POST /v1/chat/completions`` with a
deterministic echo of the last user message, and answers a configurable share of requests with HTTP 429
(with a ``Retry-After`` header), HTTP 500, or a hang (no answer until the client gives up). Which request
gets which fault is drawn from a seeded RNG, or scripted exactly with ``script``. Everything received is
counted, so a test can check that every request either completed or was reported as a counted failure::

    with FaultServer(p_429=0.2, p_500=0.2, p_hang=0.05, seed=0) as srv:
        backend = OpenAIBackend("echo", srv.base_url, timeout_s=0.5, backoff_base_s=0.01)
        ...
        srv.counts  # Counter({"ok": ..., "429": ..., "500": ..., "hang": ...})
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Replies that are not a plain HTTP error: a 200 whose body is unusable, or a body that never arrives whole.
REPLY_FAULTS = (
    "malformed",       # 200 with a body that is not valid JSON
    "no_choices",      # 200 JSON without "choices"
    "empty_choices",   # 200 JSON with "choices": []
    "null_content",    # 200 JSON whose message content is null
    "trickle",         # a valid body sent a few bytes at a time, slower than the client's deadline
    "reset",           # headers and half the body, then the connection is reset
    "endless",         # a chunked body that never ends
    "oversized",       # a valid body with a 5 MB answer (whatever max_tokens asked for)
    "key_echo",        # 401 whose body echoes the Authorization header (a careless gateway)
)
OUTCOMES = ("ok", "429", "500", "hang", "bad_request", *REPLY_FAULTS)


class FaultServer:
    """Threaded fake chat-completions server; use as a context manager or call :meth:`start`/:meth:`stop`.

    Args:
        p_429, p_500, p_hang: share of requests answered with 429, 500, or left hanging.
        seed: seed of the fault draws (same seed and request order, same faults).
        script: outcomes (from :data:`OUTCOMES`) for the first requests, in arrival order; the
            probabilities apply after it runs out.
        retry_after: value of the ``Retry-After`` header on 429 answers (None: no header).
        delay_s: service time added to every successful answer.
        hang_s: how long a hanging request is held before the connection is closed without an answer.
        api_key: when set, requests without ``Authorization: Bearer <api_key>`` get 401.
        faults: share of requests per reply fault of :data:`REPLY_FAULTS` (e.g. ``{"malformed": 0.2}``),
            drawn after the 429/500/hang shares.
        trickle_s: how long a trickled body takes to arrive in full.
        oversized_bytes: size of the answer text of an oversized reply.
    """

    def __init__(
        self,
        p_429: float = 0.0,
        p_500: float = 0.0,
        p_hang: float = 0.0,
        seed: int = 0,
        script: list[str] | None = None,
        retry_after: str | None = "0",
        delay_s: float = 0.0,
        hang_s: float = 30.0,
        api_key: str | None = None,
        faults: dict[str, float] | None = None,
        trickle_s: float = 5.0,
        oversized_bytes: int = 5_000_000,
        quiet: bool = True,
    ) -> None:
        self.faults = dict(faults or {})
        unknown = [k for k in self.faults if k not in REPLY_FAULTS]
        if unknown:
            raise ValueError(f"unknown reply fault {unknown[0]!r} (known: {', '.join(REPLY_FAULTS)})")
        if min([p_429, p_500, p_hang, *self.faults.values()]) < 0 or p_429 + p_500 + p_hang + sum(self.faults.values()) > 1:
            raise ValueError("fault probabilities must be >= 0 and sum to <= 1")
        self.trickle_s = trickle_s
        self.oversized_bytes = oversized_bytes
        self.quiet = quiet  # a client that hangs up mid-reply (as it should on a huge body) is not an error here
        bad = [s for s in (script or []) if s not in OUTCOMES]
        if bad:
            raise ValueError(f"unknown scripted outcome {bad[0]!r} (known: {', '.join(OUTCOMES)})")
        self.p_429, self.p_500, self.p_hang = p_429, p_500, p_hang
        self.script = list(script or [])
        self.retry_after = retry_after
        self.delay_s = delay_s
        self.hang_s = hang_s
        self.api_key = api_key
        self.counts: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        # [content hash, time received, time answered (None: not answered)] per request, in arrival order
        self.timeline: list[list[Any]] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._rng = random.Random(seed)
        self._dead = False
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``"""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FaultServer:
        handler = _make_handler(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if self.quiet:
            self._httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._httpd.daemon_threads = True
        self._httpd.request_queue_size = 128
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def kill(self) -> None:
        """Die like a crashed server: open keep-alive connections are cut without an answer, and nothing
        listens any more."""
        self._dead = True
        self.stop()

    def stop(self) -> None:
        self._stopping.set()  # releases hanging handlers
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultServer:  # noqa: PYI034 - Python 3.10 has no typing.Self
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- behaviour ------------------------------------------------------------------------------------------

    def _draw(self) -> str:
        with self._lock:
            if self.script:
                outcome = self.script.pop(0)
            else:
                u = self._rng.random()
                if u < self.p_429:
                    outcome = "429"
                elif u < self.p_429 + self.p_500:
                    outcome = "500"
                elif u < self.p_429 + self.p_500 + self.p_hang:
                    outcome = "hang"
                else:
                    outcome = "ok"
                    acc = self.p_429 + self.p_500 + self.p_hang
                    for kind, p in self.faults.items():
                        acc += p
                        if u < acc:
                            outcome = kind
                            break
            self.counts[outcome] += 1
            self.counts["received"] += 1
            return outcome

    @staticmethod
    def answer_for(body: dict[str, Any]) -> str:
        """The deterministic text a successful request gets back."""
        users = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
        last = users[-1] if users else ""
        return f"echo({body.get('model')}, seed={body.get('seed')}): {last}"


def _make_handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, payload: dict[str, Any] | bytes, headers: dict[str, str] | None = None) -> None:
            blob = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(blob)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(blob)

        def do_POST(self) -> None:
            if server._dead:  # a crashed server answers nothing: the connection just drops
                import socket

                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            if len(raw) < length or not raw:
                # the client went away mid-request (e.g. SIGKILLed after the headers): like a real server,
                # answer nothing that could be mistaken for a served completion
                with contextlib.suppress(OSError):  # the peer is usually gone already
                    self._send(400, {"error": {"message": "empty or truncated body"}})
                return
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                self._send(400, {"error": {"message": "invalid JSON body"}})
                return
            if not isinstance(body, dict) or "messages" not in body:
                self._send(400, {"error": {"message": "'messages' is a required property"}})
                return
            import hashlib

            entry = [hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest(), time.time(), None]
            with server._lock:
                server.bodies.append(body)
                server.timeline.append(entry)
                server.in_flight += 1
                server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
            try:
                self._answer(body)
                entry[2] = time.time()
            finally:
                with server._lock:
                    server.in_flight -= 1

        def _answer(self, body: dict[str, Any]) -> None:
            if server.api_key is not None and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                with server._lock:
                    server.counts["401"] += 1
                self._send(401, {"error": {"message": "invalid api key"}})
                return
            outcome = server._draw()
            if outcome == "429":
                headers = {"Retry-After": server.retry_after} if server.retry_after is not None else {}
                self._send(429, {"error": {"message": "rate limited"}}, headers)
            elif outcome == "500":
                self._send(500, {"error": {"message": "injected server error"}})
            elif outcome == "bad_request":
                self._send(400, {"error": {"message": "injected bad request"}})
            elif outcome == "hang":
                server._stopping.wait(server.hang_s)
                self.close_connection = True
            elif outcome == "key_echo":
                auth = self.headers.get("Authorization", "")
                self._send(401, {"error": {"message": f"invalid credentials: {auth} is not allowed here"}})
            elif outcome in ("malformed", "no_choices", "empty_choices"):
                payload: dict[str, Any] | bytes = {
                    "malformed": b'{"id": "chatcmpl-fake", "choices": [{"message": {"content": "trunc',
                    "no_choices": {"id": "chatcmpl-fake", "object": "chat.completion", "usage": {}},
                    "empty_choices": {"id": "chatcmpl-fake", "object": "chat.completion", "choices": []},
                }[outcome]
                self._send(200, payload)
            elif outcome == "null_content":
                self._send(200, self._completion(body, None))
            elif outcome == "oversized":
                self._send(200, self._completion(body, "x" * server.oversized_bytes))
            elif outcome == "trickle":
                blob = json.dumps(self._completion(body, FaultServer.answer_for(body))).encode()  # never delivered whole
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                step = max(1, len(blob) // 20)
                with contextlib.suppress(OSError):
                    for i in range(0, len(blob), step):
                        if server._stopping.wait(server.trickle_s / 20):
                            break
                        self.wfile.write(blob[i:i + step])
                        self.wfile.flush()
                self.close_connection = True
            elif outcome == "reset":
                blob = json.dumps(self._completion(body, FaultServer.answer_for(body))).encode()  # never delivered whole
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(blob)))
                self.end_headers()
                self.wfile.write(blob[: len(blob) // 2])
                self.wfile.flush()
                import socket
                import struct

                with contextlib.suppress(OSError):  # SO_LINGER 0: close with a reset, not a clean FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
            elif outcome == "endless":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b'{"choices": [{"message": {"content": "' + b"y" * 65536
                with contextlib.suppress(OSError):
                    while not server._stopping.is_set():
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                        chunk = b"y" * 65536
                self.close_connection = True
            else:
                if server.delay_s:
                    time.sleep(server.delay_s)
                text = server.answer_for(body)
                self._send(200, self._completion(body, text))

        def _completion(self, body: dict[str, Any], text: str | None) -> dict[str, Any]:
            n = len(text.split()) if text else 0
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": n, "total_tokens": 1 + n},
            }

    return Handler
