"""The scale-out store: the event log and its projections in PostgreSQL, vectors in pgvector.

Same protocol and same projection (`projection.apply`) as the SQLite store. Several processes,
on several machines, may write to one database: every write transaction first takes one
transaction-level advisory lock, so appends to the hash chain, per-device sequence numbers and
projection updates are serialized exactly as SQLite's IMMEDIATE transactions serialize them.
Reads take no lock. Design notes and numbers: docs/postgres.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from engram import vectors
from engram.clock import Clock
from engram.errors import StoreError
from engram.events import (
    GENESIS_HASH,
    HLC,
    Draft,
    Event,
    EventType,
    chain_problem,
    new_id,
    next_id,
    seal,
)
from engram.model import MemoryEntry
from engram.projection import apply, fold, targets
from engram.recall import Brief
from engram.store import postgres_projection as PP
from engram.store import sqlite_projection as P
from engram.store.base import ChainReport, Filters
from engram.store.postgres_schema import (
    MIGRATIONS,
    PROJECTION_LAYOUT,
    PROJECTION_TABLES,
    PROJECTIONS_DDL,
    RANK_WEIGHTS,
    TS_CONFIG,
    run_script,
)
from engram.store.sqlite import MAX_TERM_ROWS, MAX_TERM_SHARE
from engram.vectors import Array, Vec8

Conn = psycopg.Connection[DictRow]
# Every write transaction holds this lock until it commits: one writer at a time per database.
WRITE_LOCK = 0x656E6772616D  # "engram"
_EVENT_COLUMNS = ("id, type, schema, device_id, seq, hlc, actor, memory_id, payload, "
                  "payload_hash, prev_hash, hash")
HNSW_EF_SEARCH = 100


def redacted_url(url: str) -> str:
    """The URL without its password, for messages and stats."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresStore:
    """Store protocol over one PostgreSQL database (psycopg 3, a small connection pool)."""

    def __init__(self, url: str, *, clock: Clock, device_id: str | None = None,
                 pool_size: int = 4, connect_timeout_s: float = 30.0) -> None:
        self.url = url
        self.clock = clock
        try:  # one plain connection first: its error says what is wrong (host, auth, database)
            psycopg.connect(url, connect_timeout=max(1, round(connect_timeout_s))).close()
        except psycopg.Error as exc:
            raise StoreError(f"store: cannot connect to {redacted_url(url)} ({_first_line(exc)}); "
                             "check the URL's host, port, user, password and database") from exc
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url, connection_class=Conn, min_size=1, max_size=pool_size, open=False,
            name="engram", configure=_configure,
            kwargs={"autocommit": True, "row_factory": dict_row})
        try:
            self._pool.open(wait=True, timeout=connect_timeout_s)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreError(f"store: cannot connect to {redacted_url(url)} within "
                             f"{connect_timeout_s:.0f} s; check that the server runs and the "
                             "URL's host, port, user and database") from exc
        self._hlc = HLC(0)
        self._stems: dict[str, str] = {}  # query word -> tsquery text ('' when it has none)
        self._term_cache: dict[str, tuple[int, int]] = {}  # tsquery -> (rows, store size then)
        self._closed = False
        self.device_id = self._setup(device_id)

    # ------------------------------------------------------------ setup

    def _setup(self, wanted_device: str | None) -> str:
        with self._locked() as c:
            _ensure_vector_extension(c, self.url)
            version = self._schema_version(c)
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"store: {redacted_url(self.url)} was written by a newer Engram (schema "
                    f"{version}, this version knows {len(MIGRATIONS)}); upgrade engram-memory "
                    "to open it")
            for migration in MIGRATIONS[version:]:
                migration(c)
            if version < len(MIGRATIONS):
                _put_meta(c, "schema_version", str(len(MIGRATIONS)))
            device = _meta(c, "device_id")
            if device is None:
                device = wanted_device or \
                    f"dev-{new_id(int(self.clock.now().timestamp() * 1000))[-12:]}"
                _put_meta(c, "device_id", device)
            if _meta(c, "projection_layout") != PROJECTION_LAYOUT:
                self._rebuild(c)  # projections are derived: a new layout only needs a replay
        return device

    @staticmethod
    def _schema_version(c: Conn) -> int:
        row = c.execute("SELECT to_regclass('meta') IS NOT NULL AS present").fetchone()
        if row is None or not row["present"]:
            return 0
        return int(_meta(c, "schema_version") or 0)

    def get_setting(self, key: str) -> str | None:
        with self._pool.connection() as c:
            return _meta(c, f"setting.{key}")

    def set_setting(self, key: str, value: str) -> None:
        with self._locked() as c:
            _put_meta(c, f"setting.{key}", value)

    def close(self) -> None:
        """Return the pool's connections. Closing twice is fine."""
        if not self._closed:
            self._pool.close()
            self._closed = True

    # ------------------------------------------------------------ transactions

    @contextmanager
    def _locked(self) -> Iterator[Conn]:
        """A write transaction holding WRITE_LOCK: commits on success, rolls back on error."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[_PostgresTx]:
        with self._locked() as conn:
            yield _PostgresTx(self, conn)

    # ------------------------------------------------------------ reads

    def get(self, memory_id: str) -> MemoryEntry | None:
        with self._pool.connection() as c:
            return PP.get(c, memory_id)

    def select(self, filters: Filters, *, limit: int | None = None, offset: int = 0,
               newest_first: bool = True) -> list[MemoryEntry]:
        where, params = PP.where(filters)
        order = "DESC" if newest_first else "ASC"
        with self._pool.connection() as c:
            rows = c.execute(f"SELECT * FROM memories m WHERE {where} ORDER BY m.occurred_at "
                             f"{order}, m.id {order} LIMIT %s OFFSET %s",
                             (*params, limit, offset)).fetchall()
        return [PP.entry_from(row) for row in rows]

    def count(self, filters: Filters) -> int:
        where, params = PP.where(filters)
        with self._pool.connection() as c:
            row = c.execute(f"SELECT COUNT(*) AS n FROM memories m WHERE {where}",
                            params).fetchone()
        return int(row["n"]) if row else 0

    def get_many(self, memory_ids: Iterable[str]) -> dict[str, MemoryEntry]:
        wanted = list(dict.fromkeys(memory_ids))
        with self._pool.connection() as c:
            rows = c.execute("SELECT * FROM memories WHERE id = ANY(%s)", (wanted,)).fetchall()
        return {row["id"]: PP.entry_from(row) for row in rows}

    def _load(self, found: list[tuple[Brief, float]]) -> list[tuple[MemoryEntry, float]]:
        entries = self.get_many(b.id for b, _ in found)
        return [(entries[b.id], s) for b, s in found if b.id in entries]

    def keyword_search(self, terms: list[str], filters: Filters,
                       limit: int) -> list[tuple[MemoryEntry, float]]:
        return self._load(self.keyword_candidates(terms, filters, limit))

    def keyword_candidates(self, terms: list[str], filters: Filters,
                           limit: int) -> list[tuple[Brief, float]]:
        """BM25-style ranking over the tsvector index: each kept term scores its ts_rank
        (weighted by index column) times its inverse document frequency."""
        with self._pool.connection() as c:
            total = self._size(c)
            counted = self._document_counts(c, terms, total)
            if not counted:
                return []
            queries = [q for _, q in counted]
            idf = [max(math.log((total - n + 0.5) / (n + 0.5)), 1e-6) for n, _ in counted]
            where, params = PP.where(filters)
            rows = c.execute(
                f"SELECT {PP.BRIEF}, (SELECT sum(q.idf * ts_rank('{RANK_WEIGHTS}', m.fts, "
                "q.query, 1)) FROM unnest(%s::tsquery[], %s::float8[]) AS q(query, idf)) "
                f"AS score FROM memories m WHERE m.fts @@ %s::tsquery AND {where} "
                "ORDER BY score DESC, m.id LIMIT %s",
                (queries, idf, " | ".join(f"({q})" for q in queries), *params, limit)
            ).fetchall()
        return [(P.brief_from(row), float(row["score"])) for row in rows]  # type: ignore[arg-type]

    def _size(self, c: Conn) -> int:
        """Rows in `memories`: the planner's estimate for large tables, counted when small."""
        row = c.execute("SELECT reltuples::bigint AS n FROM pg_class "
                        "WHERE oid = 'memories'::regclass").fetchone()
        estimate = int(row["n"]) if row else -1
        if estimate >= 10_000:
            return estimate
        counted = c.execute("SELECT COUNT(*) AS n FROM memories").fetchone()
        return int(counted["n"]) if counted else 0

    def _document_counts(self, c: Conn, terms: list[str], total: int) -> list[tuple[int, str]]:
        """(rows containing it, tsquery) for the query's informative terms, rarest first;
        the same caps as the SQLite store (`SQLiteStore._document_counts`)."""
        missing = [t for t in dict.fromkeys(terms) if t not in self._stems]
        if missing:
            for row in c.execute(f"SELECT t, plainto_tsquery('{TS_CONFIG}', t)::text AS q "
                                 "FROM unnest(%s::text[]) AS t", (missing,)):
                self._stems[row["t"]] = row["q"]
        queries = {q for t in terms if (q := self._stems.get(t))}
        fresh = {q for q in queries if (hit := self._term_cache.get(q)) is None
                 or not (hit[1] == total or (total >= 10_000
                                             and abs(hit[1] - total) <= total // 100))}
        if len(self._term_cache) > 50_000:
            self._term_cache.clear()
        for q in fresh:
            found = c.execute("SELECT COUNT(*) AS n FROM memories WHERE fts @@ %s::tsquery",
                              (q,)).fetchone()
            self._term_cache[q] = (int(found["n"]) if found else 0, total)
        counted = sorted((self._term_cache[q][0], q) for q in queries)
        counted = [(n, q) for n, q in counted if n > 0]
        cap = min(MAX_TERM_SHARE * total, MAX_TERM_ROWS)
        kept = [(n, q) for n, q in counted if n <= cap]
        return kept or counted[:1]

    # ------------------------------------------------------------ vectors

    def missing_embeddings(self, model: str, hashes: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(hashes))
        with self._pool.connection() as c:
            have = {r["content_hash"] for r in c.execute(
                "SELECT content_hash FROM embeddings WHERE model = %s AND content_hash = ANY(%s)",
                (model, wanted))}
        return set(wanted) - have

    def unembedded(self, model: str, limit: int) -> list[tuple[str, str]]:
        """(content_hash, content) of live memories that have no vector from `model` yet."""
        with self._pool.connection() as c:
            rows = c.execute(
                "SELECT m.content_hash, MIN(m.content) AS content FROM memories m WHERE NOT "
                "EXISTS (SELECT 1 FROM embeddings e WHERE e.model = %s AND e.content_hash = "
                "m.content_hash) GROUP BY m.content_hash LIMIT %s", (model, limit)).fetchall()
        return [(r["content_hash"], r["content"]) for r in rows]

    def drop_embeddings(self, keep_model: str) -> None:
        """Delete every vector not made by `keep_model`, with those models' indexes."""
        with self._locked() as c:
            for row in c.execute("SELECT key FROM meta WHERE key LIKE 'vector_dim.%%'").fetchall():
                model = row["key"].removeprefix("vector_dim.")
                if model != keep_model:
                    c.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(
                        sql.Identifier(_hnsw_name(model))))
                    c.execute("DELETE FROM meta WHERE key = %s", (row["key"],))
            c.execute("DELETE FROM embeddings WHERE model != %s", (keep_model,))

    def vector_search(self, query: Array, filters: Filters, model: str,
                      limit: int) -> list[tuple[MemoryEntry, float]]:
        return self._load(self.vector_candidates(query, filters, model, limit))

    def vector_candidates(self, query: Array, filters: Filters, model: str,
                          limit: int) -> list[tuple[Brief, float]]:
        """Nearest memories by cosine; filters are part of the query, so they apply before
        the top-k cut. A scope of up to EXACT_LIMIT memories is scanned exactly; a larger one
        walks the model's HNSW index with iterative scans until `limit` rows pass the filter."""
        if filters.user_id is None:
            raise ValueError("vector search needs a user scope")
        where, params = PP.where(filters)
        with self._pool.connection() as c, c.transaction():
            dim = _meta(c, f"vector_dim.{model}")
            if dim is None:
                return []
            size = c.execute(f"SELECT COUNT(*) AS n FROM (SELECT 1 FROM memories m WHERE "
                             f"{where} LIMIT {vectors.EXACT_LIMIT + 1}) s", params).fetchone()
            distance: sql.Composable
            if size is None or size["n"] <= vectors.EXACT_LIMIT:
                distance = sql.SQL("e.vec <=> %s::halfvec")
            else:
                c.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                c.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(
                    sql.Literal(max(HNSW_EF_SEARCH, limit))))
                distance = sql.SQL("(e.vec::halfvec({dim})) <=> %s::halfvec({dim})").format(
                    dim=sql.Literal(int(dim)))
            rows = c.execute(sql.SQL(
                "SELECT {brief}, 1 - ({distance}) AS sim FROM embeddings e JOIN memories m "
                "ON m.content_hash = e.content_hash WHERE e.model = {model} AND {where} "
                "ORDER BY {distance} LIMIT %s").format(
                    brief=sql.SQL(PP.BRIEF), distance=distance, model=sql.Literal(model),
                    where=sql.SQL(where)),
                (_vector_text(query), *params, _vector_text(query), limit)).fetchall()
        found = [(P.brief_from(r), float(r["sim"])) for r in rows]  # type: ignore[arg-type]
        found.sort(key=lambda hit: -hit[1])  # an iterative scan may return slightly out of order
        return found

    def similarities(self, query: Array, user_id: str, model: str,
                     memory_ids: Iterable[str]) -> dict[str, float]:
        """Cosine of the query with each of these memories' vectors."""
        with self._pool.connection() as c:
            rows = c.execute(
                "SELECT m.id, 1 - (e.vec <=> %s::halfvec) AS sim FROM memories m JOIN embeddings "
                "e ON e.content_hash = m.content_hash AND e.model = %s WHERE m.user_id = %s "
                "AND m.id = ANY(%s)", (_vector_text(query), model, user_id, list(memory_ids))
            ).fetchall()
        return {r["id"]: float(r["sim"]) for r in rows}

    # ------------------------------------------------------------ the log

    def history(self, memory_id: str) -> list[Event]:
        with self._pool.connection() as c:
            rows = c.execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE memory_id = %s "
                             "ORDER BY pos", (memory_id,)).fetchall()
        return [P.event_from(row) for row in rows]  # type: ignore[arg-type]

    def events(self) -> Iterator[Event]:
        for _, event in self._events_with_pos():
            yield event

    def _events_with_pos(self) -> Iterator[tuple[int, Event]]:
        """The log in order, streamed by a server-side cursor in one snapshot."""
        with self._pool.connection() as c, c.transaction(), \
                c.cursor(name="engram_events") as cursor:
            cursor.itersize = 2000
            cursor.execute(f"SELECT pos, {_EVENT_COLUMNS} FROM events ORDER BY pos")
            for row in cursor:
                yield row["pos"], P.event_from(row)  # type: ignore[arg-type]

    def verify(self) -> ChainReport:
        expected, checked = GENESIS_HASH, 0
        for pos, event in self._events_with_pos():
            problem = chain_problem(event, expected)
            if problem:
                return ChainReport(checked, broken_at=pos, event_id=event.id, problem=problem)
            expected, checked = event.hash, checked + 1
        return ChainReport(checked)

    def rebuild(self) -> int:
        """Drop every projection, recreate it empty, and replay the whole log into it."""
        with self._locked() as c:
            return self._rebuild(c)

    def _rebuild(self, c: Conn) -> int:
        for table in PROJECTION_TABLES:
            c.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
        run_script(c, PROJECTIONS_DDL)
        rows = c.execute(f"SELECT {_EVENT_COLUMNS} FROM events ORDER BY pos").fetchall()
        state = fold([P.event_from(row) for row in rows])  # type: ignore[arg-type]
        PP.write_all(c, state.values())
        c.execute("DELETE FROM embeddings e WHERE NOT EXISTS "
                  "(SELECT 1 FROM memories m WHERE m.content_hash = e.content_hash)")
        _put_meta(c, "projection_layout", PROJECTION_LAYOUT)
        c.execute("ANALYZE memories")
        self._term_cache.clear()
        return len(state)

    def import_events(self, events: list[Event]) -> int:
        """Append exported events verbatim (ids, hashes and all); already present ones are
        skipped. The incoming chain must continue this store's chain."""
        with self.transaction() as tx:
            return tx.import_events(events)

    def redact_residue(self) -> None:
        """After a forget: vacuum the tables that held the text, so the dead row versions
        holding it are pruned (WAL segments age out as the server recycles them)."""
        with self._pool.connection() as c:
            c.execute("VACUUM events, memories, embeddings")

    def stats(self) -> dict[str, object]:
        with self._pool.connection() as c:
            def grouped(query: str) -> dict[str, int]:
                return {r["k"]: int(r["n"]) for r in c.execute(query)}

            one = c.execute(
                "SELECT (SELECT COUNT(*) FROM memories) AS memories, (SELECT COUNT(DISTINCT "
                "user_id) FROM memories) AS users, (SELECT COUNT(*) FROM events) AS events, "
                "(SELECT SUM(pg_total_relation_size(t::regclass)) FROM unnest(ARRAY['meta', "
                "'events', 'memories', 'embeddings']) AS t) AS bytes").fetchone()
            assert one is not None
            return {
                "path": redacted_url(self.url),
                "device_id": self.device_id,
                "memories": int(one["memories"]),
                "users": int(one["users"]),
                "events": int(one["events"]),
                "vectors": grouped("SELECT model AS k, COUNT(*) AS n FROM embeddings "
                                   "GROUP BY model"),
                "by_tier": grouped("SELECT tier AS k, COUNT(*) AS n FROM memories GROUP BY tier"),
                "by_type": grouped("SELECT memory_type AS k, COUNT(*) AS n FROM memories "
                                   "GROUP BY memory_type"),
                "bytes_on_disk": int(one["bytes"]),
            }


