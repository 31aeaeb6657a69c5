"""An OpenAI-compatible upstream in a process of its own, for tests that kill it: it streams
the recorded answer (tests/data/llm/openai_chat_stream.sse) slowly, one event every
--every-ms, so a test can kill the process in the middle of an answer.

    python tests/upstream_process.py --port 8901 --every-ms 300
"""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RECORDED = (Path(__file__).parent / "data" / "llm" / "openai_chat_stream.sse").read_bytes()
EVENTS = [e + b"\n\n" for e in RECORDED.split(b"\n\n") if e.strip()]


def handler(every_s: float) -> type[BaseHTTPRequestHandler]:
    class Slow(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return None

        def do_GET(self) -> None:
            body = json.dumps({"object": "list", "data": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for event in EVENTS * 10:  # a long answer
                self.wfile.write(event)
                self.wfile.flush()
                time.sleep(every_s)
            self.wfile.write(b"data: [DONE]\n\n")

    return Slow


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--every-ms", type=float, default=300.0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(args.every_ms / 1000))
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
