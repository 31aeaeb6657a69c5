"""Vector search for the SQLite store.

The truth is the `embeddings` table (int8 vectors keyed by model and content hash, written in
the same transaction as the event that needs them). Per (user, model) scope, a ScopeIndex in
RAM serves queries; it follows the event log (every search first applies the events appended
since it last looked, by any process). Large scopes keep an HNSW graph in
`<store>/vectors/`, a cache that is checked and repaired against the table when loaded.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from engram import vectors
from engram.vectors import ScopeIndex, from_blob

Scope = tuple[str, str]  # (user_id, model)


class VectorScopes:
    def __init__(self, conn: sqlite3.Connection, directory: Path) -> None:
        self._conn, self._directory = conn, directory
        self._scopes: dict[Scope, ScopeIndex] = {}
        self._ids: dict[Scope, dict[str, int]] = {}  # memory id → rowid, per scope
        self._seen = 0  # the last event position applied to the loaded scopes

    def scope(self, user_id: str, model: str) -> ScopeIndex | None:
        """The scope's index, caught up with the log; None when it has no vectors."""
        self._catch_up()
        key = (user_id, model)
        if key not in self._scopes:
            self._load(key)
        index = self._scopes[key]
        return index if len(index) else None

    def rowids(self, user_id: str, model: str, memory_ids: Iterable[str]) -> dict[str, int]:
        ids = self._ids.get((user_id, model), {})
        return {m: ids[m] for m in memory_ids if m in ids}

    def reset(self) -> None:
        """Forget every loaded scope (after a rebuild or a model switch)."""
        self._scopes.clear()
        self._ids.clear()

    def save(self) -> None:
        for (user_id, model), index in self._scopes.items():
            index.save_graph(self._graph_path(user_id, model))

    def _graph_path(self, user_id: str, model: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", model)[:60]
        user = hashlib.sha256(user_id.encode()).hexdigest()[:20]
        return self._directory / "vectors" / slug / f"{user}.usearch"

    def _load(self, key: Scope) -> None:
        user_id, model = key
        c = self._conn
        c.execute("BEGIN")  # one snapshot for the rows and the log position
        try:
            head = c.execute("SELECT COALESCE(MAX(pos), 0) FROM events").fetchone()[0]
            rows = c.execute(
                "SELECT m.rowid, m.id, e.vec FROM memories m JOIN embeddings e ON "
                "e.model = ? AND e.content_hash = m.content_hash WHERE m.user_id = ?",
                (model, user_id)).fetchall()
        finally:
            c.execute("COMMIT")
        if not self._scopes:
            self._seen = head
        # Otherwise rows may be newer than `_seen`; re-applying those events later is harmless.
        dimension = len(rows[0][2]) if rows else 0
        index = ScopeIndex(dimension)
        if rows:
            index.upsert([r[0] for r in rows], np.stack([from_blob(r[2]) for r in rows]),
                         bulk=True)
        if len(index) > vectors.EXACT_LIMIT:
            index.load_graph(self._graph_path(user_id, model))
            index.save_graph(self._graph_path(user_id, model))  # a rebuilt graph is kept
        self._scopes[key] = index
        self._ids[key] = {r[1]: r[0] for r in rows}

    def _catch_up(self) -> None:
        if not self._scopes:
            return
        rows = self._conn.execute(
            "SELECT pos, memory_id FROM events WHERE pos > ? ORDER BY pos", (self._seen,)
        ).fetchall()
        if rows:
            self._seen = rows[-1][0]
            # Access-count events name no memory_id: they never move a vector.
            self._apply(dict.fromkeys(r[1] for r in rows if r[1] is not None))

    def _apply(self, memory_ids: Iterable[str]) -> None:
        """Re-read these memories and move their vectors in the loaded scopes."""
        for memory_id in memory_ids:
            for key, ids in self._ids.items():
                rowid = ids.pop(memory_id, None)
                if rowid is not None:
                    self._scopes[key].remove([rowid])
            for rowid, user_id, model, vec in self._conn.execute(
                    "SELECT m.rowid, m.user_id, e.model, e.vec FROM memories m JOIN embeddings "
                    "e ON e.content_hash = m.content_hash WHERE m.id = ?", (memory_id,)):
                key = (user_id, model)
                if key in self._scopes:
                    index = self._scopes[key]
                    if index.dimension == 0:
                        index = self._scopes[key] = ScopeIndex(len(vec))
                    index.upsert([rowid], from_blob(vec)[None])
                    self._ids[key][memory_id] = rowid
