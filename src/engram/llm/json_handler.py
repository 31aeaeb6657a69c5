"""The HTTP plumbing that the wire-format doubles (`OpenAIDouble`, the tests' llama.cpp
double) share: HTTP/1.1 keep-alive like the real servers, no access log, and a JSON answer
with its length."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any


class JSONHandler(BaseHTTPRequestHandler):
    """A request handler whose answers are JSON documents of `content_type`."""

    protocol_version = "HTTP/1.1"
    content_type = "application/json"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and load runs read results, not access logs."""

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
