"""Routing between an edge and a laptop model: the complexity score, `engram chat --route` and
the proxy's `--model route:…`, against two OpenAI-compatible servers on 127.0.0.1
(`OpenAIDouble`, the OpenAI wire format), one of which is stopped to see the fallback."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from engram import Memory
from engram.chat.session import Chat, Command, load_model
from engram.errors import InvalidInput
from engram.llm.openai_double import OpenAIDouble
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.service import ServerConfig
from engram.state.route import Router, choose, complexity, parse_route

SIMPLE = "Where do I live?"
HARD = ("Why did my sister move to Porto, and how should I plan the visit next spring so that "
        "we can compare the two neighbourhoods she liked? Explain step by step.")


@pytest.fixture
def edge() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(model="edge-1b") as double:
        yield double


@pytest.fixture
def laptop() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(model="laptop-8b") as double:  # a test may stop it first: stop is safe twice
        yield double


def route(edge: OpenAIDouble, laptop: OpenAIDouble, extra: str = "") -> str:
    return (f"route:edge=openai:{edge.model}@{edge.base_url},"
            f"laptop=openai:{laptop.model}@{laptop.base_url}{extra}")


def test_the_score_sends_short_questions_to_the_edge_and_hard_ones_to_the_laptop() -> None:
    assert choose(complexity(SIMPLE), 0.5)[0] == "edge"
    side, reason = choose(complexity(HARD, memories=6), 0.5)
    assert side == "laptop" and "asks why" in reason and "6 memories" in reason
    assert complexity("hi").value < complexity(SIMPLE * 10).value <= 0.4
    assert choose(complexity(SIMPLE), 0.0)[0] == "laptop"  # threshold 0: everything hard


@pytest.mark.parametrize(("text", "says"), [
    ("edge=ollama:phi3", "names no laptop model"),
    ("laptop=ollama:phi3", "names no edge model"),
    ("edge=a:b,laptop=c:d,threshold=2", "threshold must be within 0..1"),
    ("edge=a:b,laptop=c:d,timeout=soon", "not a number"),
])
def test_a_bad_route_is_refused_naming_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        parse_route(text)


def test_a_spec_keeps_urls_with_commas_apart_only_at_the_side_names() -> None:
    spec = parse_route("route:edge=ollama:phi3@http://board:11434,laptop=openai:q@"
                       "http://127.0.0.1:8000/v1,threshold=0.7,timeout=5")
    assert spec.edge == "ollama:phi3@http://board:11434"
    assert spec.laptop == "openai:q@http://127.0.0.1:8000/v1"
    assert (spec.threshold, spec.timeout_s) == (0.7, 5.0)


def test_chat_routes_falls_back_and_records_who_answered(
        mem: Memory, edge: OpenAIDouble, laptop: OpenAIDouble) -> None:
    chat = Chat(mem, load_model(route(edge, laptop, ",timeout=5")), user_id="alice",
                session_id="s1", model_summaries=False)
    assert isinstance(chat.provider, Router)
    list(chat.send(SIMPLE))
    assert (len(edge.requests), len(laptop.requests)) == (1, 0)
    assert chat.run(Command("why")).message.startswith("routed to edge (openai:edge-1b)")
    list(chat.send(HARD))
    assert (len(edge.requests), len(laptop.requests)) == (1, 1)
    laptop.stop()
    answer = "".join(chat.send(HARD + " Again?"))
    assert answer.startswith("You said: Why did")  # the edge answered in its place
    why = chat.run(Command("why")).message
    assert "routed to edge (openai:edge-1b)" in why and "laptop failed" in why
    assert "cannot be reached" in why
    turns = [m for m in mem.list(user_id="alice", limit=50) if "turn" in m.metadata]
    by_agent = sorted((m.agent_id or "", m.metadata["turn"]["user"][:5]) for m in turns)
    assert by_agent == [("openai:edge-1b", "Where"), ("openai:edge-1b", "Why d"),
                        ("openai:laptop-8b", "Why d")]


def test_both_sides_down_is_an_error_not_a_silent_answer(
        mem: Memory, edge: OpenAIDouble, laptop: OpenAIDouble) -> None:
    chat = Chat(mem, load_model(route(edge, laptop)), user_id="alice", model_summaries=False)
    edge.stop()
    laptop.stop()
    with pytest.raises(Exception, match="cannot be reached"):
        list(chat.send(SIMPLE))
    assert mem.conversation(chat.session_id, user_id="alice") == []


@pytest.fixture
def routed_proxy(store_dir: Path, edge: OpenAIDouble,
                 laptop: OpenAIDouble) -> Iterator[tuple[Memory, str]]:
    mem = Memory(store_dir, embedder=None)
    mem.add("Alice lives in Porto", user_id="alice")
    spec = f"route:edge={edge.base_url},laptop={laptop.base_url},timeout=5"
    app = create_app(ServerConfig(data=store_dir, model=spec), mem)
    with serving(app) as url:
        yield mem, url


def ask(url: str, text: str, stream: bool = False) -> httpx.Response:
    body = {"model": "any", "messages": [{"role": "user", "content": text}], "user": "alice",
            "stream": stream, "engram": {"session_id": "p1"}}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)


def test_the_proxy_routes_says_why_in_headers_and_falls_back(
        routed_proxy: tuple[Memory, str], edge: OpenAIDouble, laptop: OpenAIDouble) -> None:
    mem, url = routed_proxy
    simple = ask(url, SIMPLE)
    assert simple.status_code == 200 and simple.headers["x-engram-route"] == "edge"
    assert simple.headers["x-engram-route-model"] == f"any@{edge.base_url}"
    assert "score" in simple.headers["x-engram-route-reason"]
    hard = ask(url, HARD, stream=True)
    assert hard.headers["x-engram-route"] == "laptop" and "data: [DONE]" in hard.text
    assert (len(edge.requests), len(laptop.requests)) == (1, 1)
    laptop.stop()
    moved = openai.OpenAI(base_url=f"{url}/v1", api_key="x").chat.completions.with_raw_response \
        .create(model="any", messages=[{"role": "user", "content": HARD}], user="alice")
    assert moved.headers["x-engram-route"] == "edge"
    assert "laptop failed" in moved.headers["x-engram-route-fallback"]
    assert (moved.parse().choices[0].message.content or "").startswith("You said: Why did")
    turns = [m for m in mem.list(user_id="alice", limit=50) if "turn" in m.metadata]
    assert sorted(m.agent_id or "" for m in turns) == sorted([
        f"any@{edge.base_url}", f"any@{edge.base_url}", f"any@{laptop.base_url}"])


def test_engram_serve_route_sends_each_request_to_a_side(
        tmp_path: Path, edge: OpenAIDouble, laptop: OpenAIDouble) -> None:
    """`engram serve --route edge=URL,laptop=URL`, a real process: the proxy routes by it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = subprocess.Popen(
        [sys.executable, "-m", "engram", "serve", "--data", str(tmp_path / "d"), "--port",
         str(port), "--route", f"edge={edge.base_url},laptop={laptop.base_url}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        simple, hard = ask(url, SIMPLE), ask(url, HARD)
        assert (simple.headers["x-engram-route"], hard.headers["x-engram-route"]) == \
            ("edge", "laptop")
    finally:
        served.send_signal(signal.SIGINT)
        served.wait(60)


def test_engram_serve_route_is_refused_beside_a_model(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "engram", "serve", "--data", str(tmp_path / "d"), "--route",
         "edge=http://a/v1,laptop=http://b/v1", "--model", "ollama:phi3"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--route" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
