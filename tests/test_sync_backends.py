"""A SQLite laptop and a server store (SQLite, and PostgreSQL) sync by bundles both ways, with
concurrent edits, a forget and a per-user bundle, and end with the same memories and chains."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engram import ManualClock, Memory
from engram.store.migrate import checksum

pytestmark = pytest.mark.all_backends


def test_sqlite_and_the_server_store_converge(store_dir: str | Path, tmp_path: Path) -> None:
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    with Memory(tmp_path / "laptop", clock=ManualClock(start), device_id="laptop",
                embedder=None) as laptop, \
            Memory(store_dir, clock=ManualClock(start + timedelta(hours=2)),
                   device_id="server", embedder=None) as server:
        shared = laptop.add("alice keeps bees", user_id="alice", session_id="s")
        doomed = laptop.add("alice's pin is 4321", user_id="alice", session_id="s")
        server.add("bob brews beer", user_id="bob")
        server.sync_import(_bundle(laptop, tmp_path / "1", "server"))
        laptop.sync_import(_bundle(server, tmp_path / "2", "laptop"))
        server.update(shared.id, text="alice keeps two hives of bees")  # later by the clock
        server.tag(shared.id, add=["hobby"])
        laptop.update(shared.id, text="alice keeps bees in Lisbon")
        laptop.forget(doomed.id)
        server.sync_import(_bundle(laptop, tmp_path / "3", "server"))
        laptop.sync_import(_bundle(server, tmp_path / "4", "laptop"))
        assert checksum(laptop.store) == checksum(server.store)
        got = server.get(shared.id)
        assert got.text == "alice keeps two hives of bees" and got.tags == ("hobby",)
        assert server.store.get(doomed.id) is None
        assert all(e.redacted for e in server.store.history(doomed.id)[:-1])
        assert laptop.verify().ok and server.verify().ok
        server.add("alice's second hive", user_id="alice")
        scoped = tmp_path / "alice"
        server.sync_export(scoped, peer="laptop", user="alice")
        assert laptop.sync_import(scoped).new == 1 and laptop.verify().ok


def _bundle(mem: Memory, path: Path, peer: str) -> Path:
    mem.sync_export(path, peer=peer)
    return path


def test_a_sqlite_laptop_and_a_served_store_converge_over_http(store_dir: str | Path,
                                                                tmp_path: Path) -> None:
    """`engram serve` on the server store (SQLite, or PostgreSQL), a SQLite laptop pulling and
    pushing through `/sync/...` with a full sync key."""
    from engram.server.keys import KeyRing
    from test_sync_http import Served

    with Memory(store_dir, device_id="server", embedder=None) as server:
        kept = server.add("the server knows bob brews beer", user_id="bob", session_id="s")
        server.forget(server.add("bob's pin is 9876", user_id="bob", session_id="s").id)
        key = KeyRing(server.store).create("laptop", "sync,any-user",
                                           now=datetime(2026, 3, 1, tzinfo=UTC))[0]
    served = Served(store_dir)
    served.start()
    try:
        with Memory(tmp_path / "laptop", device_id="laptop", embedder=None) as laptop:
            laptop.add_many([{"text": f"alice note {n} on the laptop", "user_id": "alice",
                              "session_id": "a"} for n in range(12)])
            first = laptop.sync_peer(served.url, key=key, batch=5)
            assert first.pulled_new == 3 and first.pushed_new == 12
            laptop.update(kept.id, text="the server knows bob brews dark beer")
            again = laptop.sync_peer(served.url, key=key)
            assert again.pushed_new == 1 and again.pulled_new == 0
    finally:
        served.stop()
    with Memory(tmp_path / "laptop", embedder=None) as laptop, \
            Memory(store_dir, embedder=None) as server:
        assert checksum(laptop.store) == checksum(server.store)
        assert server.get(kept.id).text == "the server knows bob brews dark beer"
        assert laptop.verify().ok and server.verify().ok
