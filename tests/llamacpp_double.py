"""A stand-in for llama.cpp's `llama-server` on 127.0.0.1, speaking its wire format as its
server README documents it (tools/server/README.md): the OpenAI-compatible
`POST /v1/chat/completions` (JSON or SSE, with llama.cpp's `id_slot`, `cache_prompt` and
`timings`), and the slot endpoints `POST /slots/{id}?action=save|restore|erase` with their
`n_saved`/`n_restored`/`n_erased` answers, or 501 `not_supported_error` when the server was
started without `--slot-save-path`.

The "KV cache" of a slot is the prompt's words, so a test can see what was reused: each answer
reports `timings.prompt_n`, the words it had to evaluate (those past the slot's common prefix).
The saved slot files live in `files`, which outlives a restart (a new double given the same
dict).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from engram.llm.json_handler import JSONHandler


class LlamaCppDouble:
    def __init__(self, *, files: dict[str, list[str]] | None = None,
                 slot_save_path: bool = True) -> None:
        self.files = files if files is not None else {}
        self.slot_save_path = slot_save_path
        self.slot: list[str] = []  # slot 0's cached prompt
        self.prompt_n: list[int] = []  # per answer: prompt words evaluated (not reused)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        words = " ".join(f"{m['role']}: {m['content']}" for m in body["messages"]).split()
        reused = 0
        if body.get("cache_prompt"):
            while reused < min(len(words), len(self.slot)) and words[reused] == self.slot[reused]:
                reused += 1
        last = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        text = f"You said: {last}"
        self.slot = [*words, "assistant:", *text.split()]
        self.prompt_n.append(len(words) - reused)
        timings = {"prompt_n": len(words) - reused, "prompt_ms": 1.5,
                   "prompt_per_token_ms": 0.1, "prompt_per_second": 9000.0,
                   "predicted_n": len(text.split()), "predicted_ms": 3.0,
                   "predicted_per_token_ms": 0.5, "predicted_per_second": 2000.0}
        return text, timings

    def slot_action(self, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not self.slot_save_path:
            return 501, {"error": {"code": 501, "message": "This server does not support slots "
                                   "action. Start it with `--slot-save-path`",
                                   "type": "not_supported_error"}}
        name = str(body.get("filename", ""))
        if action == "save":
            self.files[name] = list(self.slot)
            return 200, {"id_slot": 0, "filename": name, "n_saved": len(self.slot),
                         "n_written": 16384 * len(self.slot), "timings": {"save_ms": 4.2}}
        if action == "restore":
            if name not in self.files:
                return 400, {"error": {"code": 400, "message": "failed to restore slot",
                                       "type": "invalid_request_error"}}
            self.slot = list(self.files[name])
            return 200, {"id_slot": 0, "filename": name, "n_restored": len(self.slot),
                         "n_read": 16384 * len(self.slot), "timings": {"restore_ms": 3.1}}
        erased, self.slot = len(self.slot), []
        return 200, {"id_slot": 0, "n_erased": erased}


def _handler(double: LlamaCppDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(JSONHandler):
        content_type = "application/json; charset=utf-8"  # as llama-server sends it

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw or b"{}")
            where = urlsplit(self.path)
            double.requests.append((self.path, body))
            if where.path.startswith("/slots/"):
                action = parse_qs(where.query).get("action", [""])[0]
                self._json(*double.slot_action(action, body))
                return
            text, timings = double.answer(body)
            head = {"created": int(time.time()), "id": "chatcmpl-llamacpp1",
                    "model": body.get("model", "gguf"), "system_fingerprint": "b5000-abcdef"}
            if not body.get("stream"):
                self._json(200, {**head, "object": "chat.completion", "choices": [
                    {"finish_reason": "stop", "index": 0,
                     "message": {"role": "assistant", "content": text}}],
                    "usage": {"completion_tokens": 3, "prompt_tokens": 9, "total_tokens": 12},
                    "timings": timings})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for i, word in enumerate(text.split(" ")):
                delta = {"content": word if i == 0 else f" {word}"}
                chunk = {**head, "object": "chat.completion.chunk",
                         "choices": [{"finish_reason": None, "index": 0, "delta": delta}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            last = {**head, "object": "chat.completion.chunk", "timings": timings,
                    "choices": [{"finish_reason": "stop", "index": 0, "delta": {}}]}
            self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
            self.close_connection = True

    return Handler
