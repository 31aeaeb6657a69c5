"""The proxy tells the truth about an upstream that misbehaves, over real HTTP with the
official `openai` client: a stream dropped mid-answer is recorded as incomplete (nothing
extracted) and the client gets an error; an answer that is not JSON is a 502 naming what it
was; a hung upstream is a 504 after --upstream-timeout.

The upstream is a stand-in (a paid model API cannot fail on cue here) that replays the
recorded stream tests/data/llm/openai_chat_stream.sse, then misbehaves as the request's
`model` asks: "drop" closes the connection after the first chunks, "html" answers 200 with a
login page, "hang" waits longer than the proxy's timeout.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import openai
import pytest

from engram.memory import Memory
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.service import INCOMPLETE, ServerConfig

RECORDED = (Path(__file__).parent / "data" / "llm" / "openai_chat_stream.sse").read_bytes()
EVENTS = [e + b"\n\n" for e in RECORDED.split(b"\n\n") if e.strip()]
HANG_S = 3.0


class Misbehaving(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        mode = body["model"]
        if mode == "hang":
            time.sleep(HANG_S)
        if mode == "html":
            page = b"<html><body>Please sign in to the portal</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        events = EVENTS[:3] if mode == "drop" else EVENTS
        for event in events:  # "Hello" and " there" or so, then the connection dies
            self.wfile.write(event)
            self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[tuple[str, Memory]]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    mem = Memory(tmp_path / "store", embedder=None)
    config = ServerConfig(data=tmp_path / "store", upstream_timeout_s=1.0,
                          upstream=f"http://127.0.0.1:{upstream.server_address[1]}/v1")
    try:
        with serving(create_app(config, mem)) as url:
            yield url, mem
    finally:
        upstream.shutdown()
        upstream.server_close()


def ask(url: str, model: str, session: str) -> Iterator[str]:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    for chunk in client.chat.completions.create(
            model=model, stream=True, extra_body={"engram": {"session_id": session}},
            messages=[{"role": "user", "content": "I moved to Lisbon last year"}]):
        if chunk.choices:
            yield chunk.choices[0].delta.content or ""


def test_a_dropped_stream_is_recorded_incomplete_and_told(proxy: tuple[str, Memory]) -> None:
    url, mem = proxy
    got: list[str] = []
    with pytest.raises(openai.APIError, match="incomplete"):
        for piece in ask(url, "drop", "cut"):
            got.append(piece)
    assert got and "".join(got)  # what came before the drop reached the client
    kept = mem.list(session_id="cut", user_id="default")
    assert len(kept) == 1 and INCOMPLETE in kept[0].tags  # the exchange, nothing extracted
    assert not [m for m in mem.list(user_id="default") if "Lisbon" in m.content
                and INCOMPLETE not in m.tags]
    whole = "".join(ask(url, "full", "whole"))  # the same answer, finished, for comparison
    assert whole.startswith("".join(got))
    finished = mem.list(session_id="whole", user_id="default")
    assert finished and all(INCOMPLETE not in m.tags for m in finished)


def test_an_answer_that_is_not_json_is_a_502(proxy: tuple[str, Memory]) -> None:
    url, mem = proxy
    for stream in (False, True):
        answer = httpx.post(f"{url}/v1/chat/completions", timeout=30, json={
            "model": "html", "stream": stream,
            "messages": [{"role": "user", "content": "hello"}]})
        assert answer.status_code == 502
        error = answer.json()["error"]
        assert error["field"] == "upstream" and "text/html" in error["problem"]
    assert mem.list(user_id="default") == []


def test_a_hung_upstream_is_a_504_after_the_timeout(proxy: tuple[str, Memory]) -> None:
    url, _ = proxy
    started = time.monotonic()
    answer = httpx.post(f"{url}/v1/chat/completions", timeout=30, json={
        "model": "hang", "messages": [{"role": "user", "content": "hello"}]})
    took = time.monotonic() - started
    assert answer.status_code == 504 and 0.9 < took < HANG_S
    assert "no answer within 1 s" in answer.json()["error"]["problem"]
