"""A write transaction on the PostgreSQL store: the primitives under `log.append.LogWrites`,
which seals, admits and folds events in the same transaction as they are stored (the store
holds the write lock for it)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import psycopg
from psycopg.rows import DictRow

from engram.embed.vectors import Vec8
from engram.log.append import LogWrites
from engram.log.chain import Head, MergeKey, Sealer
from engram.log.events import HLC, Event, EventType
from engram.model import MemoryEntry
from engram.store import rows as R
from engram.store.postgres import projection as PP
from engram.store.postgres import search as S

Conn = psycopg.Connection[DictRow]
# `log.chain.merge_key`: the text hlc sorts as HLC bytewise, whatever the database's collation.
MERGE_ORDER = 'hlc COLLATE "C", device_id COLLATE "C", seq'
_MERGE_DESC = 'hlc COLLATE "C" DESC, device_id COLLATE "C" DESC, seq DESC'


class PostgresTx(LogWrites):
    """One transaction on `conn`, which holds the store's write lock."""

    def __init__(self, conn: Conn, sealer: Sealer) -> None:
        super().__init__(sealer)
        self._conn = conn

    def get(self, memory_id: str) -> MemoryEntry | None:
        return PP.get(self._conn, memory_id)

    def find_by_hash(self, user_id: str, content_hash: str) -> MemoryEntry | None:
        row = self._conn.execute(
            "SELECT * FROM memories WHERE user_id = %s AND content_hash = %s "
            "ORDER BY status = 'active' DESC LIMIT 1", (user_id, content_hash)).fetchone()
        return PP.entry_from(row) if row else None

    def find_by_slot(self, user_id: str, slot: str) -> list[MemoryEntry]:
        rows = self._conn.execute(
            "SELECT * FROM memories WHERE user_id = %s AND slot = %s ORDER BY occurred_at, id",
            (user_id, slot)).fetchall()
        return [PP.entry_from(row) for row in rows]

    def put_embeddings(self, model: str, vectors: dict[str, Vec8]) -> None:
        S.put_embeddings(self._conn, model, vectors)

    # ------------------------------------------------------------ LogWrites primitives

    def _heads(self, devices: Iterable[str]) -> dict[str, Head]:
        heads = {}
        for device in devices:
            row = self._conn.execute("SELECT seq, hash, hlc FROM events WHERE device_id = %s "
                                     "ORDER BY seq DESC LIMIT 1", (device,)).fetchone()
            if row is not None:
                heads[device] = R.head_from(row)
        return heads

    def _known(self, event_ids: Sequence[str]) -> dict[str, str]:
        rows = self._conn.execute("SELECT id, hash FROM events WHERE id = ANY(%s)",
                                  (list(event_ids),))
        return {row["id"]: bytes(row["hash"]).hex() for row in rows}

    def _last_key(self) -> MergeKey | None:
        row = self._conn.execute("SELECT hlc, device_id, seq FROM events ORDER BY "
                                 f"{_MERGE_DESC} LIMIT 1").fetchone()
        return None if row is None else (HLC.parse(row["hlc"]), row["device_id"],
                                         int(row["seq"]))

    def get_many(self, memory_ids: Sequence[str]) -> dict[str, MemoryEntry]:
        rows = self._conn.execute("SELECT * FROM memories WHERE id = ANY(%s)",
                                  (list(memory_ids),))
        return {row["id"]: PP.entry_from(row) for row in rows}

    def _past(self, memory_ids: Sequence[str]) -> list[Event]:
        return [R.event_from(row) for row in self._conn.execute(
            f"SELECT {R.EVENT_COLUMNS} FROM events WHERE memory_id = ANY(%s)",
            (list(memory_ids),))]

    def _touching(self, memory_ids: Sequence[str]) -> list[Event]:
        rows = self._conn.execute(
            f"SELECT {R.EVENT_COLUMNS} FROM events WHERE memory_id = ANY(%s) UNION ALL "
            f"SELECT {R.EVENT_COLUMNS} FROM events WHERE type = %s",
            (list(memory_ids), EventType.ACCESSED.value))
        return [R.event_from(row) for row in rows]

    def _insert(self, events: Sequence[Event]) -> None:
        # Positions follow the last one: the store's write lock is held.
        row = self._conn.execute("SELECT COALESCE(MAX(pos), 0) AS pos FROM events").fetchone()
        last = int(row["pos"]) if row is not None else 0
        self._conn.cursor().executemany(
            f"INSERT INTO events (pos, {R.EVENT_COLUMNS}) VALUES "
            f"({', '.join(['%s'] * 13)})",
            [(last + i, *R.event_row(event)) for i, event in enumerate(events, start=1)])

    def _redact(self, event_ids: Sequence[str]) -> None:
        self._conn.execute("UPDATE events SET payload = NULL WHERE id = ANY(%s)",
                           (list(event_ids),))

    def _stubs(self, event_ids: Sequence[str]) -> set[str]:
        rows = self._conn.execute("SELECT id FROM events WHERE payload IS NULL AND "
                                  "id = ANY(%s)", (list(event_ids),))
        return {row["id"] for row in rows}

    def _fill(self, event: Event) -> None:
        self._conn.execute("UPDATE events SET payload = %s WHERE id = %s",
                           (R.payload_text(event), event.id))

    def _write(self, old: MemoryEntry | None, new: MemoryEntry | None) -> None:
        PP.write(self._conn, old, new)

    def _write_many(self, changes: Sequence[tuple[MemoryEntry | None, MemoryEntry | None]]
                    ) -> None:
        PP.write_many(self._conn, changes)

    def _drop_vectors(self, content_hashes: Sequence[str]) -> None:
        self._conn.execute(
            "DELETE FROM embeddings e WHERE e.content_hash = ANY(%s) AND NOT EXISTS "
            "(SELECT 1 FROM memories m WHERE m.content_hash = e.content_hash)",
            (list(content_hashes),))
