"""The REST API over real HTTP on 127.0.0.1: memories, search with explain, context, history,
feedback, turns, stats, export; errors as JSON naming the field and the fix; body limits."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engram.memory import Memory
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.service import ServerConfig
from store_contract import Backend


def error_of(response: httpx.Response) -> dict[str, str]:
    body: dict[str, dict[str, str]] = response.json()
    assert set(body["error"]) >= {"message", "field", "problem", "fix"}
    return body["error"]


def test_engram_serve_runs_as_a_command(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "engram", "serve", "--data",
                               str(tmp_path / "store"), "--port", str(port)],
                              stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        made = httpx.post(f"{url}/memories", json={"text": "served over HTTP"},
                          timeout=120)  # the first write loads the embedding model
        assert made.status_code == 201 and made.json()["user_id"] == "default"
        assert httpx.get(f"{url}/openapi.json").json()["info"]["title"] == "Engram"
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert f"on http://127.0.0.1:{port}" in err
    with Memory(tmp_path / "store", embedder=None) as mem:
        assert [m.content for m in mem.list()] == ["served over HTTP"]


def test_reader_connections_see_every_write_at_once(tmp_path: Path) -> None:
    """With --readers, reads run on other connections than the writer: a client must still
    read its own writes immediately (search, list, get, history, context)."""
    app = create_app(ServerConfig(data=tmp_path / "store", readers=2))
    with serving(app) as url, httpx.Client(base_url=url, timeout=30) as api:
        for n in range(12):
            made = api.post("/memories", json={"text": f"Alice planted tomato number {n}",
                                               "user_id": "alice", "dedupe": False}).json()
            hits = api.post("/search", json={"query": f"tomato number {n}",
                                             "user_id": "alice", "limit": 20}).json()
            assert made["id"] in [h["memory"]["id"] for h in hits]
            assert api.get(f"/memories/{made['id']}").status_code == 200
            assert len(api.get("/memories", params={"user_id": "alice"}).json()) == n + 1
            assert made["id"] in api.post("/context", json={
                "query": f"tomato number {n}", "user_id": "alice"}).json()["memory_ids"]
            if n % 3 == 0:  # forget it, and it is gone for the readers too; then add it back
                assert api.delete(f"/memories/{made['id']}").status_code == 204
                assert api.get(f"/memories/{made['id']}").status_code == 404
                api.post("/memories", json={"text": f"Alice planted tomato number {n}",
                                            "user_id": "alice", "dedupe": False})


def test_the_server_maintains_the_store_in_the_background(tmp_path: Path) -> None:
    """Due maintenance runs off the request path: a short-term memory left unconfirmed past
    its TTL expires without any request asking for it."""
    from datetime import UTC, datetime, timedelta

    from engram import ManualClock, Status
    from engram.store.settings import MAINTAINED_AT

    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    memory = Memory(tmp_path / "store", clock=clock, embedder=None)
    chatter = memory.add("Alice is tired", user_id="alice", memory_type="context")
    memory.maintain()
    clock.advance(timedelta(days=4))
    app = create_app(ServerConfig(data=tmp_path / "store", maintenance_check_s=0.05), memory)
    with serving(app):
        deadline = time.monotonic() + 10
        while memory.store.get_setting(MAINTAINED_AT) != "2026-01-09T00:00:00.000000Z" and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        expired = memory.list(user_id="alice", status="expired")
    assert [m.id for m in expired] == [chatter.id] and expired[0].status is Status.EXPIRED


class ServerContract(Backend):
    """The REST API on every backend; run by test_store_*.py."""

    @pytest.fixture
    def api(self, store_dir: Path) -> Iterator[httpx.Client]:
        app = create_app(ServerConfig(data=store_dir, max_body_bytes=64 * 1024),
                         Memory(store_dir, embedder=None))
        with serving(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield client

    def test_memory_lifecycle(self, api: httpx.Client) -> None:
        made = api.post("/memories", json={"text": "I moved to Berlin", "user_id": "alice",
                                           "tags": ["home"], "at": "2026-09-01T10:00:00Z"})
        assert made.status_code == 201
        memory = made.json()
        assert memory["user_id"] == "alice" and memory["tags"] == ["home"]
        mid = memory["id"]
        assert api.get(f"/memories/{mid}").json()["content"] == "I moved to Berlin"

        changed = api.patch(f"/memories/{mid}", json={"text": "I moved to Hamburg",
                                                      "add_tags": ["city"]})
        assert changed.status_code == 200
        assert changed.json()["content"] == "I moved to Hamburg"
        assert changed.json()["tags"] == ["home", "city"]
        history = api.get(f"/memories/{mid}/history").json()
        assert [e["type"] for e in history] == ["memory.added", "memory.updated", "memory.tagged"]

        listed = api.get("/memories", params={"user_id": "alice", "tag": "city"}).json()
        assert [m["id"] for m in listed] == [mid]
        assert api.get("/memories", params={"user_id": "alice", "tag": "work"}).json() == []
        assert api.get("/memories", params={"user_id": "alice",
                                            "since": "2026-10-01"}).json() == []

        assert api.delete(f"/memories/{mid}", params={"reason": "moved"}).status_code == 204
        gone = api.get(f"/memories/{mid}")
        assert gone.status_code == 404 and error_of(gone)["field"] == "id"
        assert api.delete(f"/memories/{mid}").status_code == 404

    def test_search_explains_scores_and_stays_in_its_user(self, api: httpx.Client) -> None:
        api.post("/memories", json={"text": "Alice adopted a puppy named Oscar",
                                    "user_id": "alice"})
        api.post("/memories", json={"text": "Bob adopted a puppy named Rex", "user_id": "bob"})
        hits = api.post("/search", json={"query": "puppy", "user_id": "alice",
                                         "explain": True}).json()
        assert [h["memory"]["user_id"] for h in hits] == ["alice"]
        assert hits[0]["components"]["keyword"] > 0
        plain = api.post("/search", json={"query": "puppy", "user_id": "alice"}).json()
        assert "components" not in plain[0]

    def test_context_reports_its_budget(self, api: httpx.Client) -> None:
        api.post("/memories", json={"text": "Alice is allergic to peanuts", "user_id": "alice"})
        got = api.post("/context", json={"query": "what is alice allergic to", "user_id": "alice",
                                         "budget_tokens": 200, "style": "markdown"}).json()
        assert "peanuts" in got["text"]
        assert 0 < got["tokens_used"] <= got["budget_tokens"] == 200
        assert len(got["memory_ids"]) == 1

    def test_turns_feedback_maintain_stats_export(self, api: httpx.Client) -> None:
        turn = api.post("/turns", json={"user_msg": "I am allergic to peanuts",
                                        "assistant_msg": "Noted.", "user_id": "alice",
                                        "session_id": "s1"})
        assert turn.status_code == 201
        body = turn.json()
        assert body["turn"]["session_id"] == "s1"
        assert any("peanut" in e["content"] for e in body["extracted"])
        target = body["extracted"][0]["id"]
        rated = api.post(f"/memories/{target}/feedback", json={"rating": "good"})
        assert rated.status_code == 200
        assert rated.json()["confidence"]["overall"] > body["extracted"][0].get(
            "confidence", {}).get("overall", 0.5)
        assert set(api.post("/maintain").json()) >= {"promoted", "expired"}
        assert api.get("/stats").json()["memories"] >= 2
        lines = api.get("/export").text.splitlines()
        assert json.loads(lines[0])["type"] == "memory.added"

    @pytest.mark.parametrize(("body", "status", "field"), [
        ({"text": "x", "memory_type": "nope"}, 422, "memory_type"),
        ({"text": "x", "bogus": 1}, 422, "bogus"),
        ({"text": "   "}, 422, "text"),
        ({}, 422, "text"),
        ({"text": "x", "confidence": 2}, 422, "confidence"),
        ({"text": "x", "at": "yesterday-ish"}, 422, "at"),
    ])
    def test_bad_input_names_the_field_and_the_fix(self, api: httpx.Client, body: dict[str, object],
                                                   status: int, field: str) -> None:
        answer = api.post("/memories", json=body)
        assert answer.status_code == status
        error = error_of(answer)
        assert error["field"] == field and error["fix"]

    def test_malformed_json_is_400(self, api: httpx.Client) -> None:
        answer = api.post("/search", content=b"{not json",
                          headers={"content-type": "application/json"})
        assert answer.status_code == 400 and error_of(answer)["field"] == "body"

    def test_bodies_over_the_limit_get_413(self, api: httpx.Client) -> None:
        big = {"text": "x" * (70 * 1024)}
        answer = api.post("/memories", json=big)
        assert answer.status_code == 413 and "--max-body" in error_of(answer)["fix"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
            yield b'{"text": "'
            for _ in range(80):
                yield b"y" * 1024
            yield b'"}'

        chunked = api.post("/memories", content=chunks(),
                           headers={"content-type": "application/json"})
        assert chunked.status_code == 413
        assert api.get("/memories").json() == []  # nothing half-written
