"""The scale-out store: the event log and its projections in PostgreSQL, vectors in pgvector.

Same protocol and same projection (`projection.apply`) as the SQLite store. Several processes,
on several machines, may write to one database: every write transaction first takes one
transaction-level advisory lock, so appends to the hash chain, per-device sequence numbers and
projection updates are serialized exactly as SQLite's IMMEDIATE transactions serialize them.
Reads take no lock. Design notes and numbers: docs/postgres.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from engram.clock import Clock
from engram.embed.vectors import Array
from engram.errors import StoreError
from engram.log.chain import Head, Sealer
from engram.log.events import Event, new_id
from engram.log.projection import fold
from engram.model import MemoryEntry
from engram.query import Brief, Filters
from engram.store import rows as R
from engram.store.base import DerivedReads
from engram.store.postgres import projection as PP
from engram.store.postgres import search as S
from engram.store.postgres.schema import (
    MIGRATIONS,
    PROJECTION_LAYOUT,
    PROJECTION_TABLES,
    PROJECTIONS_DDL,
    read_meta,
    run_script,
    write_meta,
)
from engram.store.postgres.tx import MERGE_ORDER, PostgresTx
from engram.store.settings import Setting

Conn = psycopg.Connection[DictRow]
# Every write transaction holds this lock until it commits: one writer at a time per database.
WRITE_LOCK = 0x656E6772616D  # "engram"


def redacted_url(url: str) -> str:
    """The URL without its password, for messages and stats."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


POOL_WAIT_S = 5.0  # longest a request waits for a connection (the server may be down)


