"""What an operator asks of the server, over real HTTP: /healthz, /readyz (the store, Redis
and the upstream, each named when it fails), /metrics in Prometheus' format (parsed with the
official client's parser) behind the `metrics` scope, and per-key rate limits (429 with
Retry-After)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engram.llm.openai_double import OpenAIDouble
from engram.memory import Memory
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.keys import KeyRing
from engram.server.service import ServerConfig
from engram.sync import peers


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    mem = Memory(tmp_path / "store", embedder=None)
    ring, now = KeyRing(mem.store), mem.clock.now()
    tokens = {"alice": ring.create("alice", "read,write", now=now)[0],
              "scraper": ring.create("prometheus", "metrics", now=now)[0],
              "admin": ring.create("ops", "read,write,admin", now=now)[0]}
    mem.add("Alice lives in Lisbon", user_id="alice")
    peers.add(mem.store, "laptop", "http://laptop.lan:8765")
    with OpenAIDouble() as upstream, serving(create_app(ServerConfig(
            data=tmp_path / "store", upstream=upstream.base_url, rate_limit=1000), mem)) as url:
        yield url, tokens


def test_probes_need_no_key(keyed: tuple[str, dict[str, str]]) -> None:
    url, _ = keyed
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": "ok", "upstream": "ok"}


def test_readyz_names_what_is_down(tmp_path: Path) -> None:
    for config, field in (
            (ServerConfig(data=tmp_path / "store",
                          redis=f"redis://127.0.0.1:{closed_port()}/0"), "redis"),
            (ServerConfig(data=tmp_path / "store",
                          upstream=f"http://127.0.0.1:{closed_port()}/v1"), "upstream")):
        with serving(create_app(config, Memory(tmp_path / "store", embedder=None))) as url:
            ready = httpx.get(f"{url}/readyz")
            assert ready.status_code == 503 and ready.json()["error"]["field"] == field
            assert httpx.get(f"{url}/healthz").status_code == 200


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_behind_their_scope(keyed: tuple[str, dict[str, str]]) -> None:
    url, tokens = keyed
    alice = {"Authorization": f"Bearer {tokens['alice']}"}
    assert httpx.get(f"{url}/metrics").status_code == 401
    assert httpx.get(f"{url}/metrics", headers=alice).status_code == 403
    for _ in range(3):
        assert httpx.post(f"{url}/search", json={"query": "Lisbon"}, headers=alice
                          ).status_code == 200
    chat = httpx.post(f"{url}/v1/chat/completions", headers=alice, timeout=30, json={
        "model": "double-1", "messages": [{"role": "user", "content": "hello"}]})
    assert chat.status_code == 200
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    assert httpx.post(f"{url}/maintain", headers=admin).status_code == 200
    scraped = httpx.get(f"{url}/metrics",
                        headers={"Authorization": f"Bearer {tokens['scraper']}"})
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith(
        "text/plain")
    got = samples(scraped.text)
    searched = ("engram_http_requests_total", frozenset(
        {("method", "POST"), ("route", "/search"), ("status", "200")}))
    assert got[searched] >= 3
    assert ("engram_http_request_duration_seconds_count",
            frozenset({("method", "POST"), ("route", "/search")})) in got
    assert got[("engram_upstream_duration_seconds_count", frozenset())] >= 1
    assert got[("engram_maintenance_runs_total", frozenset({("trigger", "request")}))] >= 1
    assert got[("engram_memories", frozenset({("tier", "short_term")}))] >= 1
    assert got[("engram_events", frozenset())] >= 1
    assert got[("engram_sync_lag_events", frozenset({("peer", "laptop")}))] >= 1
    assert "Lisbon" not in scraped.text  # counts, never content


def test_rate_limits_per_key(tmp_path: Path) -> None:
    mem = Memory(tmp_path / "store", embedder=None)
    ring, now = KeyRing(mem.store), mem.clock.now()
    alice, bob = (ring.create(u, "read", now=now)[0] for u in ("alice", "bob"))
    with serving(create_app(ServerConfig(data=tmp_path / "store", rate_limit=5), mem)) as url:
        def get(token: str) -> httpx.Response:
            return httpx.get(f"{url}/memories", headers={"Authorization": f"Bearer {token}"})

        assert [get(alice).status_code for _ in range(5)] == [200] * 5
        refused = get(alice)
        assert refused.status_code == 429 and refused.json()["error"]["field"] == "rate"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert get(bob).status_code == 200  # another key has its own count
