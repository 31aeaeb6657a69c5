"""A stand-in OpenAI-compatible server on 127.0.0.1, for tests, benchmarks and demos.

It speaks the real wire format (the shapes recorded in tests/data/llm/openai_chat.json and
openai_chat_stream.sse): POST /v1/chat/completions, streamed (SSE) or not, and GET /v1/models.
Answers are deterministic, so a test can assert what a client saw and, through `requests`,
what the "model" was sent.

    with OpenAIDouble(model="double-1") as upstream:
        client = OpenAI(base_url=upstream.base_url, api_key="unused")

`python -m engram.llm.openai_double --port 8901` runs one in the foreground (for load tests).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from engram.llm.json_handler import JSONHandler

Reply = Callable[[list[dict[str, Any]]], str]


def echo(messages: list[dict[str, Any]]) -> str:
    """The default answer: quotes the last user message."""
    last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    content = last.get("content") if last else None
    text = content if isinstance(content, str) else json.dumps(content)
    return f"You said: {text}"


def _words(text: str) -> Iterator[str]:
    """Stream pieces the way models do: a word and its following space at a time."""
    piece = ""
    for char in text:
        piece += char
        if char == " ":
            yield piece
            piece = ""
    if piece:
        yield piece


class OpenAIDouble:
    """An OpenAI-compatible chat server on 127.0.0.1 that answers with `reply(messages)`."""

    def __init__(self, *, model: str = "double-1", reply: Reply = echo, port: int = 0,
                 delay_s: float = 0.0) -> None:
        self.model, self.reply, self.delay_s = model, reply, delay_s
        self.requests: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (the standalone mode)."""
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------ wire format

    def completion(self, body: dict[str, Any]) -> tuple[str, int, str, list[dict[str, Any]]]:
        """Record a request; the completion id, creation time, answer and its pieces' deltas."""
        with self._lock:
            self.requests.append(body)
            number = next(self._ids)
        if self.delay_s:
            time.sleep(self.delay_s)
        text = self.reply(list(body.get("messages", [])))
        deltas = [{"role": "assistant", "content": ""}, *({"content": w} for w in _words(text))]
        return f"chatcmpl-double{number}", int(time.time()), text, deltas

    def message(self, body: dict[str, Any]) -> dict[str, Any]:
        cid, created, text, _ = self.completion(body)
        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        done = len(text.split())
        return {
            "id": cid, "object": "chat.completion", "created": created,
            "model": body.get("model", self.model), "system_fingerprint": "fp_double",
            "choices": [{"index": 0, "logprobs": None, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text, "refusal": None,
                                     "annotations": []}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": done,
                      "total_tokens": prompt + done},
            "service_tier": "default",
        }

    def chunks(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        cid, created, _, deltas = self.completion(body)
        head = {"id": cid, "object": "chat.completion.chunk", "created": created,
                "model": body.get("model", self.model), "system_fingerprint": "fp_double"}
        for delta in deltas:
            yield {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                        "finish_reason": None}]}
        yield {**head, "choices": [{"index": 0, "delta": {}, "logprobs": None,
                                    "finish_reason": "stop"}]}

    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": self.model, "object": "model",
                                            "created": 1686935002, "owned_by": "engram"}]}


def _handler(double: OpenAIDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(JSONHandler):
        def _error(self, status: int, message: str, kind: str) -> None:
            self._json(status, {"error": {"message": message, "type": kind, "param": None,
                                          "code": None}})

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._json(200, double.models())
            else:
                self._error(404, f"Unknown path {self.path}", "invalid_request_error")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, f"Unknown path {self.path}", "invalid_request_error")
                return
            try:
                body = json.loads(raw)
                if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                    raise ValueError
            except ValueError:
                self._error(400, "'messages' is a required property", "invalid_request_error")
                return
            if not body.get("stream"):
                self._json(200, double.message(body))
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            for chunk in double.chunks(body):
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=8901)
    parser.add_argument("--model", default="double-1")
    parser.add_argument("--delay-ms", type=float, default=0.0,
                        help="time the 'model' takes per request")
    args = parser.parse_args(argv)
    double = OpenAIDouble(model=args.model, port=args.port, delay_s=args.delay_ms / 1000)
    print(f"OpenAI-compatible double on {double.base_url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        double.serve_forever()


if __name__ == "__main__":
    main()
