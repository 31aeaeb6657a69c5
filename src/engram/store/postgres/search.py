"""Candidate queries of the PostgreSQL store: keywords over the tsvector index, vectors over
pgvector (exact scans for small scopes, the model's HNSW index with iterative scans beyond).
Filters are part of every query, so they apply before the top-k cut."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable

import psycopg
from psycopg import sql
from psycopg.rows import DictRow

from engram.embed import vectors
from engram.embed.vectors import Array, Vec8
from engram.query import Brief, Filters
from engram.store import rows as R
from engram.store.keyword_layout import count_is_current, informative
from engram.store.postgres import projection as PP
from engram.store.postgres.schema import RANK_WEIGHTS, TS_CONFIG, read_meta, write_meta

Conn = psycopg.Connection[DictRow]
HNSW_EF_SEARCH = 100


class KeywordIndex:
    """BM25-style ranking over the tsvector index: each kept query term scores its ts_rank
    (weighted by index column) times its inverse document frequency, FTS5's formula. Stems
    and document counts are cached, as in the SQLite store."""

    def __init__(self) -> None:
        self._stems: dict[str, str] = {}  # query word -> tsquery text ('' when it has none)
        self._counts: dict[str, tuple[int, int]] = {}  # tsquery -> (rows, store size then)

    def clear(self) -> None:
        self._counts.clear()

    def candidates(self, c: Conn, terms: list[str], filters: Filters, limit: int,
                   rare_only: bool = False) -> list[tuple[Brief, float]]:
        total = _size(c)
        counted, common = self._document_counts(c, terms, total)
        if not counted or (common and rare_only):
            return []
        # Only common words: the rarest, in the memories' own text (class A), as in SQLite.
        queries = [_own_text(q) if common else q for _, q in counted]
        idf = [max(math.log((total - n + 0.5) / (n + 0.5)), 1e-6) for n, _ in counted]
        where, params = PP.where(filters)
        rows = c.execute(
            f"SELECT {PP.BRIEF}, (SELECT sum(q.idf * ts_rank('{RANK_WEIGHTS}', m.fts, "
            "q.query, 1)) FROM unnest(%s::tsquery[], %s::float8[]) AS q(query, idf)) "
            f"AS score FROM memories m WHERE m.fts @@ %s::tsquery AND {where} "
            "ORDER BY score DESC, m.id LIMIT %s",
            (queries, idf, " | ".join(f"({q})" for q in queries), *params, limit)
        ).fetchall()
        return [(R.brief_from(row), float(row["score"])) for row in rows]

    def _document_counts(self, c: Conn, terms: list[str],
                         total: int) -> tuple[list[tuple[int, str]], bool]:
        """(rows containing it, tsquery) for the query's informative terms, rarest first, and
        whether only common ones were left; the caps of `SQLiteStore._document_counts`."""
        missing = [t for t in dict.fromkeys(terms) if t not in self._stems]
        if missing:
            for row in c.execute(f"SELECT t, plainto_tsquery('{TS_CONFIG}', t)::text AS q "
                                 "FROM unnest(%s::text[]) AS t", (missing,)):
                self._stems[row["t"]] = row["q"]
        queries = {q for t in terms if (q := self._stems.get(t))}
        fresh = {q for q in queries if not count_is_current(self._counts.get(q), total)}
        if len(self._counts) > 50_000:
            self._counts.clear()
        for q in fresh:
            found = c.execute("SELECT COUNT(*) AS n FROM memories WHERE fts @@ %s::tsquery",
                              (q,)).fetchone()
            self._counts[q] = (int(found["n"]) if found else 0, total)
        return informative(sorted((self._counts[q][0], q) for q in queries), total)


def _own_text(query: str) -> str:
    """A tsquery restricted to weight class A (the memory's own text and its date)."""
    return re.sub(r"('(?:[^']|'')*')", r"\1:A", query)


def _size(c: Conn) -> int:
    """Rows in `memories`: the planner's estimate for large tables, counted when small."""
    row = c.execute("SELECT reltuples::bigint AS n FROM pg_class "
                    "WHERE oid = 'memories'::regclass").fetchone()
    estimate = int(row["n"]) if row else -1
    if estimate >= 10_000:
        return estimate
    counted = c.execute("SELECT COUNT(*) AS n FROM memories").fetchone()
    return int(counted["n"]) if counted else 0


def vector_candidates(c: Conn, query: Array, filters: Filters, model: str,
                      limit: int) -> list[tuple[Brief, float]]:
    """Nearest memories by cosine, best first. A scope of up to EXACT_LIMIT memories is
    scanned exactly; a larger one walks the model's HNSW index with iterative scans until
    `limit` rows pass the filter. Runs in one transaction (for the SET LOCALs)."""
    where, params = PP.where(filters)
    with c.transaction():
        dim = read_meta(c, f"vector_dim.{model}")
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
            (vector_text(query), *params, vector_text(query), limit)).fetchall()
    found = [(R.brief_from(r), float(r["sim"])) for r in rows]
    found.sort(key=lambda hit: -hit[1])  # an iterative scan may return slightly out of order
    return found


def similarities(c: Conn, query: Array, user_id: str, model: str,
                 memory_ids: Iterable[str]) -> dict[str, float]:
    """Cosine of the query with each of these memories' vectors."""
    rows = c.execute(
        "SELECT m.id, 1 - (e.vec <=> %s::halfvec) AS sim FROM memories m JOIN embeddings "
        "e ON e.content_hash = m.content_hash AND e.model = %s WHERE m.user_id = %s "
        "AND m.id = ANY(%s)", (vector_text(query), model, user_id, list(memory_ids))
    ).fetchall()
    return {r["id"]: float(r["sim"]) for r in rows}


def put_embeddings(c: Conn, model: str, found: dict[str, Vec8]) -> None:
    """Store vectors (existing ones are kept); a model's first vectors create its index."""
    if not found:
        return
    if read_meta(c, f"vector_dim.{model}") is None:
        dim = len(next(iter(found.values())))
        c.execute(sql.SQL(
            "CREATE INDEX IF NOT EXISTS {name} ON embeddings USING hnsw "
            "((vec::halfvec({dim})) halfvec_cosine_ops) WHERE model = {model}").format(
                name=sql.Identifier(hnsw_name(model)), dim=sql.Literal(dim),
                model=sql.Literal(model)))
        write_meta(c, f"vector_dim.{model}", str(dim))
    c.cursor().executemany(
        "INSERT INTO embeddings (model, content_hash, vec) VALUES (%s, %s, %s::halfvec) "
        "ON CONFLICT DO NOTHING", [(model, h, vector_text(v)) for h, v in found.items()])


def drop_other_models(c: Conn, keep_model: str) -> None:
    """Delete every vector not made by `keep_model`, with those models' indexes."""
    for row in c.execute("SELECT key FROM meta WHERE key LIKE 'vector_dim.%%'").fetchall():
        model = row["key"].removeprefix("vector_dim.")
        if model != keep_model:
            c.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(
                sql.Identifier(hnsw_name(model))))
            c.execute("DELETE FROM meta WHERE key = %s", (row["key"],))
    c.execute("DELETE FROM embeddings WHERE model != %s", (keep_model,))


def hnsw_name(model: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", model.lower())[:30]
    return f"embeddings_hnsw_{slug}_{hashlib.sha256(model.encode()).hexdigest()[:8]}"


def vector_text(vector: Array | Vec8) -> str:
    """pgvector's text form; int8 values are exact in a halfvec."""
    return "[" + ",".join(f"{float(x):.6g}" for x in vector) + "]"
