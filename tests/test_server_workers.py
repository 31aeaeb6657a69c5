"""`engram serve --workers N` on one PostgreSQL store with Redis (Debian's redis-server,
started here), as real processes over real HTTP: a session's window written through one
worker is never read stale through another (the shared cache is invalidated on write), the
per-key rate limit counts across workers, /metrics sums every worker, and no write is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from engram.memory import Memory
from engram.server.keys import KeyRing
from serving import engram_serve, needs_redis, redis_server
from store_contract import databases

pytestmark = needs_redis


@pytest.fixture
def store(postgres_admin_url: str) -> Iterator[tuple[str, str, str]]:
    """A PostgreSQL store with a read/write key and a metrics key."""
    with databases(postgres_admin_url) as new:
        url = str(new())
        with Memory(url, embedder=None) as mem:
            ring, now = KeyRing(mem.store), mem.clock.now()
            writer = ring.create("alice", "read,write", now=now)[0]
            scraper = ring.create("prometheus", "metrics", now=now)[0]
        yield url, writer, scraper


def test_workers_share_the_cache_the_limits_and_the_counts(
        store: tuple[str, str, str], tmp_path: Path) -> None:
    data, writer, scraper = store
    auth = {"Authorization": f"Bearer {writer}"}
    with redis_server(tmp_path) as redis, engram_serve(
            data, "--workers", "2", "--redis", redis.url, "--rate-limit", "40") as url:
        for n in range(12):  # a new connection each time: the kernel spreads them
            for _ in range(2):  # n turns written so far, whichever worker answers
                window = httpx.get(f"{url}/sessions/chat", headers=auth).json()["turns"]
                assert len([t for t in window if t["role"] == "user"]) == n
            made = httpx.post(f"{url}/turns", headers=auth, json={
                "user_msg": f"message {n}", "assistant_msg": "ok", "session_id": "chat"})
            assert made.status_code == 201
        # 36 requests so far; 45 more and one after them cannot all pass in one window. On a
        # slow machine a burst may straddle a minute's turn (fixed windows): then the next
        # burst, in a fresh window, must be limited.
        for _ in range(3):
            codes = [httpx.get(f"{url}/sessions/chat", headers=auth).status_code
                     for _ in range(45)]
            limited = httpx.get(f"{url}/memories", headers=auth)
            if limited.status_code == 429:
                break
        assert 429 in codes
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        scraped = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {scraper}"})
        counted = {(s.name, s.labels.get("route"), s.labels.get("status")): s.value
                   for f in text_string_to_metric_families(scraped.text) for s in f.samples}
        assert counted[("engram_http_requests_total", "/turns", "201")] == 12
    with Memory(data, embedder=None) as mem:
        recorded = mem.conversation("chat", user_id="alice")
    assert [t["content"] for t in recorded if t["role"] == "user"] == [
        f"message {n}" for n in range(12)]
