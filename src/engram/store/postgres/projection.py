"""The PostgreSQL projection: rows of `memories` with their tsvector (the same keyword-index
columns as the SQLite store, from `recall.index_keys`), and Filters as SQL.

Rows are mapped by the SQLite projection's functions (one mapping for both stores); the keyword
index differs: a tsvector column whose weight classes stand for the index columns."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.rows import DictRow

from engram.model import MemoryEntry, format_time, parse_time
from engram.query import Filters
from engram.store import rows as R
from engram.store import sql_filters
from engram.store.keyword_layout import INDEX_COLUMNS, NEIGHBOURS, index_keys
from engram.store.postgres.schema import CLASS_OF, TS_CONFIG

Cursor = psycopg.Connection[DictRow]
COLUMNS = R.ROW_COLUMNS  # the order of `R.row_of`
BRIEF = R.BRIEF


def tsvector(operands: Iterable[str]) -> str:
    """SQL for the keyword-index tsvector of one row, given SQL for its INDEX_COLUMNS texts."""
    return " || ".join(f"setweight(to_tsvector('{TS_CONFIG}', {op}), '{CLASS_OF[col]}')"
                       for col, op in zip(INDEX_COLUMNS, operands, strict=True))


UPSERT = (f"INSERT INTO memories ({', '.join(COLUMNS)}) "
          f"VALUES ({', '.join(['%s'] * len(COLUMNS))}) ON CONFLICT (id) DO UPDATE SET "
          + ", ".join(f"{col} = excluded.{col}" for col in COLUMNS[1:]))
_SET_INDEX = (f"UPDATE memories SET fts = {tsvector(['%s'] * len(INDEX_COLUMNS))} "
              "WHERE id = %s")
_SIDES = (("<", "DESC"), (">", "ASC"))


def entry_from(row: Mapping[str, Any]) -> MemoryEntry:
    return R.entry_from(row)


def get(c: Cursor, memory_id: str) -> MemoryEntry | None:
    row = c.execute("SELECT * FROM memories WHERE id = %s", (memory_id,)).fetchone()
    return entry_from(row) if row else None


def write(c: Cursor, old: MemoryEntry | None, new: MemoryEntry | None) -> None:
    """Replace one memory's row (None: absent) with its keyword index (`write_many`)."""
    write_many(c, [(old, new)])


def write_many(c: Cursor, changes: Sequence[tuple[MemoryEntry | None, MemoryEntry | None]]
               ) -> None:
    """Replace memories' rows, each `(old, new)` of a different memory, and re-index once
    every row whose keyword-index columns they feed: themselves and their neighbours in
    their sessions, found before anything changes (as the SQLite projection's `write_many`
    explains)."""
    plain = [R.row_of(new) for old, new in changes
             if new is not None and not R.index_changes(old, new)]
    if plain:
        c.cursor().executemany(UPSERT, plain)
    moving = [(old, new) for old, new in changes
              if (old is not None or new is not None) and R.index_changes(old, new)]
    if not moving:
        return
    affected = _windows(c, [e for pair in moving for e in pair if e is not None])
    gone = [old.id for old, new in moving if new is None and old is not None]
    if gone:
        c.execute("DELETE FROM memories WHERE id = ANY(%s)", (gone,))
    stored = [new for _, new in moving if new is not None]
    if stored:
        c.cursor().executemany(UPSERT, [R.row_of(new) for new in stored])
    affected = (affected - set(gone)) | {new.id for new in stored}
    rows = c.execute(
        "SELECT x.id, x.content, x.occurred_at, x.slot, "
        + ", ".join(
            f"ARRAY(SELECT p.content FROM memories p WHERE p.user_id = x.user_id AND "
            f"p.session_id = x.session_id AND (p.occurred_at, p.id) {op} (x.occurred_at, x.id) "
            f"ORDER BY p.occurred_at {order}, p.id {order} LIMIT {NEIGHBOURS}) AS side{n}"
            for n, (op, order) in enumerate(_SIDES))
        + " FROM memories x WHERE x.id = ANY(%s)", (sorted(affected),)).fetchall()
    c.cursor().executemany(_SET_INDEX, [
        (*index_keys(r["content"], parse_time(r["occurred_at"], "occurred_at"), r["side0"],
                     r["side1"], slot=r["slot"]), r["id"]) for r in rows])


def _windows(c: Cursor, entries: Sequence[MemoryEntry]) -> set[str]:
    """Ids of these memories (those stored) and of the NEIGHBOURS on each side of each one's
    place, in one statement: a lateral walk of the session index from each place."""
    places = list(dict.fromkeys((e.id, e.user_id, e.session_id, format_time(e.occurred_at))
                                for e in entries))
    if not places:
        return set()
    sides = " UNION ALL ".join(
        f"(SELECT m.id FROM memories m WHERE m.user_id = p.user_id AND m.session_id = "
        f"p.session_id AND (m.occurred_at, m.id) {op} (p.occurred_at, p.id) "
        f"ORDER BY m.occurred_at {order}, m.id {order} LIMIT {NEIGHBOURS})" for op, order in _SIDES)
    rows = c.execute(
        "SELECT n.id FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) "
        "AS p(id, user_id, session_id, occurred_at) CROSS JOIN LATERAL ("
        f"(SELECT m.id FROM memories m WHERE m.id = p.id) UNION ALL {sides}) AS n",
        [list(column) for column in zip(*places, strict=True)])
    return {r["id"] for r in rows}


def write_all(c: Cursor, entries: Iterable[MemoryEntry]) -> None:
    """Insert every memory with its keyword index at once (into an emptied table: rebuild).
    Neighbours are found in Python, in the order the SQL above uses (ids and times sort
    bytewise: the columns are COLLATE "C")."""
    sessions: dict[tuple[str, str], list[MemoryEntry]] = defaultdict(list)
    rows = []
    for entry in entries:
        rows.append(entry)
        if entry.session_id is not None:
            sessions[(entry.user_id, entry.session_id)].append(entry)
    sides: dict[str, tuple[list[str], list[str]]] = {}
    for turns in sessions.values():
        turns.sort(key=lambda e: (format_time(e.occurred_at), e.id))
        texts = [e.content for e in turns]
        for i, e in enumerate(turns):
            sides[e.id] = (texts[max(0, i - NEIGHBOURS):i][::-1], texts[i + 1:i + 1 + NEIGHBOURS])
    keys = [f"k{i}" for i in range(len(INDEX_COLUMNS))]
    c.execute(f"CREATE TEMP TABLE incoming ({', '.join(f'{col} TEXT' for col in COLUMNS)}, "
              f"{', '.join(f'{k} TEXT' for k in keys)}) ON COMMIT DROP")
    with c.cursor().copy(f"COPY incoming ({', '.join((*COLUMNS, *keys))}) FROM STDIN") as copy:
        for entry in rows:
            before, after = sides.get(entry.id, ([], []))
            copy.write_row((*R.row_of(entry),
                            *index_keys(entry.content, entry.occurred_at, before, after,
                                       slot=entry.slot)))
    c.execute(f"INSERT INTO memories ({', '.join(COLUMNS)}, fts) SELECT "
              f"{', '.join(_typed(col) for col in COLUMNS)}, {tsvector(keys)} FROM incoming")


def _typed(col: str) -> str:
    return {"access_count": "access_count::integer", "sensitive": "sensitive::integer",
            "confidence": "confidence::double precision"}.get(col, col)


def where(f: Filters) -> tuple[str, list[Any]]:
    """SQL conditions on alias `m` for a Filters, applied inside every candidate query."""
    return sql_filters.where(f, sql_filters.POSTGRES)
