"""The embedded store: one SQLite file in WAL mode holding the event log and its projections."""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from engram.clock import Clock
from engram.embed.vectors import Array, ScopeIndex, Vec8, from_blob, to_blob
from engram.errors import InvalidInput, StoreError
from engram.log import chain
from engram.log.events import (
    HLC,
    Draft,
    Event,
    EventType,
    new_id,
)
from engram.log.projection import apply, fold, targets
from engram.model import MemoryEntry
from engram.query import Brief, Filters
from engram.store import rows as R
from engram.store.base import DerivedReads
from engram.store.keyword_layout import INDEX_COLUMNS, INDEX_WEIGHTS, MAX_TERM_ROWS, MAX_TERM_SHARE
from engram.store.sqlite import projection as P
from engram.store.sqlite.schema import (
    MIGRATIONS,
    PROJECTION_LAYOUT,
    PROJECTION_TABLES,
    PROJECTIONS_DDL,
    run_script,
)
from engram.store.sqlite.vectors import VectorScopes

DB_FILE = "engram.db"
T = TypeVar("T")

# Inactive memories are skipped by over-fetching from the vector index while they are few,
# by an allow-list of the active ones beyond that.
MAX_EXCLUDED = 2000
BEST_FIRST_FACTOR = 4  # rows fetched per wanted one before filtering (see _best_then_filter)
_WEIGHTS = ", ".join(str(w) for w in INDEX_WEIGHTS)


