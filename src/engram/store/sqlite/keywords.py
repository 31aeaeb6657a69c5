"""Keyword search over the SQLite store's FTS5 index: BM25 over a query's informative terms,
on a read-only connection per thread, with term and scope counts cached."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from engram.query import Brief, Filters
from engram.store import rows as R
from engram.store.keyword_layout import (
    INDEX_COLUMNS,
    INDEX_WEIGHTS,
    MAX_TERM_ROWS,
    count_is_current,
    informative,
)
from engram.store.sqlite import projection as P
from engram.store.sqlite.files import MMAP_BYTES

BEST_FIRST_FACTOR = 4  # rows fetched per wanted one before filtering (see _best_then_filter)
_WEIGHTS = ", ".join(str(w) for w in INDEX_WEIGHTS)


class KeywordSearch:
    """The keyword side of `SQLiteStore`. It sees what is committed; a search never runs
    inside a write transaction."""

    def __init__(self, path: Path | str, busy_timeout_s: float) -> None:
        self.path, self._busy_timeout_s = path, busy_timeout_s
        self._readers = threading.local()  # keyword search's connection, one per thread
        self._reader_conns: list[sqlite3.Connection] = []
        self._term_cache: dict[str, tuple[int, int]] = {}  # stem -> (rows, store size then)
        self._scope_sizes: dict[str, tuple[int, int]] = {}  # user -> (rows, store size then)
        self._stems: dict[str, str] = {}  # query term -> the index's stem of it

    def close(self) -> None:
        for reader in self._reader_conns:
            reader.close()

    def forget_counts(self) -> None:
        """After a rebuild: cached term counts describe an index that is gone."""
        self._term_cache.clear()

    def candidates(self, terms: list[str], filters: Filters, limit: int,
                   rare_only: bool = False) -> list[tuple[Brief, float]]:
        """BM25 over the query's informative terms (see `_document_counts`), best first;
        with `rare_only`, nothing when every term is common (no own-text fallback)."""
        conn = self._reader()
        total = _size(conn)
        query = self._match(conn, terms, total, rare_only)
        if query is None:
            return []
        match, newest = query
        where, params = P.where(filters)
        if self._mostly_in_scope(conn, filters, total):
            found = self._best_then_filter(conn, match, where, params, limit, newest)
            if found is not None:
                return found
        rows = conn.execute(
            f"SELECT {R.BRIEF}, -bm25(memories_fts, {_WEIGHTS}) AS score FROM memories_fts "
            "JOIN memories m ON m.rowid = memories_fts.rowid WHERE memories_fts MATCH ? "
            f"AND {where} ORDER BY {'m.rowid DESC' if newest else 'score DESC, m.rowid'} "
            "LIMIT ?", (match, *params, limit))
        found = [(R.brief_from(row), float(row["score"])) for row in rows]
        return sorted(found, key=lambda hit: -hit[1]) if newest else found

    def _best_then_filter(self, conn: sqlite3.Connection, match: str, where: str,
                          params: list[Any], limit: int,
                          newest: bool) -> list[tuple[Brief, float]] | None:
        """The best-scoring rows of the whole index (the newest, with `newest`), then the
        filter over them: exact when at least `limit` pass (every row that passes but was not
        fetched scores lower), or when the index had no more rows; None otherwise. It spares
        the join of every matching row with `memories` where most rows pass anyway (one
        user's device). The rows are read `limit` at a time, in that order, until `limit`
        pass: usually one read."""
        fetch = BEST_FIRST_FACTOR * limit
        best = conn.execute(
            f"SELECT rowid, -bm25(memories_fts, {_WEIGHTS}) AS score FROM memories_fts "
            f"WHERE memories_fts MATCH ? ORDER BY {'rowid DESC' if newest else 'score DESC, rowid'}"
            " LIMIT ?", (match, fetch)).fetchall()
        scores = {row[0]: float(row[1]) for row in best}
        if not scores:
            return []
        ranked_ids = list(scores)
        rows: list[sqlite3.Row] = []
        for start in range(0, len(ranked_ids), limit):  # every row read scores above the rest
            chunk = ranked_ids[start:start + limit]
            rows += conn.execute(
                # NOT INDEXED: by row id, never by walking the user's index past a million rows
                f"SELECT m.rowid, {R.BRIEF} FROM memories m NOT INDEXED WHERE m.rowid IN "
                f"({', '.join('?' * len(chunk))}) AND {where}", (*chunk, *params)).fetchall()
            if len(rows) >= limit:
                break
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

    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection for keyword search: `Hybrid` runs it beside
        the vector search (and the query's embedding) in another thread. It sees what is
        committed; a search never runs inside a write transaction."""
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=self._busy_timeout_s, uri=True)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
            conn.execute("CREATE VIRTUAL TABLE temp.query_terms USING fts5(term, "
                         "tokenize='porter unicode61 remove_diacritics 2')")
            conn.execute("CREATE VIRTUAL TABLE temp.query_stems USING "
                         "fts5vocab(temp, query_terms, 'instance')")
            conn.execute("CREATE VIRTUAL TABLE temp.memory_terms USING "
                         "fts5vocab(main, memories_fts, 'row')")
            self._readers.conn = conn
            self._reader_conns.append(conn)
        return conn

    def _match(self, conn: sqlite3.Connection, terms: list[str], total: int,
               rare_only: bool = False) -> tuple[str, bool] | None:
        """The FTS5 query for these terms (`total`: the store's size) and whether to read its
        newest rows rather than score them all; None when no memory has any of them (or,
        with `rare_only`, when every one is common)."""
        counted, common = self._document_counts(conn, terms, total)
        if not counted or (common and rare_only):
            return None
        if common:  # only common words: the rarest, in the memories' own text (the
            # neighbours' columns hold each occurrence four times over); past MAX_TERM_ROWS
            # rows, scoring them all costs milliseconds for a word that tells little apart,
            # so the newest rows holding it are the ones scored (docs/recall.md)
            rows, term = counted[0]
            return f"{INDEX_COLUMNS[0]} : {_any_of([term])}", rows > MAX_TERM_ROWS
        return _any_of([t for _, t in counted]), False

    def _document_counts(self, c: sqlite3.Connection, terms: list[str],
                         total: int) -> tuple[list[tuple[int, str]], bool]:
        """(rows containing it, term) for the query's informative terms, rarest first.

        FTS5 scores every row that matches any term, so a common term costs time in
        proportion to its rows while adding little weight (none at all past half the rows).
        A common term is dropped (`keyword_layout.informative`); the rarest term always stays
        (then `common` is True). Measured in docs/recall.md."""
        if not terms:
            return [], False
        stems = self._stems_of(c, terms)
        docs = self._term_rows(c, set(stems.values()), total)
        return informative(sorted((docs.get(stems.get(term, ""), 0), term) for term in terms),
                           total)

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
        (5 ms for a term in 289k rows), so counts are cached (`count_is_current`)."""
        fresh = {t for t in stems if not count_is_current(self._term_cache.get(t), total)}
        if fresh:
            found = dict(c.execute(
                f"SELECT term, doc FROM temp.memory_terms WHERE term IN "
                f"({', '.join('?' * len(fresh))})", list(fresh)).fetchall())
            if len(self._term_cache) > 50_000:
                self._term_cache.clear()
            for term in fresh:
                self._term_cache[term] = (found.get(term, 0), total)
        return {t: self._term_cache[t][0] for t in stems}


def _size(conn: sqlite3.Connection) -> int:
    """Rows in `memories`: the highest row id for a large store (exact enough, and free),
    counted when small (so two stores holding the same memories drop the same terms)."""
    highest = int(conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM memories").fetchone()[0])
    if highest >= 10_000:
        return highest
    return int(conn.execute("SELECT COUNT(*) FROM memories").fetchone()[0])


def _any_of(terms: list[str]) -> str:
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
