"""Schema upgrades are code; a store from a newer Engram is refused with the fix."""

import json
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from engram import ManualClock, Memory, StoreError
from engram.log.events import GENESIS_HASH, Event, event_hash
from engram.store import rows as R
from engram.store.postgres.schema import MIGRATIONS as PG_MIGRATIONS
from engram.store.sqlite.schema import MIGRATIONS

pytestmark = pytest.mark.all_backends


@pytest.mark.sqlite_only("reads the SQLite file's user_version and journal mode")
def test_new_store_is_at_the_latest_schema(store_dir: Path) -> None:
    Memory(store_dir).close()
    with sqlite3.connect(store_dir / "engram.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.sqlite_only("compares the SQLite file's bytes (test_postgres.py has its own)")
def test_store_from_a_newer_version_is_refused_untouched(store_dir: Path) -> None:
    with Memory(store_dir) as mem:
        mem.add("keep me", user_id="u")
    with sqlite3.connect(store_dir / "engram.db") as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    before = (store_dir / "engram.db").read_bytes()
    with pytest.raises(StoreError, match=r"newer Engram.*upgrade engram-memory"):
        Memory(store_dir)
    assert (store_dir / "engram.db").read_bytes() == before


def test_device_id_is_stable_across_opens(store_dir: Path) -> None:
    with Memory(store_dir) as mem:
        first = mem.store.device_id
    with Memory(store_dir, device_id="ignored-once-set") as mem:
        assert mem.store.device_id == first


@pytest.mark.sqlite_only("rewrites the FTS5 table (test_postgres.py has its own)")
def test_a_changed_projection_layout_is_rebuilt_on_open(store_dir: Path) -> None:
    with Memory(store_dir) as mem:
        kept = mem.add("the keyword index is derived data", user_id="u", session_id="s")
    with sqlite3.connect(store_dir / "engram.db") as db:  # as an older Engram left it
        db.execute("DROP TABLE memories_fts")
        db.execute("CREATE VIRTUAL TABLE memories_fts USING fts5(content)")
        db.execute("UPDATE meta SET value = 'old-layout' WHERE key = 'projection_layout'")
    with Memory(store_dir) as mem:
        assert [h.memory.id for h in mem.search("derived", user_id="u")] == [kept.id]
        mem.add("and writes work again", user_id="u", session_id="s")


def _as_legacy(events: list[Event]) -> list[Event]:
    """These events as Engram 0.1 kept them: schema 1, one chain through the whole store."""
    out, prev = [], GENESIS_HASH
    for event in events:
        old = replace(event, schema=1, prev_hash=prev)
        out.append(replace(old, hash=event_hash(old)))
        prev = out[-1].hash
    return out


def _write_legacy_store(location: str | Path, backend: str, raw_sql: Callable[..., None],
                        events: list[Event]) -> None:
    """Put `events` in the store at `location` as its whole log, and mark the store as one
    the previous release left (before the per-device migration, projections to replay)."""
    for pos, event in enumerate(events, start=1):
        raw_sql(location, f"INSERT INTO events (pos, {R.EVENT_COLUMNS}) VALUES "
                          f"({', '.join('?' * 13)})", (pos, *R.event_row(event)))
    raw_sql(location, "DELETE FROM meta WHERE key = 'projection_layout'")
    if backend == "sqlite":
        raw_sql(location, f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    else:
        raw_sql(location, "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                (str(len(PG_MIGRATIONS) - 1),))


def _two_devices_legacy_log(new_store: Callable[[], Path],
                            clock: ManualClock) -> tuple[list[Event], list[Event]]:
    """A peer's events, then the home device's, as one legacy chain (an old import)."""
    with Memory(new_store(), clock=clock, device_id="dev-peer", embedder=None) as peer:
        kite = peer.add("the peer flies kites on sundays", user_id="u", session_id="s")
        peer.tag(kite.id, add=["peer"])
        peer_events = list(peer.events())
    clock.advance(timedelta(hours=1))
    with Memory(new_store(), clock=clock, device_id="dev-home", embedder=None) as home:
        home.add("tea at five at home", user_id="u", session_id="s")
        home.add("home has a red door", user_id="u")
        home_events = list(home.events())
    return peer_events, home_events


def test_a_legacy_log_of_two_devices_is_resealed_on_open(
        new_store: Callable[[], Path], backend: str, raw_sql: Callable[..., None],
        clock: ManualClock) -> None:
    peer_events, home_events = _two_devices_legacy_log(new_store, clock)
    legacy = _as_legacy(peer_events + home_events)
    location = new_store()
    Memory(location, clock=clock, device_id="dev-home", embedder=None).close()
    _write_legacy_store(location, backend, raw_sql, legacy)
    with Memory(location, clock=clock, embedder=None) as mem:
        report = mem.verify()
        assert report.ok and report.checked == len(legacy) and report.devices == 2
        events = {e.id: e for e in mem.events()}
        peer_first = events[peer_events[0].id]
        home_first = events[home_events[0].id]
        # the peer's chain was already its own; the home device's is re-sealed onto genesis
        assert peer_first.hash == legacy[0].hash and peer_first.schema == 1
        assert home_first.prev_hash == GENESIS_HASH and home_first.schema == 2
        assert {e.id for e in events.values() if e.hash != legacy[[x.id for x in legacy]
                                                                 .index(e.id)].hash} == \
            {e.id for e in home_events}
        assert [h.memory.text for h in mem.search("kites", user_id="u")] == \
            ["the peer flies kites on sundays"]
        fresh = mem.add("written after the upgrade", user_id="u")
        last = mem.history(fresh.id)[-1]
        assert last.device_id == "dev-home" and last.seq == len(home_events) + 1
        assert last.prev_hash == events[home_events[-1].id].hash
        assert mem.verify().ok


def test_a_broken_legacy_log_is_not_resealed_and_verify_names_it(
        new_store: Callable[[], Path], backend: str, raw_sql: Callable[..., None],
        clock: ManualClock) -> None:
    peer_events, home_events = _two_devices_legacy_log(new_store, clock)
    legacy = _as_legacy(peer_events + home_events)
    tampered = legacy[1].stored_payload
    assert tampered is not None
    legacy[1] = replace(legacy[1], payload={**tampered, "add": ["forged"]})
    location = new_store()
    Memory(location, clock=clock, device_id="dev-home", embedder=None).close()
    _write_legacy_store(location, backend, raw_sql, legacy)
    with Memory(location, clock=clock, embedder=None) as mem:
        report = mem.verify()
    # nothing was re-sealed: the home device's first event still links to the peer's last
    assert not report.ok and report.event_id == legacy[len(peer_events)].id
    assert report.device_id == "dev-home" and "prev_hash" in (report.problem or "")
    walk = json.loads(_meta(location, backend, "legacy_chain"))
    assert walk["resealed"] == 0 and walk["events"] == 1
    assert f"event #2 ({legacy[1].id}): payload was altered" in walk["problem"]


def _meta(location: str | Path, backend: str, key: str) -> str:
    if backend == "sqlite":
        with sqlite3.connect(Path(location) / "engram.db") as db:
            return str(db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])
    import psycopg

    with psycopg.connect(str(location)) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
    assert row is not None
    return str(row[0])