class SQLiteStore(DerivedReads):
    """Store protocol over one SQLite file. Every write is one IMMEDIATE transaction."""

    def __init__(self, directory: str | Path, *, clock: Clock, device_id: str | None = None,
                 busy_timeout_s: float = 30.0, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise InvalidInput("synchronous", f"{synchronous!r} is not a durability level",
                               "use NORMAL (survives a process crash) or FULL / EXTRA "
                               "(also survive power loss)")
        self.directory = Path(directory)
        self.path = self.directory / DB_FILE
        self.clock = clock
        if self.directory.exists() and not self.directory.is_dir():
            raise InvalidInput("data", f"{self.directory} is a file, not a directory",
                               "point --data / ENGRAM_DATA at a directory")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=busy_timeout_s,
                                     check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._busy_timeout_s = busy_timeout_s
        self._retrying(lambda: self._setup(synchronous))
        self.device_id = self._device_id(device_id)
        self._hlc = HLC(0)
        self.vectors = VectorScopes(self._conn, self.directory)
        self._readers = threading.local()  # keyword search's connection, one per thread
        self._reader_conns: list[sqlite3.Connection] = []
        self._term_cache: dict[str, tuple[int, int]] = {}  # stem -> (rows, store size then)
        self._scope_sizes: dict[str, tuple[int, int]] = {}  # user -> (rows, store size then)
        self._stems: dict[str, str] = {}  # query term -> the index's stem of it
        self._closed = False
        if self._meta("projection_layout") != PROJECTION_LAYOUT:
            self.rebuild()  # projections are derived: a new layout only needs a replay

    # ------------------------------------------------------------ setup

    def _setup(self, synchronous: str) -> None:
        c = self._conn
        c.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
        c.execute("PRAGMA journal_mode = WAL")
        c.execute(f"PRAGMA synchronous = {synchronous}")
        c.execute("PRAGMA secure_delete = ON")
        c.execute("PRAGMA foreign_keys = ON")
        version = c.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"store: {self.path} was written by a newer Engram (schema {version}, this "
                f"version knows {len(MIGRATIONS)}); upgrade engram-memory to open it")
        if version == len(MIGRATIONS):
            return
        with self._write():
            version = c.execute("PRAGMA user_version").fetchone()[0]
            for migration in MIGRATIONS[version:]:
                migration(c)
            c.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def get_setting(self, key: str) -> str | None:
        return self._meta(f"setting.{key}")

    def set_setting(self, key: str, value: str) -> None:
        with self._write() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"setting.{key}", value))

    def _device_id(self, wanted: str | None) -> str:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'device_id'").fetchone()
        if row:
            return str(row[0])
        device = wanted or f"dev-{new_id(int(self.clock.now().timestamp() * 1000))[-12:]}"
        with self._write():
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('device_id', ?)", (device,))
        return str(self._conn.execute("SELECT value FROM meta WHERE key='device_id'").fetchone()[0])

    def close(self) -> None:
        """Save derived caches, fold the WAL in, release the file. Closing twice is fine."""
        if self._closed:
            return
        self.vectors.save()
        for reader in self._reader_conns:
            reader.close()
        self.checkpoint()
        self._conn.close()
        self._closed = True

    def checkpoint(self) -> None:
        """Fold the WAL into the main file and truncate it (so no old page lingers there)."""
        # Another process may hold the WAL; it checkpoints on its own close.
        with contextlib.suppress(sqlite3.OperationalError):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # ------------------------------------------------------------ transactions

    def _retrying(self, operation: Callable[[], T]) -> T:
        """Run `operation`, retrying with jittered backoff while another process holds a lock."""
        deadline = time.monotonic() + self._busy_timeout_s
        delay = 0.01
        while True:
            try:
                return operation()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise StoreError(f"store: {self.path} stayed locked by another writer for "
                                     f"{self._busy_timeout_s:.0f} s; try again") from exc
                time.sleep(delay * (1 + random.random()))
                delay = min(delay * 2, 0.5)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._retrying(lambda: self._conn.execute("BEGIN IMMEDIATE"))
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[_SQLiteTx]:
        with self._write() as conn:
            yield _SQLiteTx(self, conn)

    # ------------------------------------------------------------ reads

    def get(self, memory_id: str) -> MemoryEntry | None:
        return P.get(self._conn, memory_id)

    def select(self, filters: Filters, *, limit: int | None = None, offset: int = 0,
             newest_first: bool = True) -> list[MemoryEntry]:
        where, params = P.where(filters)
        order = "DESC" if newest_first else "ASC"
        sql = (f"SELECT * FROM memories m WHERE {where} "
               f"ORDER BY m.occurred_at {order}, m.id {order} LIMIT ? OFFSET ?")
        rows = self._conn.execute(sql, (*params, -1 if limit is None else limit, offset))
        return [R.entry_from(row) for row in rows]

    def count(self, filters: Filters) -> int:
        where, params = P.where(filters)
        return int(self._conn.execute(f"SELECT COUNT(*) FROM memories m WHERE {where}",
                                      params).fetchone()[0])

    def keyword_candidates(self, terms: list[str], filters: Filters,
                           limit: int) -> list[tuple[Brief, float]]:
        """BM25 over the query's informative terms (see `_document_counts`), best first."""
        conn = self._reader()
        total = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM memories").fetchone()[0]
        match = self._match(conn, terms, total)
        if match is None:
            return []
        where, params = P.where(filters)
        if self._mostly_in_scope(conn, filters, total):
            found = self._best_then_filter(conn, match, where, params, limit)
            if found is not None:
                return found
        rows = conn.execute(
            f"SELECT {R.BRIEF}, -bm25(memories_fts, {_WEIGHTS}) AS score FROM memories_fts "
            "JOIN memories m ON m.rowid = memories_fts.rowid WHERE memories_fts MATCH ? "
            f"AND {where} ORDER BY score DESC, m.rowid LIMIT ?", (match, *params, limit))
        return [(R.brief_from(row), float(row["score"])) for row in rows]

    def _best_then_filter(self, conn: sqlite3.Connection, match: str, where: str,
                          params: list[Any], limit: int) -> list[tuple[Brief, float]] | None:
        """The best-scoring rows of the whole index, then the filter over them: exact when at
        least `limit` pass (every row that passes but was not fetched scores lower), or when
        the index had no more rows; None otherwise. It spares the join of every matching row
        with `memories` where most rows pass anyway (one user's device)."""
        fetch = BEST_FIRST_FACTOR * limit
        best = conn.execute(
            f"SELECT rowid, -bm25(memories_fts, {_WEIGHTS}) AS score FROM memories_fts "
            "WHERE memories_fts MATCH ? ORDER BY score DESC, rowid LIMIT ?",
            (match, fetch)).fetchall()
        scores = {row[0]: float(row[1]) for row in best}
        if not scores:
            return []
        rows = conn.execute(
            # NOT INDEXED: by row id, never by walking the user's index past a million rows
            f"SELECT m.rowid, {R.BRIEF} FROM memories m NOT INDEXED WHERE m.rowid IN "
            f"({', '.join('?' * len(scores))}) AND {where}", (*scores, *params)).fetchall()
        if len(rows) < limit and len(best) == fetch:
            return None
        ranked = sorted(rows, key=lambda row: (-scores[row["rowid"]], row["rowid"]))[:limit]
        return [(R.brief_from(row), scores[row["rowid"]]) for row in ranked]

    def _mostly_in_scope(self, conn: sqlite3.Connection, filters: Filters,
                         total: int) -> bool:
        """Whether the user holds at least half the store (counts cached like term counts)."""
        if filters.user_id is None:
            return not filters.narrows
        cached = self._scope_sizes.get(filters.user_id)
        if cached is None or abs(cached[1] - total) > total // 100:
            size = conn.execute("SELECT COUNT(*) FROM memories WHERE user_id = ?",
                                (filters.user_id,)).fetchone()[0]
            cached = self._scope_sizes[filters.user_id] = (size, total)
        return bool(total) and cached[0] >= total / 2

    def get_many(self, memory_ids: Iterable[str]) -> dict[str, MemoryEntry]:
        wanted = list(dict.fromkeys(memory_ids))
        rows = self._conn.execute(
            f"SELECT * FROM memories WHERE id IN ({', '.join('?' * len(wanted))})", wanted)
        return {row["id"]: R.entry_from(row) for row in rows}

    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection for keyword search: `Hybrid` runs it beside
        the vector search (and the query's embedding) in another thread. It sees what is
        committed; a search never runs inside a write transaction."""
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=self._busy_timeout_s)
            conn.row_factory = sqlite3.Row
            conn.execute("CREATE VIRTUAL TABLE temp.query_terms USING fts5(term, "
                         "tokenize='porter unicode61 remove_diacritics 2')")
            conn.execute("CREATE VIRTUAL TABLE temp.query_stems USING "
                         "fts5vocab(temp, query_terms, 'instance')")
            conn.execute("CREATE VIRTUAL TABLE temp.memory_terms USING "
                         "fts5vocab(main, memories_fts, 'row')")
            self._readers.conn = conn
            self._reader_conns.append(conn)
        return conn

    def _match(self, conn: sqlite3.Connection, terms: list[str], total: int) -> str | None:
        """The FTS5 query for these terms (`total`: the store's size), or None when no memory
        has any of them."""
        counted, common = self._document_counts(conn, terms, total)
        if not counted:
            return None
        if common:  # only common words: the rarest, in the memories' own text (the
            # neighbours' columns hold each occurrence four times over)
            return f"{INDEX_COLUMNS[0]} : {_any_of([counted[0][1]])}"
        return _any_of([t for _, t in counted])

    def _document_counts(self, c: sqlite3.Connection, terms: list[str],
                         total: int) -> tuple[list[tuple[int, str]], bool]:
        """(rows containing it, term) for the query's informative terms, rarest first.

        FTS5 scores every row that matches any term, so a common term costs time in
        proportion to its rows while adding little weight (none at all past half the rows).
        A term in more than MAX_TERM_SHARE of the rows, or more than MAX_TERM_ROWS rows, is
        dropped; the rarest term always stays (then `common` is True). Measured in
        docs/recall.md."""
        if not terms:
            return [], False
        stems = self._stems_of(c, terms)
        docs = self._term_rows(c, set(stems.values()), total)
        counted = sorted((docs.get(stems.get(term, ""), 0), term) for term in terms)
        counted = [(n, t) for n, t in counted if n > 0]
        cap = min(MAX_TERM_SHARE * total, MAX_TERM_ROWS)
        kept = [(n, t) for n, t in counted if n <= cap]
        return (kept, False) if kept or not counted else (counted[:1], True)

    def _stems_of(self, c: sqlite3.Connection, terms: list[str]) -> dict[str, str]:
        """Each term as the index's tokenizer stems it (FTS5 does it, so it is exact),
        remembered: queries repeat their words."""
        new = [t for t in dict.fromkeys(terms) if t not in self._stems]
        if new:
            c.execute("DELETE FROM temp.query_terms")
            c.executemany("INSERT INTO temp.query_terms (rowid, term) VALUES (?, ?)",
                          list(enumerate(new, start=1)))
            found = dict(c.execute("SELECT doc, term FROM temp.query_stems").fetchall())
            if len(self._stems) > 50_000:
                self._stems.clear()
            for i, term in enumerate(new, start=1):
                self._stems[term] = found.get(i, "")
        return {t: self._stems[t] for t in terms}

    def _term_rows(self, c: sqlite3.Connection, stems: set[str],
                   total: int) -> dict[str, int]:
        """Rows holding each stem. FTS5 counts them by walking the term's whole posting list
        (5 ms for a term in 289k rows), so counts are cached; in a store of 10k rows or more
        a count may be reused until the store has grown or shrunk by 1%."""
        fresh = {t for t in stems if (hit := self._term_cache.get(t)) is None
                 or not (hit[1] == total or (total >= 10_000
                                             and abs(hit[1] - total) <= total // 100))}
        if fresh:
            found = dict(c.execute(
                f"SELECT term, doc FROM temp.memory_terms WHERE term IN "
                f"({', '.join('?' * len(fresh))})", list(fresh)).fetchall())
            if len(self._term_cache) > 50_000:
                self._term_cache.clear()
            for term in fresh:
                self._term_cache[term] = (found.get(term, 0), total)
        return {t: self._term_cache[t][0] for t in stems}

    def missing_embeddings(self, model: str, hashes: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(hashes))
        have: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            have |= {r[0] for r in self._conn.execute(
                f"SELECT content_hash FROM embeddings WHERE model = ? AND content_hash IN "
                f"({', '.join('?' * len(chunk))})", (model, *chunk))}
        return set(wanted) - have

    def unembedded(self, model: str, limit: int) -> list[tuple[str, str]]:
        """(content_hash, content) of live memories that have no vector from `model` yet."""
        rows = self._conn.execute(
            "SELECT m.content_hash, MIN(m.content) FROM memories m WHERE NOT EXISTS (SELECT 1 "
            "FROM embeddings e WHERE e.model = ? AND e.content_hash = m.content_hash) "
            "GROUP BY m.content_hash LIMIT ?", (model, limit))
        return [(r[0], r[1]) for r in rows]

    def drop_embeddings(self, keep_model: str) -> None:
        """Delete every vector not made by `keep_model` (after a model switch)."""
        with self._write() as c:
            c.execute("DELETE FROM embeddings WHERE model != ?", (keep_model,))
        self.vectors.reset()

    def vector_candidates(self, query: Array, filters: Filters, model: str,
                          limit: int) -> list[tuple[Brief, float]]:
        """Nearest memories by cosine; filters choose the candidates before the top-k cut."""
        if filters.user_id is None:
            raise ValueError("vector search needs a user scope")
        excluded = self._excluded(filters)
        scan = filters.narrows or len(excluded) > MAX_EXCLUDED  # exactly, the allowed rows
        index = self.vectors.scope(filters.user_id, model, full=scan)
        if index is None:
            return []
        if scan:
            assert isinstance(index, ScopeIndex)
            where, params = P.where(filters)
            found = index.search(query, limit, [r[0] for r in self._conn.execute(
                f"SELECT m.rowid FROM memories m WHERE {where}", params)])
        else:
            found = [hit for hit in index.search(query, limit + len(excluded))
                     if hit[0] not in excluded][:limit]
        rows = {r["rowid"]: r for r in self._conn.execute(
            f"SELECT m.rowid, {R.BRIEF} FROM memories m WHERE m.rowid IN "
            f"({', '.join('?' * len(found))})", [rowid for rowid, _ in found])}
        return [(R.brief_from(rows[rowid]), sim) for rowid, sim in found if rowid in rows]

    def _excluded(self, filters: Filters) -> set[int]:
        """Rowids in the user's scope whose status the filters leave out (usually few: the
        `memories_inactive` index holds only memories that are not active)."""
        if filters.statuses is None:
            return set()
        keep = [status.value for status in filters.statuses]
        return {r[0] for r in self._conn.execute(
            "SELECT rowid FROM memories WHERE user_id = ? AND status <> 'active' AND status "
            f"NOT IN ({', '.join('?' * len(keep))})", (filters.user_id, *keep))}

    def similarities(self, query: Array, user_id: str, model: str,
                     memory_ids: Iterable[str]) -> dict[str, float]:
        """Cosine of the query with each of these memories' vectors (read from the table:
        a handful of rows, and no scope needs loading for them)."""
        wanted = list(dict.fromkeys(memory_ids))
        if not wanted:
            return {}
        rows = self._conn.execute(
            "SELECT m.id, e.vec FROM memories m JOIN embeddings e ON e.model = ? AND "
            "e.content_hash = m.content_hash WHERE +m.user_id = ? AND m.id IN "
            f"({', '.join('?' * len(wanted))})", (model, user_id, *wanted)).fetchall()
        if not rows:
            return {}
        found = np.stack([from_blob(r[1]) for r in rows]).astype(np.float32)
        sims = found @ query / np.maximum(np.linalg.norm(found, axis=1), 1e-12)
        return {r[0]: float(s) for r, s in zip(rows, sims, strict=True)}

    def history(self, memory_id: str) -> list[Event]:
        rows = self._conn.execute(
            f"SELECT {R.EVENT_COLUMNS} FROM events WHERE memory_id = ? ORDER BY pos", (memory_id,))
        return [R.event_from(row) for row in rows]

    def events(self) -> Iterator[Event]:
        cursor = self._conn.execute(f"SELECT {R.EVENT_COLUMNS} FROM events ORDER BY pos")
        for row in cursor:
            yield R.event_from(row)

    def stats(self) -> dict[str, object]:
        c = self._conn
        by = {
            col: dict(c.execute(f"SELECT {col}, COUNT(*) FROM memories GROUP BY {col}").fetchall())
            for col in ("tier", "memory_type")
        }
        files = [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
        return {
            "path": str(self.path),
            "device_id": self.device_id,
            "memories": c.execute("SELECT COUNT(*) FROM memories").fetchone()[0],
            "users": c.execute("SELECT COUNT(DISTINCT user_id) FROM memories").fetchone()[0],
            "events": c.execute("SELECT COUNT(*) FROM events").fetchone()[0],
            "vectors": dict(c.execute(
                "SELECT model, COUNT(*) FROM embeddings GROUP BY model").fetchall()),
            "by_tier": by["tier"],
            "by_type": by["memory_type"],
            "bytes_on_disk": sum(f.stat().st_size for f in files if f.exists()),
        }

    # ------------------------------------------------------------ log maintenance

    def events_with_positions(self) -> Iterator[tuple[int, Event]]:
        for row in self._conn.execute(f"SELECT pos, {R.EVENT_COLUMNS} FROM events ORDER BY pos"):
            yield row["pos"], R.event_from(row)

    def rebuild(self) -> int:
        """Drop every projection, recreate it empty, and replay the whole log into it."""
        with self._write() as conn:
            for table in PROJECTION_TABLES:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
            run_script(conn, PROJECTIONS_DDL)
            state = fold(list(self.events()))
            conn.executemany(P.UPSERT, [R.row_of(entry) for entry in state.values()])
            P.index_all(conn)
            conn.execute("DELETE FROM embeddings WHERE content_hash NOT IN "
                         "(SELECT content_hash FROM memories)")
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('projection_layout', ?)",
                         (PROJECTION_LAYOUT,))
        self.vectors.reset()
        self._term_cache.clear()
        shutil.rmtree(self.directory / "vectors", ignore_errors=True)
        return len(state)

    def redact_residue(self) -> None:
        """After a forget: merge the keyword index so no term of the forgotten text survives
        in an old segment, then truncate the WAL."""
        with self._write() as conn:
            conn.execute("INSERT INTO memories_fts(memories_fts) VALUES ('optimize')")
        self.checkpoint()


class _SQLiteTx:
    def __init__(self, store: SQLiteStore, conn: sqlite3.Connection) -> None:
        self._store, self._conn = store, conn

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

    def append(self, draft: Draft) -> Event:
        store, c = self._store, self._conn
        head = c.execute("SELECT hash, hlc FROM events ORDER BY pos DESC LIMIT 1").fetchone()
        seq = c.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE device_id = ?",
                        (store.device_id,)).fetchone()[0]
        event = chain.next_event(draft, device_id=store.device_id, seq=seq,
                                 now_ms=int(store.clock.now().timestamp() * 1000),
                                 clock=store._hlc, head_hlc=head["hlc"] if head else None,
                                 head_hash=head["hash"] if head else None)
        self._insert(event)
        store._hlc = event.hlc
        return event

    def import_events(self, events: list[Event]) -> int:
        c = self._conn
        added = 0
        for number, event in enumerate(events, start=1):
            known = c.execute("SELECT hash FROM events WHERE id = ?", (event.id,)).fetchone()
            head = c.execute("SELECT hash FROM events ORDER BY pos DESC LIMIT 1").fetchone()
            if chain.admit(number, event, stored_hash=known[0] if known else None,
                           head_hash=head[0] if head else None):
                self._insert(event)
                added += 1
        return added

    def _insert(self, event: Event) -> None:
        c = self._conn
        c.execute(
            f"INSERT INTO events ({R.EVENT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            R.event_row(event))
        if event.type is EventType.ACCESSED:  # hundreds of memories at once: columns only
            assert event.payload is not None
            P.note_accesses(c, event.payload["accesses"])
            return
        for memory_id in targets(event):
            current = P.get(c, memory_id)
            P.write(c, current, apply(current, event, memory_id))
            if event.type is EventType.FORGOTTEN and current is not None:
                # A vector can leak its text: the vectors of every text the memory ever had
                # go with it, unless another memory still has that text.
                for content in {current.content_hash, *_past_hashes(c, memory_id)}:
                    c.execute("DELETE FROM embeddings WHERE content_hash = ? AND NOT EXISTS "
                              "(SELECT 1 FROM memories WHERE content_hash = ?)",
                              (content, content))
        if event.type is EventType.FORGOTTEN:
            c.execute("UPDATE events SET payload = NULL WHERE memory_id = ? AND id != ?",
                      (event.memory_id, event.id))


def _past_hashes(c: sqlite3.Connection, memory_id: str) -> set[str]:
    """Content hashes a memory had, from its (not yet redacted) added and updated events."""
    found: set[str] = set()
    for (payload,) in c.execute(
            "SELECT payload FROM events WHERE memory_id = ? AND type IN (?, ?) AND payload "
            "IS NOT NULL", (memory_id, EventType.ADDED.value, EventType.UPDATED.value)):
        data = json.loads(payload)
        content = data.get("memory", data.get("changes", {})).get("content_hash")
        if content:
            found.add(content)
    return found


def _any_of(terms: list[str]) -> str:
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
