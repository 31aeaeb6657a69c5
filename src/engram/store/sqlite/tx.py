"""A write transaction on the SQLite store: the primitives under `log.append.LogWrites`, which
seals, admits and folds events in the same transaction as they are stored."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from engram.embed.vectors import Vec8, to_blob
from engram.log.append import LogWrites
from engram.log.chain import Head, MergeKey, Sealer
from engram.log.events import HLC, Event, EventType
from engram.model import MemoryEntry
from engram.store import rows as R
from engram.store.sqlite import projection as P

CHUNK = 500  # ids per IN (...) list
MERGE_ORDER = "hlc, device_id, seq"  # `log.chain.merge_key` (text hlc sorts as HLC)


class SQLiteTx(LogWrites):
    """One IMMEDIATE transaction on `conn`: reads see its own writes."""

    def __init__(self, conn: sqlite3.Connection, sealer: Sealer) -> None:
        super().__init__(sealer)
        self._conn = conn

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

    # ------------------------------------------------------------ LogWrites primitives

    def _heads(self, devices: Iterable[str]) -> dict[str, Head]:
        heads = {}
        for device in devices:
            row = self._conn.execute("SELECT seq, hash, hlc FROM events WHERE device_id = ? "
                                     "ORDER BY seq DESC LIMIT 1", (device,)).fetchone()
            if row is not None:
                heads[device] = R.head_from(row)
        return heads

    def _known(self, event_ids: Sequence[str]) -> dict[str, str]:
        return {row[0]: bytes(row[1]).hex() for chunk in _chunks(event_ids)
                for row in self._conn.execute(
                    f"SELECT id, hash FROM events WHERE id IN ({', '.join('?' * len(chunk))})",
                    chunk)}

    def _last_key(self) -> MergeKey | None:
        row = self._conn.execute("SELECT hlc, device_id, seq FROM events ORDER BY hlc DESC, "
                                 "device_id DESC, seq DESC LIMIT 1").fetchone()
        return None if row is None else (HLC.parse(row[0]), row[1], int(row[2]))

    def get_many(self, memory_ids: Sequence[str]) -> dict[str, MemoryEntry]:
        return {row["id"]: R.entry_from(row) for chunk in _chunks(memory_ids)
                for row in self._conn.execute(
                    f"SELECT * FROM memories WHERE id IN ({', '.join('?' * len(chunk))})",
                    chunk)}

    def _past(self, memory_ids: Sequence[str]) -> list[Event]:
        return [R.event_from(row) for chunk in _chunks(memory_ids)
                for row in self._conn.execute(
                    f"SELECT {R.EVENT_COLUMNS} FROM events WHERE memory_id IN "
                    f"({', '.join('?' * len(chunk))})", chunk)]

    def _touching(self, memory_ids: Sequence[str]) -> list[Event]:
        found = [R.event_from(row) for chunk in _chunks(memory_ids)
                 for row in self._conn.execute(
                     f"SELECT {R.EVENT_COLUMNS} FROM events WHERE memory_id IN "
                     f"({', '.join('?' * len(chunk))})", chunk)]
        return found + [R.event_from(row) for row in self._conn.execute(
            f"SELECT {R.EVENT_COLUMNS} FROM events WHERE type = ?",
            (EventType.ACCESSED.value,))]

    def _insert(self, events: Sequence[Event]) -> None:
        self._conn.executemany(
            f"INSERT INTO events ({R.EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            map(R.event_row, events))

    def _redact(self, event_ids: Sequence[str]) -> None:
        self._conn.executemany("UPDATE events SET payload = NULL WHERE id = ?",
                               [(event_id,) for event_id in event_ids])

    def _stubs(self, event_ids: Sequence[str]) -> set[str]:
        return {row[0] for chunk in _chunks(event_ids) for row in self._conn.execute(
            f"SELECT id FROM events WHERE payload IS NULL AND id IN "
            f"({', '.join('?' * len(chunk))})", chunk)}

    def _fill(self, event: Event) -> None:
        self._conn.execute("UPDATE events SET payload = ? WHERE id = ?",
                           (R.payload_text(event), event.id))

    def _write(self, old: MemoryEntry | None, new: MemoryEntry | None) -> None:
        P.write(self._conn, old, new)

    def _write_many(self, changes: Sequence[tuple[MemoryEntry | None, MemoryEntry | None]]
                    ) -> None:
        P.write_many(self._conn, changes)

    def _drop_vectors(self, content_hashes: Sequence[str]) -> None:
        self._conn.executemany(
            "DELETE FROM embeddings WHERE content_hash = ? AND NOT EXISTS "
            "(SELECT 1 FROM memories WHERE content_hash = ?)",
            [(h, h) for h in content_hashes])

    def _apply_accesses(self, event: Event) -> None:
        # Hundreds of memories at once: columns only (the rebuild property test holds this
        # equal to the fold).
        assert event.payload is not None
        P.note_accesses(self._conn, event.payload["accesses"])


def _chunks(values: Sequence[Any]) -> Iterable[list[Any]]:
    items = list(values)
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]
