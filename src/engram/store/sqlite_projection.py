"""The SQLite projection: rows of `memories`, the keyword index kept in step with them, and
Filters as SQL. Both live writes and `rebuild` go through these functions."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from engram.events import Event, canonical_json
from engram.model import MemoryEntry, Tier, format_time, parse_time
from engram.recall import INDEX_COLUMNS, NEIGHBOURS, Brief, index_keys
from engram.store import sql_filters
from engram.store.base import Filters

# Columns of `memories` besides `doc`, which holds the rest of the entry as JSON.
_COLUMNS = ("id", "user_id", "agent_id", "session_id", "content", "content_hash", "tier",
            "memory_type", "occurred_at", "created_at", "tags", "access_count", "status",
            "sensitive", "slot")
# Every column `row_of` fills, in its order: the entry's columns, then what ranking reads
# besides them (confidence; when the memory was last seen: changed, confirmed or recalled).
ROW_COLUMNS = (*_COLUMNS, "confidence", "last_seen", "doc")
# What ranking reads of a candidate (recall.Brief), straight from columns.
BRIEF = ("m.id, m.user_id, m.session_id, m.occurred_at, m.tier, m.confidence, "
         "m.access_count, m.last_seen")


def write(c: sqlite3.Connection, old: MemoryEntry | None, new: MemoryEntry | None) -> None:
    """Replace one memory's row and re-index every row whose keyword-index columns it feeds:
    itself and its neighbours in its session, before and after the change."""
    if old is None and new is None:
        return
    if not index_changes(old, new):
        assert new is not None
        c.execute(UPSERT, row_of(new))
        return
    affected: set[int] = set()
    for entry in (old, new):
        if entry is not None:
            affected |= _window(c, entry)
    for rowid in affected:
        _unindex(c, rowid)
    if new is None:
        assert old is not None
        c.execute("DELETE FROM memories WHERE id = ?", (old.id,))
    else:
        c.execute(UPSERT, row_of(new))
        affected.add(c.execute("SELECT rowid FROM memories WHERE id = ?",
                               (new.id,)).fetchone()[0])
    for rowid in affected:
        keys = _keys(c, rowid)
        if keys is not None:
            _index(c, rowid, keys)


def index_changes(old: MemoryEntry | None, new: MemoryEntry | None) -> bool:
    """Whether the keyword index sees a difference: what `index_keys` reads of a memory and
    of its place among its session's neighbours."""
    if old is None or new is None:
        return True
    return (old.content, old.occurred_at, old.session_id, old.slot) != \
        (new.content, new.occurred_at, new.session_id, new.slot)


def _window(c: sqlite3.Connection, entry: MemoryEntry) -> set[int]:
    """Rowids of the memory (if stored) and of the NEIGHBOURS on each side of its place."""
    own = c.execute("SELECT rowid FROM memories WHERE id = ?", (entry.id,)).fetchone()
    rowids = {own[0]} if own else set()
    if entry.session_id is None:
        return rowids
    key = (entry.user_id, entry.session_id, format_time(entry.occurred_at), entry.id)
    for op, order in (("<", "DESC"), (">", "ASC")):
        rows = c.execute(
            "SELECT rowid FROM memories WHERE user_id = ? AND session_id = ? AND "
            f"(occurred_at, id) {op} (?, ?) ORDER BY occurred_at {order}, id {order} LIMIT ?",
            (*key, NEIGHBOURS))
        rowids |= {r[0] for r in rows}
    return rowids


def _keys(c: sqlite3.Connection, rowid: int) -> tuple[str, ...] | None:
    """The keyword-index columns of the stored memory `rowid`, or None if there is none."""
    row = c.execute("SELECT id, user_id, session_id, content, occurred_at, slot FROM memories "
                    "WHERE rowid = ?", (rowid,)).fetchone()
    if row is None:
        return None
    sides: list[list[str]] = [[], []]
    if row["session_id"] is not None:
        for side, (op, order) in enumerate((("<", "DESC"), (">", "ASC"))):
            sides[side] = [r[0] for r in c.execute(
                "SELECT content FROM memories WHERE user_id = ? AND session_id = ? AND "
                f"(occurred_at, id) {op} (?, ?) ORDER BY occurred_at {order}, id {order} "
                "LIMIT ?", (row["user_id"], row["session_id"], row["occurred_at"], row["id"],
                            NEIGHBOURS))]
    return index_keys(row["content"], parse_time(row["occurred_at"], "occurred_at"), sides[0],
                      sides[1], slot=row["slot"])


def _index(c: sqlite3.Connection, rowid: int, keys: tuple[str, ...]) -> None:
    c.execute(f"INSERT INTO memories_fts (rowid, {', '.join(INDEX_COLUMNS)}) VALUES "
              f"(?, {', '.join('?' * len(INDEX_COLUMNS))})", (rowid, *keys))


