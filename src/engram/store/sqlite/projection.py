"""The SQLite projection: rows of `memories`, the keyword index kept in step with them, and
Filters as SQL. Both live writes and `rebuild` go through these functions."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from engram.model import MemoryEntry, format_time, parse_time
from engram.query import Filters
from engram.store import sql_filters
from engram.store.keyword_layout import INDEX_COLUMNS, NEIGHBOURS, index_keys
from engram.store.rows import ROW_COLUMNS, entry_from, index_changes, row_of


def write(c: sqlite3.Connection, old: MemoryEntry | None, new: MemoryEntry | None) -> None:
    """Replace one memory's row (None: absent) with its keyword index (`write_many`)."""
    write_many(c, [(old, new)])


def write_many(c: sqlite3.Connection,
               changes: Sequence[tuple[MemoryEntry | None, MemoryEntry | None]]) -> None:
    """Replace memories' rows, each `(old, new)` of a different memory, and re-index once
    every row whose keyword-index columns they feed: themselves and their neighbours in
    their sessions. Which rows those are is read before anything changes: a row within
    NEIGHBOURS of a changed memory's old or new place then (new rows only push older ones
    out of a window), so each is unindexed with the values it was indexed with, and indexed
    again once, from the final rows."""
    c.executemany(UPSERT, [row_of(new) for old, new in changes
                           if new is not None and not index_changes(old, new)])
    moving = [(old, new) for old, new in changes
              if (old is not None or new is not None) and index_changes(old, new)]
    if not moving:
        return
    affected: set[int] = set()
    for old, new in moving:
        for entry in (old, new):
            if entry is not None:
                affected |= _window(c, entry)
    for rowid in affected:
        _unindex(c, rowid)
    c.executemany("DELETE FROM memories WHERE id = ?",
                  [(old.id,) for old, new in moving if new is None and old is not None])
    stored = [new for _, new in moving if new is not None]
    c.executemany(UPSERT, [row_of(new) for new in stored])
    for start in range(0, len(stored), 500):
        ids = [new.id for new in stored[start:start + 500]]
        affected.update(r[0] for r in c.execute(
            f"SELECT rowid FROM memories WHERE id IN ({', '.join('?' * len(ids))})", ids))
    for rowid in sorted(affected):
        keys = _keys(c, rowid)
        if keys is not None:
            _index(c, rowid, keys)


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








def get(conn: sqlite3.Connection, memory_id: str) -> MemoryEntry | None:
    row = conn.execute("SELECT * FROM memories WHERE id = ?", (memory_id,)).fetchone()
    return entry_from(row) if row else None






def where(f: Filters) -> tuple[str, list[Any]]:
    """SQL conditions on alias `m` for a Filters, applied inside every candidate query."""
    return sql_filters.where(f, sql_filters.SQLITE)
