"""The SQLite projection: rows of `memories`, the keyword index kept in step with them, and
Filters as SQL. Both live writes and `rebuild` go through these functions."""

from __future__ import annotations

import sqlite3
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from engram.model import MemoryEntry, format_time, parse_time
from engram.query import Filters
from engram.store import sql_filters
from engram.store.keyword_layout import INDEX_COLUMNS, NEIGHBOURS, index_keys
from engram.store.rows import ROW_COLUMNS, entry_from, index_changes, row_of

T = TypeVar("T")


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
    again once, from the final rows. Neighbours are read a chunk of rows a statement."""
    c.executemany(UPSERT, [row_of(new) for old, new in changes
                           if new is not None and not index_changes(old, new)])
    moving = [(old, new) for old, new in changes
              if (old is not None or new is not None) and index_changes(old, new)]
    if not moving:
        return
    affected = _windows(c, moving)
    c.executemany(UNINDEX, [(rowid, *keys) for rowid, keys in _keys(c, affected)])
    c.executemany("DELETE FROM memories WHERE id = ?",
                  [(old.id,) for old, new in moving if new is None and old is not None])
    stored = [new for _, new in moving if new is not None]
    c.executemany(UPSERT, [row_of(new) for new in stored])
    for chunk in _chunks([new.id for new in stored]):
        affected.update(r[0] for r in c.execute(
            f"SELECT rowid FROM memories WHERE id IN ({', '.join('?' * len(chunk))})", chunk))
    c.executemany(INDEX, [(rowid, *keys) for rowid, keys in _keys(c, sorted(affected))])


# A place in a session: user_id, session_id, then its order there: occurred_at (text), id.
Place = tuple[str, str, str, str]
Sides = tuple[list[sqlite3.Row], list[sqlite3.Row]]


def _neighbours(c: sqlite3.Connection, places: Sequence[Place]) -> list[Sides]:
    """For each place, the rows (rowid, content) of up to NEIGHBOURS memories before it and
    after it in its session, nearest first. The places of one session are served by one
    ordered read of the stretch they span (a batch needs a few statements, not a few per
    row), or one read each when they lie far apart in a long session."""
    by_session: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, place in enumerate(places):
        by_session[place[0], place[1]].append(i)
    found: list[Sides] = [([], [])] * len(places)
    for (user, session), members in by_session.items():
        keys = sorted(places[i][2:] for i in members)
        stretch = _stretch(c, user, session, keys[0], keys[-1], cap=8 * len(members) + 64)
        reads = [(stretch, members)] if stretch is not None else \
            [(_stretch(c, user, session, places[i][2:], places[i][2:]), [i]) for i in members]
        for rows, group in reads:
            assert rows is not None
            order = [(row["occurred_at"], row["id"]) for row in rows]
            for i in group:
                start, end = bisect_left(order, places[i][2:]), bisect_right(order, places[i][2:])
                found[i] = (rows[max(0, start - NEIGHBOURS):start][::-1],
                            rows[end:end + NEIGHBOURS])
    return found


def _stretch(c: sqlite3.Connection, user: str, session: str, first: tuple[str, str],
             last: tuple[str, str], cap: int | None = None) -> list[sqlite3.Row] | None:
    """The session's rows from NEIGHBOURS before `first` to NEIGHBOURS after `last` (places'
    (occurred_at, id)), in order; None when more than `cap` lie from `first` to `last`."""
    select = ("SELECT rowid, content, occurred_at, id FROM memories WHERE user_id = ? AND "
              "session_id = ? AND ")
    before = c.execute(select + "(occurred_at, id) < (?, ?) ORDER BY occurred_at DESC, "
                       "id DESC LIMIT ?", (user, session, *first, NEIGHBOURS)).fetchall()
    between = c.execute(select + "(occurred_at, id) >= (?, ?) AND (occurred_at, id) <= (?, ?) "
                        "ORDER BY occurred_at, id LIMIT ?",
                        (user, session, *first, *last, -1 if cap is None else cap + 1)
                        ).fetchall()
    if cap is not None and len(between) > cap:
        return None
    after = c.execute(select + "(occurred_at, id) > (?, ?) ORDER BY occurred_at, id LIMIT ?",
                      (user, session, *last, NEIGHBOURS)).fetchall()
    return before[::-1] + between + after


def _windows(c: sqlite3.Connection,
             moving: Sequence[tuple[MemoryEntry | None, MemoryEntry | None]]) -> set[int]:
    """Rowids of the changed memories that are stored (those with an old state) and of the
    NEIGHBOURS on each side of each one's old and new place."""
    rowids: set[int] = set()
    for chunk in _chunks([old.id for old, _ in moving if old is not None]):
        rowids.update(r[0] for r in c.execute(
            f"SELECT rowid FROM memories WHERE id IN ({', '.join('?' * len(chunk))})", chunk))
    places = list(dict.fromkeys((e.user_id, e.session_id, format_time(e.occurred_at), e.id)
                                for pair in moving for e in pair
                                if e is not None and e.session_id is not None))
    rowids.update(row["rowid"] for sides in _neighbours(c, places) for side in sides
                  for row in side)
    return rowids


def _keys(c: sqlite3.Connection, rowids: Iterable[int]) -> list[tuple[int, tuple[str, ...]]]:
    """The keyword-index columns of the stored memories among `rowids`."""
    rows = [row for chunk in _chunks(list(rowids)) for row in c.execute(
        "SELECT rowid, id, user_id, session_id, content, occurred_at, slot FROM memories "
        f"WHERE rowid IN ({', '.join('?' * len(chunk))})", chunk)]
    in_session = [row for row in rows if row["session_id"] is not None]
    sides = dict(zip((row["rowid"] for row in in_session), _neighbours(
        c, [(r["user_id"], r["session_id"], r["occurred_at"], r["id"]) for r in in_session]),
        strict=True))
    found = []
    for row in rows:
        before, after = sides.get(row["rowid"], ([], []))
        found.append((row["rowid"], index_keys(
            row["content"], parse_time(row["occurred_at"], "occurred_at"),
            [r["content"] for r in before], [r["content"] for r in after], slot=row["slot"])))
    return found


def _chunks(values: Sequence[T], size: int = 500) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


INDEX = (f"INSERT INTO memories_fts (rowid, {', '.join(INDEX_COLUMNS)}) VALUES "
         f"(?, {', '.join('?' * len(INDEX_COLUMNS))})")
# Removing a row from the contentless index takes the exact values it indexed.
UNINDEX = (f"INSERT INTO memories_fts (memories_fts, rowid, {', '.join(INDEX_COLUMNS)}) "
           f"VALUES ('delete', ?, {', '.join('?' * len(INDEX_COLUMNS))})")


def index_all(c: sqlite3.Connection) -> None:
    """Index every stored memory (after `rebuild` recreated the empty index)."""
    rowids = [rowid for (rowid,) in c.execute("SELECT rowid FROM memories").fetchall()]
    c.executemany(INDEX, [(rowid, *keys) for rowid, keys in _keys(c, rowids)])


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