class _PostgresTx:
    def __init__(self, store: PostgresStore, conn: Conn) -> None:
        self._store, self._conn = store, conn

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
        if not vectors:
            return
        c = self._conn
        if _meta(c, f"vector_dim.{model}") is None:
            dim = len(next(iter(vectors.values())))
            c.execute(sql.SQL(
                "CREATE INDEX IF NOT EXISTS {name} ON embeddings USING hnsw "
                "((vec::halfvec({dim})) halfvec_cosine_ops) WHERE model = {model}").format(
                    name=sql.Identifier(_hnsw_name(model)), dim=sql.Literal(dim),
                    model=sql.Literal(model)))
            _put_meta(c, f"vector_dim.{model}", str(dim))
        c.cursor().executemany(
            "INSERT INTO embeddings (model, content_hash, vec) VALUES (%s, %s, %s::halfvec) "
            "ON CONFLICT DO NOTHING",
            [(model, h, _vector_text(v)) for h, v in vectors.items()])

    def append(self, draft: Draft) -> Event:
        store, c = self._store, self._conn
        row = c.execute("SELECT (SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE "
                        "device_id = %s) AS seq, h.pos, h.hash, h.hlc FROM (SELECT 1) one LEFT "
                        "JOIN (SELECT pos, hash, hlc FROM events ORDER BY pos DESC LIMIT 1) h "
                        "ON TRUE", (store.device_id,)).fetchone()
        assert row is not None
        head = row if row["pos"] is not None else None
        now_ms = int(store.clock.now().timestamp() * 1000)
        last = max(store._hlc, HLC.parse(head["hlc"])) if head else store._hlc
        hlc = last.tick(now_ms)
        event = seal(draft, event_id=next_id(now_ms), device_id=store.device_id,
                     seq=int(row["seq"]), hlc=hlc,
                     prev_hash=bytes(head["hash"]).hex() if head else GENESIS_HASH)
        self._insert(event, head["pos"] + 1 if head else 1)
        store._hlc = hlc
        return event

    def import_events(self, events: list[Event]) -> int:
        c = self._conn
        added = 0
        for number, event in enumerate(events, start=1):
            known = c.execute("SELECT hash FROM events WHERE id = %s", (event.id,)).fetchone()
            if known:
                if bytes(known["hash"]).hex() != event.hash:
                    raise StoreError(f"line {number}: event {event.id} differs from the stored "
                                     "event with the same id; the file is not from this log")
                continue
            head = c.execute("SELECT pos, hash FROM events ORDER BY pos DESC LIMIT 1").fetchone()
            problem = chain_problem(event, bytes(head["hash"]).hex() if head else GENESIS_HASH)
            if problem:
                raise StoreError(f"line {number}: event {event.id} does not continue the chain "
                                 f"({problem}); import into an empty store or the store it "
                                 "was exported from")
            self._insert(event, head["pos"] + 1 if head else 1)
            added += 1
        return added

    def _insert(self, event: Event, pos: int) -> None:
        c = self._conn
        c.execute(
            f"INSERT INTO events (pos, {_EVENT_COLUMNS}) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (pos, event.id, event.type.value, event.schema, event.device_id, event.seq,
             str(event.hlc), event.actor, event.memory_id,
             None if event.payload is None else json.dumps(event.payload, sort_keys=True,
                                                           separators=(",", ":"),
                                                           ensure_ascii=False),
             bytes.fromhex(event.payload_hash), bytes.fromhex(event.prev_hash),
             bytes.fromhex(event.hash)))
        hashes = self._content_hashes(event.memory_id) \
            if event.type is EventType.FORGOTTEN else []
        for memory_id in targets(event):
            current = PP.get(c, memory_id)
            PP.write(c, current, apply(current, event, memory_id))
        if event.type is EventType.FORGOTTEN:
            # A vector can leak its text: each of the memory's texts, current or earlier,
            # loses its vector with the last memory that had it.
            c.execute("DELETE FROM embeddings e WHERE e.content_hash = ANY(%s) AND NOT EXISTS "
                      "(SELECT 1 FROM memories m WHERE m.content_hash = e.content_hash)",
                      (hashes,))
            c.execute("UPDATE events SET payload = NULL WHERE memory_id = %s AND id != %s",
                      (event.memory_id, event.id))

    def _content_hashes(self, memory_id: str | None) -> list[str]:
        """Every content hash the memory has had, read from its events' payloads."""
        found = set()
        for row in self._conn.execute("SELECT payload FROM events WHERE memory_id = %s AND "
                                      "payload IS NOT NULL", (memory_id,)):
            payload = json.loads(row["payload"])
            for part in (payload.get("memory"), payload.get("changes")):
                if isinstance(part, dict) and isinstance(part.get("content_hash"), str):
                    found.add(part["content_hash"])
        return sorted(found)


def _configure(conn: Conn) -> None:
    """Plan every statement for its parameters and the tables as they are now: psycopg
    prepares repeated statements, and a generic plan cached while a table was small keeps
    scanning it whole once it is large (measured: appends fell to a quarter of the speed)."""
    conn.execute("SET plan_cache_mode = force_custom_plan")


def _meta(c: Conn, key: str) -> str | None:
    row = c.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
    return None if row is None else str(row["value"])


def _put_meta(c: Conn, key: str, value: str) -> None:
    c.execute("INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET "
              "value = excluded.value", (key, value))


def _ensure_vector_extension(c: Conn, url: str) -> None:
    if c.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
        return
    try:
        with c.transaction():
            c.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        raise StoreError(
            f"store: {redacted_url(url)} lacks the pgvector extension and this user cannot "
            f"create it ({_first_line(exc)}); install pgvector on the server and run "
            "CREATE EXTENSION vector as its owner") from exc


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _hnsw_name(model: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", model.lower())[:30]
    return f"embeddings_hnsw_{slug}_{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def _vector_text(vector: Array | Vec8) -> str:
    """pgvector's text form; int8 values are exact in a halfvec."""
    return "[" + ",".join(f"{float(x):.6g}" for x in vector) + "]"

