"""Vector search for the SQLite store.

The truth is the `embeddings` table (int8 vectors keyed by model and content hash, written in
the same transaction as the event that needs them). Per (user, model) scope, an index in RAM
serves queries; it follows the event log (every search first applies the events appended
since it last looked, by any process). Large scopes keep an HNSW graph in
`<store>/vectors/`, a cache beside a small JSON file naming the log position it reflects and
the graph file's size and time.

Opening a large scope whose graph and position file agree memory-maps the graph and replays
only the events since that position (a `Snapshot`): no vector is read from the table, so a
cold search costs what the graph's pages cost. A scope without a trustworthy graph, one
with many changes since, or one a filtered search needs in full is loaded whole: every
vector from the table, the graph checked and repaired against them, then saved again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from engram.embed import vectors
from engram.embed.vectors import ScopeIndex, Snapshot, from_blob, open_snapshot

Scope = tuple[str, str]  # (user_id, model)
Index = ScopeIndex | Snapshot
MAX_REPLAY_SHARE = 0.1  # past this share of changed vectors a snapshot is loaded in full


class VectorScopes:
    def __init__(self, conn: sqlite3.Connection, directory: Path) -> None:
        self._conn, self._directory = conn, directory
        self._scopes: dict[Scope, Index] = {}
        self._ids: dict[Scope, dict[str, int]] = {}  # memory id → rowid, per full scope
        self._seen = 0  # the last event position applied to the loaded scopes

    def scope(self, user_id: str, model: str, *, full: bool = False) -> Index | None:
        """The scope's index, caught up with the log; None when it has no vectors. `full`
        asks for every row in RAM (filtered scans need them)."""
        self._catch_up()
        key = (user_id, model)
        if key not in self._scopes or (full and isinstance(self._scopes[key], Snapshot)):
            self._load(key, lazy=not full)
        index = self._scopes[key]
        return index if len(index) else None

    def reset(self) -> None:
        """Forget every loaded scope (after a rebuild or a model switch)."""
        self._scopes.clear()
        self._ids.clear()

    def save(self) -> None:
        """Save changed graphs and record the log position each one reflects."""
        self._catch_up()
        for (user_id, model), index in self._scopes.items():
            if isinstance(index, ScopeIndex) and index.graph is not None:
                path = self._graph_path(user_id, model)
                _write_position(path, self._seen, index.save_graph(path))

    def _graph_path(self, user_id: str, model: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", model)[:60]
        user = hashlib.sha256(user_id.encode()).hexdigest()[:20]
        return self._directory / "vectors" / slug / f"{user}.usearch"

    def _head(self) -> int:
        return int(self._conn.execute("SELECT COALESCE(MAX(pos), 0) FROM events").fetchone()[0])

    def _load(self, key: Scope, *, lazy: bool) -> None:
        if lazy and self._load_snapshot(key):
            return
        user_id, model = key
        c = self._conn
        c.execute("BEGIN")  # one snapshot for the rows and the log position
        try:
            head = self._head()
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
            path = self._graph_path(user_id, model)
            before = _stat(path)
            index.load_graph(path)
            written = index.save_graph(path)  # a repaired graph is kept
            # The graph holds every row read at `head`, so `_seen` (never later) is safe.
            if written is not None or (before is not None and _stat(path) == before):
                _write_position(path, self._seen, written or before)
        self._scopes[key] = index
        self._ids[key] = {r[1]: r[0] for r in rows}

    def _load_snapshot(self, key: Scope) -> bool:
        """Serve the scope from its saved graph if that is trustworthy and recent enough."""
        path = self._graph_path(*key)
        saved = _read_position(path)
        if saved is None:
            return False
        snapshot = open_snapshot(path)
        if snapshot is None:
            return False
        head = self._head() if not self._scopes else self._seen
        since = [r[0] for r in self._conn.execute(
            "SELECT DISTINCT memory_id FROM events WHERE pos > ? AND pos <= ? AND memory_id "
            "IS NOT NULL", (saved, head))]
        if len(since) > MAX_REPLAY_SHARE * len(snapshot.graph):
            return False
        if not self._scopes:
            self._seen = head
        self._scopes[key] = snapshot
        if not self._replay(snapshot, key, since):
            del self._scopes[key]
            return False
        return True

    def _catch_up(self) -> None:
        if not self._scopes:
            return
        rows = self._conn.execute(
            "SELECT pos, memory_id FROM events WHERE pos > ? ORDER BY pos", (self._seen,)
        ).fetchall()
        if rows:
            self._seen = rows[-1][0]
            # Access-count events name no memory_id: they never move a vector.
            self._apply(list(dict.fromkeys(r[1] for r in rows if r[1] is not None)))

    def _apply(self, memory_ids: list[str]) -> None:
        """Re-read these memories and move their vectors in the loaded scopes."""
        for key, loaded in list(self._scopes.items()):
            if isinstance(loaded, Snapshot) and not self._replay(loaded, key, memory_ids):
                del self._scopes[key]  # a key is unknown: load the scope in full
                self._load(key, lazy=False)
        models = sorted({model for _, model in self._scopes})  # the embeddings key's prefix
        for memory_id in memory_ids:
            for key, ids in self._ids.items():
                rowid = ids.pop(memory_id, None)
                if rowid is not None:
                    self._scopes[key].remove([rowid])
            for rowid, user_id, model, vec in self._conn.execute(
                    "SELECT m.rowid, m.user_id, e.model, e.vec FROM memories m JOIN embeddings "
                    f"e ON e.model IN ({', '.join('?' * len(models))}) AND e.content_hash = "
                    "m.content_hash WHERE m.id = ?", (*models, memory_id)):
                key = (user_id, model)
                if isinstance(index := self._scopes.get(key), ScopeIndex):
                    if index.dimension == 0:
                        index = self._scopes[key] = ScopeIndex(len(vec))
                    index.upsert([rowid], from_blob(vec)[None])
                    self._ids[key][memory_id] = rowid

    def _replay(self, snapshot: Snapshot, key: Scope, memory_ids: Iterable[str]) -> bool:
        """Apply these memories' current vectors to a snapshot. False when one of them no
        longer exists: its key is unknown without the full id map, so the caller loads the
        scope in full."""
        user_id, model = key
        for memory_id in memory_ids:
            row = self._conn.execute(
                "SELECT m.rowid, m.user_id, e.vec FROM memories m LEFT JOIN embeddings e ON "
                "e.model = ? AND e.content_hash = m.content_hash WHERE m.id = ?",
                (model, memory_id)).fetchone()
            if row is None:
                return False
            if row[1] != user_id:
                continue
            if row[2] is None:
                snapshot.remove([row[0]])
            else:
                snapshot.upsert([row[0]], from_blob(row[2])[None])
        return True


def _position_path(graph: Path) -> Path:
    return graph.with_suffix(".json")


def _stat(path: Path) -> tuple[int, int] | None:
    with contextlib.suppress(OSError):
        stat = path.stat()
        return stat.st_size, stat.st_mtime_ns
    return None


def _write_position(graph: Path, position: int,
                    written: os.stat_result | tuple[int, int] | None) -> None:
    """Record the log position the graph reflects beside the identity (size, mtime) of the
    file that reflects it: if another process replaced the file since, the record no
    longer matches and the graph is checked in full on the next load."""
    if written is None:
        return
    size, mtime_ns = (written.st_size, written.st_mtime_ns) \
        if isinstance(written, os.stat_result) else written
    meta = {"position": position, "size": size, "mtime_ns": mtime_ns}
    tmp = _position_path(graph).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta))
    tmp.replace(_position_path(graph))


def _read_position(graph: Path) -> int | None:
    """The log position of the graph file, if its record matches the file on disk."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        meta = json.loads(_position_path(graph).read_text())
        if (meta["size"], meta["mtime_ns"]) == _stat(graph):
            return int(meta["position"])
    return None
