"""The PostgreSQL store's schema: migrations (applied once each, in order, recorded in `meta`)
and the projection tables that `rebuild` drops and recreates."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import psycopg

from engram.log.legacy import LegacyWalk
from engram.store import rows as R
from engram.store.keyword_layout import INDEX_COLUMNS, INDEX_KEYS_VERSION, INDEX_WEIGHTS

# The keyword index's columns become tsvector weight classes: the largest weight is class A,
# the next B, and so on. ts_rank takes the weights as {D, C, B, A}.
_CLASSES = sorted(set(INDEX_WEIGHTS), reverse=True)
assert len(_CLASSES) <= 4, "a tsvector has four weight classes"
CLASS_OF = {col: "ABCD"[_CLASSES.index(w)] for col, w in zip(INDEX_COLUMNS, INDEX_WEIGHTS,
                                                                strict=True)}
RANK_WEIGHTS = "{" + ", ".join(str(_CLASSES[i]) if i < len(_CLASSES) else "0"
                               for i in (3, 2, 1, 0)) + "}"
# Snowball English stemming without a stopword list: `recall.keyword_terms` drops stopwords
# from queries (and keeps them when a query has nothing else), as with the SQLite index.
TS_CONFIG = "engram_english"

PROJECTION_TABLES = ("memories",)
PROJECTIONS_DDL = """
CREATE TABLE memories (
    id TEXT COLLATE "C" PRIMARY KEY,
    user_id TEXT COLLATE "C" NOT NULL,
    agent_id TEXT,
    session_id TEXT COLLATE "C",
    content TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    tier TEXT NOT NULL,
    memory_type TEXT NOT NULL,
    occurred_at TEXT COLLATE "C" NOT NULL,
    created_at TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    access_count INTEGER NOT NULL DEFAULT 0,
    confidence DOUBLE PRECISION NOT NULL DEFAULT 0.5,
    last_seen TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    sensitive INTEGER NOT NULL DEFAULT 0,
    slot TEXT,
    doc TEXT NOT NULL,
    fts TSVECTOR
);
CREATE INDEX memories_by_user ON memories(user_id, occurred_at);
CREATE INDEX memories_by_session ON memories(user_id, session_id, occurred_at, id);
CREATE INDEX memories_by_hash ON memories(content_hash, user_id);
CREATE INDEX memories_by_slot ON memories(user_id, slot) WHERE slot IS NOT NULL;
CREATE INDEX memories_inactive ON memories(user_id, status) WHERE status <> 'active';
CREATE INDEX memories_fts ON memories USING gin (fts);
"""

PROJECTION_LAYOUT = hashlib.sha256(
    f"{PROJECTIONS_DDL}|{INDEX_WEIGHTS}|{INDEX_KEYS_VERSION}|{TS_CONFIG}".encode()
).hexdigest()[:16]


def read_meta(c: psycopg.Connection[Any], key: str) -> str | None:
    row = c.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
    return None if row is None else str(row["value"])


def write_meta(c: psycopg.Connection[Any], key: str, value: str) -> None:
    c.execute("INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET "
              "value = excluded.value", (key, value))


def run_script(conn: psycopg.Connection[Any], script: str) -> None:
    """Execute `;`-separated statements (none of ours has a `;` inside)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement.encode())


def _m001_initial(conn: psycopg.Connection[Any]) -> None:
    """Vectors are computed once per content and model; their int8 values are kept as a
    halfvec (exact for |v| <= 127), so pgvector's cosine equals the SQLite store's. Each model
    gets its own partial HNSW index when its first vectors arrive (`put_embeddings`)."""
    run_script(conn, f"""
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE events (
        pos BIGINT PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        schema INTEGER NOT NULL,
        device_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        hlc TEXT NOT NULL,
        actor TEXT NOT NULL,
        memory_id TEXT,
        payload TEXT,
        payload_hash BYTEA NOT NULL,
        prev_hash BYTEA NOT NULL,
        hash BYTEA NOT NULL,
        UNIQUE (device_id, seq)
    );
    CREATE INDEX events_by_memory ON events(memory_id) WHERE memory_id IS NOT NULL;
    CREATE TABLE embeddings (
        model TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        vec HALFVEC NOT NULL,
        PRIMARY KEY (model, content_hash)
    );
    CREATE TEXT SEARCH DICTIONARY engram_snowball (TEMPLATE = snowball, LANGUAGE = english);
    CREATE TEXT SEARCH CONFIGURATION {TS_CONFIG} (COPY = simple);
    ALTER TEXT SEARCH CONFIGURATION {TS_CONFIG} ALTER MAPPING FOR asciiword, word, numword,
        asciihword, hword, hword_part, hword_asciipart, numhword, hword_numpart
        WITH engram_snowball
    """)
    run_script(conn, PROJECTIONS_DDL)


def _m002_per_device_chains(conn: psycopg.Connection[Any]) -> None:
    """One hash chain per device (schema 2), merged by hybrid logical clock: an index for the
    merge order (bytewise, as `log.chain.merge_key` compares), and the legacy one-chain log
    verified and re-sealed per device (`log.legacy`); the outcome is kept in meta
    'legacy_chain'."""
    conn.execute('CREATE INDEX IF NOT EXISTS events_by_merge ON events '
                 '(hlc COLLATE "C", device_id COLLATE "C", seq)')
    walk = LegacyWalk()
    with conn.cursor(name="engram_legacy") as cursor:
        cursor.itersize = 2000
        cursor.execute(f"SELECT pos, {R.EVENT_COLUMNS} FROM events ORDER BY pos")
        for row in cursor:
            walk.feed(row["pos"], R.event_from(row))
    conn.cursor().executemany(
        "UPDATE events SET schema = %s, prev_hash = %s, hash = %s WHERE id = %s",
        [(e.schema, bytes.fromhex(e.prev_hash), bytes.fromhex(e.hash), e.id)
         for e in walk.resealed])
    if walk.events or walk.problem:
        write_meta(conn, "legacy_chain", json.dumps({
            "events": walk.events, "head": walk.head, "resealed": len(walk.resealed),
            "problem": walk.problem}))
    if walk.out_of_order:  # projections were folded in another order: replay on open
        conn.execute("DELETE FROM meta WHERE key = 'projection_layout'")


# Applied in order, once each; meta 'schema_version' records how many have run.
MIGRATIONS: list[Callable[[psycopg.Connection[Any]], None]] = [
    _m001_initial, _m002_per_device_chains]