class PostgresStore(DerivedReads):
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
        # check: a connection the server dropped (a restart) is replaced when it is taken,
        # not failed on; timeout: while the server is down, a request fails after 5 s
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url, connection_class=Conn, min_size=1, max_size=pool_size, open=False,
            name="engram", configure=_configure, check=ConnectionPool.check_connection,
            timeout=POOL_WAIT_S, kwargs={"autocommit": True, "row_factory": dict_row})
        try:
            self._pool.open(wait=True, timeout=connect_timeout_s)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreError(f"store: cannot connect to {redacted_url(url)} within "
                             f"{connect_timeout_s:.0f} s; check that the server runs and the "
                             "URL's host, port, user and database") from exc
        self._keywords = S.KeywordIndex()
        self._closed = False
        self.device_id = self._setup(device_id)
        self._sealer = Sealer(self.device_id, clock)

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
                write_meta(c, "schema_version", str(len(MIGRATIONS)))
            device = read_meta(c, "device_id")
            if device is None:
                device = wanted_device or \
                    f"dev-{new_id(int(self.clock.now().timestamp() * 1000))[-12:]}"
                write_meta(c, "device_id", device)
            if read_meta(c, "projection_layout") != PROJECTION_LAYOUT:
                self._rebuild(c)  # projections are derived: a new layout only needs a replay
        return device

    @staticmethod
    def _schema_version(c: Conn) -> int:
        row = c.execute("SELECT to_regclass('meta') IS NOT NULL AS present").fetchone()
        if row is None or not row["present"]:
            return 0
        return int(read_meta(c, "schema_version") or 0)

    def get_setting(self, setting: Setting, qualifier: str = "") -> str | None:
        with self._pool.connection() as c:
            return read_meta(c, setting.key(qualifier))

    def set_setting(self, setting: Setting, value: str, qualifier: str = "") -> None:
        with self._locked() as c:
            write_meta(c, setting.key(qualifier), value)

    def settings_of(self, setting: Setting) -> dict[str, str]:
        with self._pool.connection() as c:
            rows = c.execute("SELECT key, value FROM meta WHERE key = %s OR key LIKE %s",
                             (setting.key(), setting.key() + ":%")).fetchall()
        return {q: str(r["value"]) for r in rows
                if (q := setting.qualifier_of(r["key"])) is not None}

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
    def transaction(self) -> Iterator[PostgresTx]:
        with self._locked() as conn:
            yield PostgresTx(conn, self._sealer)

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

    def keyword_candidates(self, terms: list[str], filters: Filters, limit: int,
                           rare_only: bool = False) -> list[tuple[Brief, float]]:
        with self._pool.connection() as c:
            return self._keywords.candidates(c, terms, filters, limit, rare_only)

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
        with self._locked() as c:
            S.drop_other_models(c, keep_model)

    def vector_candidates(self, query: Array, filters: Filters, model: str,
                          limit: int) -> list[tuple[Brief, float]]:
        if filters.user_id is None:
            raise ValueError("vector search needs a user scope")
        with self._pool.connection() as c:
            return S.vector_candidates(c, query, filters, model, limit)

    def similarities(self, query: Array, user_id: str, model: str,
                     memory_ids: Iterable[str]) -> dict[str, float]:
        with self._pool.connection() as c:
            return S.similarities(c, query, user_id, model, memory_ids)

    # ------------------------------------------------------------ the log

    def history(self, memory_id: str) -> list[Event]:
        with self._pool.connection() as c:
            rows = c.execute(f"SELECT {R.EVENT_COLUMNS} FROM events WHERE memory_id = %s "
                             f"ORDER BY {MERGE_ORDER}", (memory_id,)).fetchall()
        return [R.event_from(row) for row in rows]

    def events(self) -> Iterator[Event]:
        for _, event in self._stream(MERGE_ORDER):
            yield event

    def chain_events(self) -> Iterator[tuple[int, Event]]:
        return self._stream('device_id COLLATE "C", seq')

    def _stream(self, order: str) -> Iterator[tuple[int, Event]]:
        """The log in `order`, streamed by a server-side cursor in one snapshot."""
        with self._pool.connection() as c, c.transaction(), \
                c.cursor(name="engram_events") as cursor:
            cursor.itersize = 2000
            cursor.execute(f"SELECT pos, {R.EVENT_COLUMNS} FROM events ORDER BY {order}")
            for row in cursor:
                yield row["pos"], R.event_from(row)

    def events_after(self, vector: Mapping[str, int]) -> Iterator[Event]:
        for device, head in sorted(self.heads().items()):
            if head.seq > vector.get(device, 0):
                with self._pool.connection() as c:
                    rows = c.execute(
                        f"SELECT {R.EVENT_COLUMNS} FROM events WHERE device_id = %s AND "
                        "seq > %s ORDER BY seq", (device, vector.get(device, 0))).fetchall()
                yield from (R.event_from(row) for row in rows)

    def heads(self) -> dict[str, Head]:
        with self._pool.connection() as c:
            rows = c.execute(
                "SELECT device_id, seq, hash, hlc FROM events WHERE (device_id, seq) IN "
                "(SELECT device_id, MAX(seq) FROM events GROUP BY device_id)").fetchall()
        return {row["device_id"]: R.head_from(row) for row in rows}

    def rebuild(self) -> int:
        """Drop every projection, recreate it empty, and replay the whole log into it."""
        with self._locked() as c:
            return self._rebuild(c)

    def _rebuild(self, c: Conn) -> int:
        for table in PROJECTION_TABLES:
            c.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
        run_script(c, PROJECTIONS_DDL)
        rows = c.execute(f"SELECT {R.EVENT_COLUMNS} FROM events "
                         f"ORDER BY {MERGE_ORDER}").fetchall()
        state = fold([R.event_from(row) for row in rows])
        PP.write_all(c, state.values())
        c.execute("DELETE FROM embeddings e WHERE NOT EXISTS "
                  "(SELECT 1 FROM memories m WHERE m.content_hash = e.content_hash)")
        write_meta(c, "projection_layout", PROJECTION_LAYOUT)
        c.execute("ANALYZE memories")
        self._keywords.clear()
        return len(state)

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


def _configure(conn: Conn) -> None:
    """Plan every statement for its parameters and the tables as they are now: psycopg
    prepares repeated statements, and a generic plan cached while a table was small keeps
    scanning it whole once it is large (measured: appends fell to a quarter of the speed)."""
    conn.execute("SET plan_cache_mode = force_custom_plan")


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
