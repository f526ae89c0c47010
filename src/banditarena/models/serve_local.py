"""A small OpenAI-compatible server for a local checkpoint, on the CPU: what ``target.serve`` runs in tests and
on machines without vLLM or SGLang.

    python -m banditarena.models.serve_local CHECKPOINT --port 8000 [--served-name NAME] [--batch-size 8]

``GET /v1/models`` lists the served name; ``POST /v1/chat/completions`` answers with the project's local
backend (:class:`~banditarena.models.local.LocalBackend`: the checkpoint's chat template, greedy or seeded
sampling, ``max_tokens``), one request at a time. It is a stand-in for a real engine, not one.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from banditarena.models.base import ChatRequest
from banditarena.models.local import LocalBackend
from banditarena.types import Strategy


def make_handler(backend: LocalBackend, served_name: str) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            blob = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": served_name, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                messages = body["messages"]
            except (ValueError, KeyError, TypeError):
                self._send(400, {"error": {"message": "a JSON body with 'messages' is required"}})
                return
            if body.get("model") not in (None, served_name):
                self._send(404, {"error": {"message": f"model '{body.get('model')}' is not served here ({served_name})"}})
                return
            strategy = Strategy(temperature=float(body.get("temperature", 0.0)), top_p=float(body.get("top_p", 1.0)),
                                max_tokens=int(body.get("max_tokens") or 256))
            req = ChatRequest("served", 0, messages, seed=body.get("seed"))
            with lock:  # one generation at a time
                (c,) = backend.complete([req], strategy)
            if not c.ok:
                self._send(500, {"error": {"message": c.error}})
                return
            self._send(200, {
                "id": f"chatcmpl-{time.time_ns()}", "object": "chat.completion", "model": served_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": c.text},
                             "finish_reason": "length" if c.tokens >= strategy.max_tokens else "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": c.tokens, "total_tokens": c.tokens},
            })

    return Handler


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--served-name", default=None)
    args = ap.parse_args(argv)
    backend = LocalBackend(args.checkpoint, batch_size=1)
    backend.load()
    server = ThreadingHTTPServer((args.host, args.port), make_handler(backend, args.served_name or args.checkpoint))
    print(f"serving {args.checkpoint} as '{args.served_name or args.checkpoint}' on http://{args.host}:{args.port}/v1",
          flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
