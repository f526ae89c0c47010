"""A small deterministic OpenAI-compatible server for tests (threaded http.server on 127.0.0.1).

* ``POST /v1/chat/completions``: answers deterministically from the request content. A request whose last
  user message mentions "Assistant A" is treated as a judge call and answered in the judge's line format with
  scores derived from a hash of the request, so judgments are deterministic too.
* fault injection: ``fail_rate`` share of requests (chosen by a seeded RNG) answer 429, 500 or hang.
* counters of every request by content hash, so tests can check that nothing is requested twice.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAIServer:
    def __init__(self, *, latency_s: float = 0.0, fail_rate: float = 0.0, faults: tuple[str, ...] = ("429", "500", "hang"),
                 hang_s: float = 5.0, seed: int = 0, down: bool = False) -> None:
        self.latency_s = latency_s
        self.fail_rate = fail_rate
        self.faults = faults
        self.hang_s = hang_s
        self.down = down
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()  # content hash -> times answered successfully
        self.attempts = 0
        self.failures: Counter[str] = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout): fine
                    pass

            def do_GET(self) -> None:  # noqa: N802
                self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(n) or b"{}")
                with server.lock:
                    server.attempts += 1
                    fault = None
                    if server.down:
                        fault = "500"
                    elif server.fail_rate and server.rng.random() < server.fail_rate:
                        fault = server.rng.choice(server.faults)
                    if fault:
                        server.failures[fault] += 1
                if fault == "429":
                    self._send(429, {"error": {"message": "rate limited"}})
                    return
                if fault == "500":
                    self._send(500, {"error": {"message": "internal error"}})
                    return
                if fault == "hang":
                    time.sleep(server.hang_s)
                    self._send(504, {"error": {"message": "hung"}})
                    return
                if server.latency_s:
                    time.sleep(server.latency_s)
                text = server.answer(payload)
                key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
                with server.lock:
                    server.requests[key] += 1
                self._send(200, {
                    "id": "cmpl-" + key[:8], "object": "chat.completion", "model": payload.get("model", "fake"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": len(text.split()), "total_tokens": 10 + len(text.split())},
                })

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def answer(payload: dict[str, Any]) -> str:
        msgs = payload.get("messages", [])
        last = next((m["content"] for m in reversed(msgs) if m.get("role") == "user"), "")
        h = int(hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest(), 16)
        if "Assistant A" in last or "assistant A" in last:
            a, b = 1 + h % 10, 1 + (h // 10) % 10
            return f"Rationale: deterministic test judgment.\nScore A: {a}\nScore B: {b}"
        model = payload.get("model", "fake")
        words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
        n = 3 + h % 12 + (8 if "strong" in model else 0)
        return f"[{model}] " + " ".join(words[(h >> i) % len(words)] for i in range(n))

    def __enter__(self) -> FakeOpenAIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def start(self) -> FakeOpenAIServer:
        return self.__enter__()

    def stop(self) -> None:
        self.__exit__()


if __name__ == "__main__":  # serve for a subprocess test: python -m tests.support.openai_server PORTFILE
    import sys

    srv = FakeOpenAIServer(latency_s=float(sys.argv[2]) if len(sys.argv) > 2 else 0.0).start()
    with open(sys.argv[1], "w") as fh:
        fh.write(str(srv.port))
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        srv.stop()
