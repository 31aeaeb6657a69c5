"""The embedded store: one SQLite file in WAL mode holding the event log and its projections."""

from __future__ import annotations

import contextlib
import random
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np

from engram.clock import Clock
from engram.embed.vectors import Array, ScopeIndex, from_blob
from engram.errors import InvalidInput, ReadOnly, StoreError
from engram.log.chain import Head, Sealer
from engram.log.events import Event, new_id
from engram.log.projection import fold
from engram.model import MemoryEntry
from engram.query import Brief, Filters
from engram.store import rows as R
from engram.store.base import DerivedReads
from engram.store.keyword_layout import INDEX_WEIGHTS
from engram.store.settings import Setting
from engram.store.sqlite import projection as P
from engram.store.sqlite.files import (
    DB_FILE,
    MMAP_BYTES,
    failed_write,
    prepare,
    read_only,
    unusable,
)
from engram.store.sqlite.keywords import KeywordSearch
from engram.store.sqlite.schema import (
    MIGRATIONS,
    PROJECTION_LAYOUT,
    PROJECTION_TABLES,
    PROJECTIONS_DDL,
    run_script,
)
from engram.store.sqlite.tx import MERGE_ORDER, SQLiteTx
from engram.store.sqlite.vectors import VectorScopes

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
        self.read_only = read_only(self.directory, self.path)
        target = prepare(self.directory, self.path, self.read_only)
        self._busy_timeout_s = busy_timeout_s
        try:
            self._conn = sqlite3.connect(target, isolation_level=None, timeout=busy_timeout_s,
                                         check_same_thread=False, uri=True)
        except sqlite3.Error as exc:
            raise unusable(self.path, exc) from None
        self._conn.row_factory = sqlite3.Row
        try:
            self._retrying(lambda: self._setup(synchronous))
            self.device_id = self._device_id(device_id)
        except sqlite3.Error as exc:
            self._conn.close()
            raise unusable(self.path, exc) from None
        self._sealer = Sealer(self.device_id, clock)
        self.vectors = VectorScopes(self._conn, self.directory)
        self.keywords = KeywordSearch(target, busy_timeout_s)
        self._closed = False
        if self._meta("projection_layout") != PROJECTION_LAYOUT:
            self.rebuild()  # projections are derived: a new layout only needs a replay

    # ------------------------------------------------------------ setup

    def _setup(self, synchronous: str) -> None:
        c = self._conn
        c.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_s * 1000)}")
        c.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        if self.read_only:
            if c.execute("PRAGMA user_version").fetchone()[0] != len(MIGRATIONS):
                raise ReadOnly(f"store: {self.path} needs an upgrade this Engram would write, "
                               "but it is read-only; open it once where it can be written")
            return
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

    def get_setting(self, setting: Setting, qualifier: str = "") -> str | None:
        return self._meta(setting.key(qualifier))

    def set_setting(self, setting: Setting, value: str, qualifier: str = "") -> None:
        with self._write() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (setting.key(qualifier), value))

    def settings_of(self, setting: Setting) -> dict[str, str]:
        rows = self._conn.execute("SELECT key, value FROM meta WHERE key = ? OR key LIKE ?",
                                  (setting.key(), setting.key() + ":%")).fetchall()
        return {q: str(v) for k, v in rows if (q := setting.qualifier_of(k)) is not None}

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
        if not self.read_only:
            self.vectors.save()
        self.keywords.close()
        if not self.read_only:
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
        if self.read_only:
            raise ReadOnly(f"store: {self.path} is read-only, so nothing can be written to "
                           "it; make it writable, or copy it elsewhere (engram migrate)")
        try:
            self._retrying(lambda: self._conn.execute("BEGIN IMMEDIATE"))
            try:
                yield self._conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise failed_write(self.path, exc) from exc

    @contextmanager
    def transaction(self) -> Iterator[SQLiteTx]:
        with self._write() as conn:
            yield SQLiteTx(conn, self._sealer)

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

    def keyword_candidates(self, terms: list[str], filters: Filters, limit: int,
                           rare_only: bool = False) -> list[tuple[Brief, float]]:
        return self.keywords.candidates(terms, filters, limit, rare_only)

    def get_many(self, memory_ids: Iterable[str]) -> dict[str, MemoryEntry]:
        wanted = list(dict.fromkeys(memory_ids))
        rows = self._conn.execute(
            f"SELECT * FROM memories WHERE id IN ({', '.join('?' * len(wanted))})", wanted)
        return {row["id"]: R.entry_from(row) for row in rows}

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
        rows = self._conn.execute(f"SELECT {R.EVENT_COLUMNS} FROM events WHERE memory_id = ? "
                                  f"ORDER BY {MERGE_ORDER}", (memory_id,))
        return [R.event_from(row) for row in rows]

    def events(self) -> Iterator[Event]:
        cursor = self._conn.execute(f"SELECT {R.EVENT_COLUMNS} FROM events ORDER BY {MERGE_ORDER}")
        for row in cursor:
            yield R.event_from(row)

    def events_after(self, vector: Mapping[str, int]) -> Iterator[Event]:
        for device, head in sorted(self.heads().items()):
            if head.seq > vector.get(device, 0):
                rows = self._conn.execute(
                    f"SELECT {R.EVENT_COLUMNS} FROM events WHERE device_id = ? AND seq > ? "
                    "ORDER BY seq", (device, vector.get(device, 0)))
                yield from (R.event_from(row) for row in rows)

    def heads(self) -> dict[str, Head]:
        rows = self._conn.execute(
            "SELECT device_id, seq, hash, hlc FROM events WHERE (device_id, seq) IN "
            "(SELECT device_id, MAX(seq) FROM events GROUP BY device_id)")
        return {row["device_id"]: R.head_from(row) for row in rows}

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

    def chain_events(self) -> Iterator[tuple[int, Event]]:
        for row in self._conn.execute(f"SELECT pos, {R.EVENT_COLUMNS} FROM events "
                                      "ORDER BY device_id, seq"):
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
        self.keywords.forget_counts()
        shutil.rmtree(self.directory / "vectors", ignore_errors=True)
        return len(state)

    def redact_residue(self) -> None:
        """After a forget: merge the keyword index so no term of the forgotten text survives
        in an old segment, then truncate the WAL."""
        with self._write() as conn:
            conn.execute("INSERT INTO memories_fts(memories_fts) VALUES ('optimize')")
        self.checkpoint()
