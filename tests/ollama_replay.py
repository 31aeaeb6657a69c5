"""A stand-in for Ollama's `POST /api/generate` on 127.0.0.1: answers every request with the
same ndjson stream (Ollama's wire format: one JSON object a line, the last with `done: true`)
and records the request bodies, so a test can check what the chat sent. Used by test_chat.py
(a recorded stream, tests/data/llm) and test_state_chat.py (a stream without `context`)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class OllamaReplay:
    """Replays `stream` to every POST; `bodies` holds the requests' JSON bodies in order."""

    def __init__(self, stream: bytes) -> None:
        self.bodies: list[dict[str, Any]] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                replay.bodies.append(json.loads(raw))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Content-Length", str(len(stream)))
                self.end_headers()
                self.wfile.write(stream)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def __enter__(self) -> OllamaReplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.shutdown()
        self.http.server_close()


def ndjson(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()