def _unindex(c: sqlite3.Connection, rowid: int) -> None:
    """Remove a row from the contentless index: FTS5 needs the exact values it indexed."""
    keys = _keys(c, rowid)
    if keys is not None:
        c.execute(f"INSERT INTO memories_fts (memories_fts, rowid, {', '.join(INDEX_COLUMNS)}) "
                  f"VALUES ('delete', ?, {', '.join('?' * len(INDEX_COLUMNS))})", (rowid, *keys))


def index_all(c: sqlite3.Connection) -> None:
    """Index every stored memory (after `rebuild` recreated the empty index)."""
    for (rowid,) in c.execute("SELECT rowid FROM memories").fetchall():
        keys = _keys(c, rowid)
        assert keys is not None
        _index(c, rowid, keys)


def note_accesses(c: sqlite3.Connection, accesses: dict[str, list[Any]]) -> None:
    """`projection.apply` of a `memory.accessed` event, as one UPDATE per memory instead of
    a read, a fold and a rewrite of the row: the count grows, the last access is the later
    one (times are fixed-width UTC text, so text order is time order). The rebuild
    property test holds this equal to the fold."""
    c.executemany(
        "UPDATE memories SET access_count = access_count + :count, doc = json_set(doc, "
        "'$.last_accessed', max(coalesce(json_extract(doc, '$.last_accessed'), ''), :last)), "
        "last_seen = max(coalesce(last_seen, ''), :last) WHERE id = :id",
        [{"count": count, "last": last, "id": memory_id}
         for memory_id, (count, last) in accesses.items()])


# ---------------------------------------------------------------- row mapping

UPSERT = (
    f"INSERT INTO memories ({', '.join(ROW_COLUMNS)}) VALUES "
    f"({', '.join('?' * len(ROW_COLUMNS))}) ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"{col} = excluded.{col}" for col in ROW_COLUMNS[1:])
)


def row_of(entry: MemoryEntry) -> tuple[Any, ...]:
    data = entry.to_dict()
    cols = [data.pop(col, None) for col in _COLUMNS]
    cols[2] = cols[2] if cols[2] else None
    cols[_COLUMNS.index("tier")] = entry.tier.value
    cols[_COLUMNS.index("memory_type")] = entry.memory_type.value
    cols[_COLUMNS.index("tags")] = json.dumps(list(entry.tags), ensure_ascii=False)
    cols[_COLUMNS.index("access_count")] = entry.access_count
    cols[_COLUMNS.index("status")] = entry.status.value
    cols[_COLUMNS.index("sensitive")] = int(entry.sensitive)
    seen = max(entry.updated_at, entry.last_accessed or entry.updated_at)
    return (*cols, entry.confidence.overall, format_time(seen),
            json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def brief_from(row: sqlite3.Row) -> Brief:
    return Brief(row["id"], row["user_id"], row["session_id"],
                 datetime.fromisoformat(row["occurred_at"]), Tier(row["tier"]),
                 row["confidence"], row["access_count"],
                 datetime.fromisoformat(row["last_seen"]) if row["last_seen"] else None)


def entry_from(row: sqlite3.Row) -> MemoryEntry:
    data: dict[str, Any] = json.loads(row["doc"])
    for col in _COLUMNS:
        if row[col] is not None:
            data[col] = row[col]
    data["tags"] = json.loads(row["tags"])
    data["sensitive"] = bool(row["sensitive"])
    return MemoryEntry.from_dict(data)


def get(conn: sqlite3.Connection, memory_id: str) -> MemoryEntry | None:
    row = conn.execute("SELECT * FROM memories WHERE id = ?", (memory_id,)).fetchone()
    return entry_from(row) if row else None


def event_row(event: Event) -> tuple[Any, ...]:
    """The values of an `events` row (the columns `event_from` reads), in that order."""
    return (event.id, event.type.value, event.schema, event.device_id, event.seq,
            str(event.hlc), event.actor, event.memory_id,
            None if event.payload is None else canonical_json(event.payload),
            bytes.fromhex(event.payload_hash), bytes.fromhex(event.prev_hash),
            bytes.fromhex(event.hash))


def event_from(row: sqlite3.Row) -> Event:
    return Event.from_dict({
        **{k: row[k] for k in ("id", "type", "schema", "device_id", "seq", "hlc", "actor",
                               "memory_id")},
        "payload": None if row["payload"] is None else json.loads(row["payload"]),
        "payload_hash": bytes(row["payload_hash"]).hex(),
        "prev_hash": bytes(row["prev_hash"]).hex(),
        "hash": bytes(row["hash"]).hex(),
    })


def where(f: Filters) -> tuple[str, list[Any]]:
    """SQL conditions on alias `m` for a Filters, applied inside every candidate query."""
    return sql_filters.where(f, sql_filters.SQLITE)
