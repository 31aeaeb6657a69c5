"""The SQLite store's schema: migrations (applied once each, in order) and the projection
tables that `rebuild` drops and recreates."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable

from engram.log.legacy import LegacyWalk
from engram.store import rows as R
from engram.store.keyword_layout import INDEX_COLUMNS, INDEX_KEYS_VERSION, INDEX_WEIGHTS

# Projections are derived data: `rebuild` drops and recreates exactly these.
PROJECTION_TABLES = ("memories_fts", "memories")
PROJECTIONS_DDL = f"""
CREATE TABLE memories (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    agent_id TEXT,
    session_id TEXT,
    content TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    tier TEXT NOT NULL,
    memory_type TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    access_count INTEGER NOT NULL DEFAULT 0,
    confidence REAL NOT NULL DEFAULT 0.5,
    last_seen TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    sensitive INTEGER NOT NULL DEFAULT 0,
    slot TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX memories_by_user ON memories(user_id, occurred_at);
CREATE INDEX memories_by_session ON memories(user_id, session_id, occurred_at, id);
CREATE INDEX memories_by_hash ON memories(user_id, content_hash);
CREATE INDEX memories_by_slot ON memories(user_id, slot) WHERE slot IS NOT NULL;
CREATE INDEX memories_inactive ON memories(user_id, status) WHERE status <> 'active';
CREATE VIRTUAL TABLE memories_fts USING fts5(
    {", ".join(INDEX_COLUMNS)}, content='',
    tokenize='porter unicode61 remove_diacritics 2'
);
"""


# Changes whenever the projections' tables or what the keyword index holds change; a store
# whose recorded layout differs is rebuilt from its log on open.
PROJECTION_LAYOUT = hashlib.sha256(
    f"{PROJECTIONS_DDL}|{INDEX_WEIGHTS}|{INDEX_KEYS_VERSION}".encode()).hexdigest()[:16]


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Execute statements one by one: `executescript` would commit the open transaction."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""


def _m001_initial(conn: sqlite3.Connection) -> None:
    run_script(conn, """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE events (
        pos INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        schema INTEGER NOT NULL,
        device_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        hlc TEXT NOT NULL,
        actor TEXT NOT NULL,
        memory_id TEXT,
        payload TEXT,
        payload_hash BLOB NOT NULL,
        prev_hash BLOB NOT NULL,
        hash BLOB NOT NULL,
        UNIQUE (device_id, seq)
    );
    CREATE INDEX events_by_memory ON events(memory_id) WHERE memory_id IS NOT NULL;
    """)
    run_script(conn, PROJECTIONS_DDL)


def _m002_embeddings(conn: sqlite3.Connection) -> None:
    """Vectors are computed once per content and model; int8, as measured in
    docs/vector-index.md. Not a projection: rebuild keeps them (prunes orphans only)."""
    conn.execute("""
    CREATE TABLE embeddings (
        model TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        vec BLOB NOT NULL,
        PRIMARY KEY (model, content_hash)
    ) WITHOUT ROWID""")


def _m003_per_device_chains(conn: sqlite3.Connection) -> None:
    """One hash chain per device (schema 2), merged by hybrid logical clock: an index for the
    merge order, and the legacy one-chain log verified and re-sealed per device
    (`log.legacy`); the walk's outcome is kept in meta 'legacy_chain'."""
    conn.execute("CREATE INDEX IF NOT EXISTS events_by_merge ON events(hlc, device_id, seq)")
    walk = LegacyWalk()
    for row in conn.execute(f"SELECT pos, {R.EVENT_COLUMNS} FROM events ORDER BY pos"):
        walk.feed(row["pos"], R.event_from(row))
    conn.executemany("UPDATE events SET schema = ?, prev_hash = ?, hash = ? WHERE id = ?",
                     [(e.schema, bytes.fromhex(e.prev_hash), bytes.fromhex(e.hash), e.id)
                      for e in walk.resealed])
    if walk.events or walk.problem:
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('legacy_chain', ?)", (json.dumps({
            "events": walk.events, "head": walk.head, "resealed": len(walk.resealed),
            "problem": walk.problem}),))
    if walk.out_of_order:  # projections were folded in another order: replay on open
        conn.execute("DELETE FROM meta WHERE key = 'projection_layout'")


# Applied in order, once each; PRAGMA user_version records how many have run.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _m001_initial, _m002_embeddings, _m003_per_device_chains]
