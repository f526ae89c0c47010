"""A stand-in for ``python -m llama_cpp.server`` that dies with a signal, for the death-reporting tests.

Run as ``fake_llama_server.py MODE -m llama_cpp.server --port N ...``: ``startup`` kills itself with SIGILL
before listening; ``request`` answers ``GET /v1/models`` and dies with SIGILL on the first chat completion,
as a llama.cpp build with instructions the CPU cannot run does.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def main() -> None:
    mode = sys.argv[1]
    port = int(sys.argv[sys.argv.index("--port") + 1])
    print("llama_model_loader: loaded meta data; system_info: AVX512 = 1 | AMX_INT8 = 1", flush=True)
    if mode == "startup":
        os.kill(os.getpid(), signal.SIGILL)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"object": "list", "data": [{"id": "fake"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            print("ggml_compute_forward: about to run an AMX kernel", flush=True)
            os.kill(os.getpid(), signal.SIGILL)

    HTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
