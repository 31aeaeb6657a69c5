"""A write transaction on the SQLite store: events sealed into the chain and folded into the
projections in the same transaction as they are stored."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from engram.embed.vectors import Vec8, to_blob
from engram.log import chain
from engram.log.events import Draft, Event, EventType
from engram.log.projection import apply, targets
from engram.model import MemoryEntry
from engram.store import rows as R
from engram.store.sqlite import projection as P

if TYPE_CHECKING:
    from engram.store.sqlite.store import SQLiteStore


class SQLiteTx:
    """One IMMEDIATE transaction: reads see its own writes."""

    def __init__(self, store: SQLiteStore, conn: sqlite3.Connection) -> None:
        self._store, self._conn = store, conn

    def get(self, memory_id: str) -> MemoryEntry | None:
        return P.get(self._conn, memory_id)

    def find_by_hash(self, user_id: str, content_hash: str) -> MemoryEntry | None:
        row = self._conn.execute(
            "SELECT * FROM memories WHERE user_id = ? AND content_hash = ? "
            "ORDER BY status = 'active' DESC LIMIT 1", (user_id, content_hash)).fetchone()
        return R.entry_from(row) if row else None

    def find_by_slot(self, user_id: str, slot: str) -> list[MemoryEntry]:
        rows = self._conn.execute(
            # The planner would rather walk the user's whole scope in time order.
            "SELECT * FROM memories INDEXED BY memories_by_slot WHERE user_id = ? AND slot = ? "
            "ORDER BY occurred_at, id",
            (user_id, slot))
        return [R.entry_from(row) for row in rows]

    def put_embeddings(self, model: str, vectors: dict[str, Vec8]) -> None:
        self._conn.executemany(
            "INSERT OR IGNORE INTO embeddings (model, content_hash, vec) VALUES (?, ?, ?)",
            [(model, h, to_blob(v)) for h, v in vectors.items()])

    def append(self, draft: Draft) -> Event:
        store, c = self._store, self._conn
        head = c.execute("SELECT hash, hlc FROM events ORDER BY pos DESC LIMIT 1").fetchone()
        seq = c.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE device_id = ?",
                        (store.device_id,)).fetchone()[0]
        event = chain.next_event(draft, device_id=store.device_id, seq=seq,
                                 now_ms=int(store.clock.now().timestamp() * 1000),
                                 clock=store._hlc, head_hlc=head["hlc"] if head else None,
                                 head_hash=head["hash"] if head else None)
        self._insert(event)
        store._hlc = event.hlc
        return event

    def import_events(self, events: list[Event]) -> int:
        c = self._conn
        added = 0
        for number, event in enumerate(events, start=1):
            known = c.execute("SELECT hash FROM events WHERE id = ?", (event.id,)).fetchone()
            head = c.execute("SELECT hash FROM events ORDER BY pos DESC LIMIT 1").fetchone()
            if chain.admit(number, event, stored_hash=known[0] if known else None,
                           head_hash=head[0] if head else None):
                self._insert(event)
                added += 1
        return added

    def _insert(self, event: Event) -> None:
        c = self._conn
        c.execute(
            f"INSERT INTO events ({R.EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            R.event_row(event))
        if event.type is EventType.ACCESSED:  # hundreds of memories at once: columns only
            assert event.payload is not None
            P.note_accesses(c, event.payload["accesses"])
            return
        for memory_id in targets(event):
            current = P.get(c, memory_id)
            P.write(c, current, apply(current, event, memory_id))
            if event.type is EventType.FORGOTTEN and current is not None:
                # A vector can leak its text: the vectors of every text the memory ever had
                # go with it, unless another memory still has that text.
                for content in {current.content_hash, *_past_hashes(c, memory_id)}:
                    c.execute("DELETE FROM embeddings WHERE content_hash = ? AND NOT EXISTS "
                              "(SELECT 1 FROM memories WHERE content_hash = ?)",
                              (content, content))
        if event.type is EventType.FORGOTTEN:
            c.execute("UPDATE events SET payload = NULL WHERE memory_id = ? AND id != ?",
                      (event.memory_id, event.id))


def _past_hashes(c: sqlite3.Connection, memory_id: str) -> set[str]:
    """Content hashes a memory had, from its (not yet redacted) added and updated events."""
    found: set[str] = set()
    for (payload,) in c.execute(
            "SELECT payload FROM events WHERE memory_id = ? AND type IN (?, ?) AND payload "
            "IS NOT NULL", (memory_id, EventType.ADDED.value, EventType.UPDATED.value)):
        data = json.loads(payload)
        content = data.get("memory", data.get("changes", {})).get("content_hash")
        if content:
            found.add(content)
    return found
