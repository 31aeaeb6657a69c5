"""In-memory vector search over one scope (a user's memories, for one embedding model).

Vectors are int8 (per-vector symmetric quantization: cosine is scale-invariant, so no scale
is kept). Small candidate sets are scanned exactly with usearch's SIMD kernels; a scope with
more than EXACT_LIMIT vectors also keeps a usearch int8 HNSW graph for unfiltered queries.
Filtered queries always scan exactly the vectors the filter allows, so a filter never
applies after a top-k cut. Measurements behind the numbers: docs/vector-index.md.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

Vec8 = npt.NDArray[np.int8]
Array = npt.NDArray[np.float32]
EXACT_LIMIT = 20_000
CONNECTIVITY, EXPANSION_ADD, EXPANSION_SEARCH = 16, 128, 64  # HNSW settings measured


def quantize(vectors: Array) -> Vec8:
    """float32 rows → int8 rows using each row's full ±127 range."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    peak = np.maximum(np.abs(vectors).max(axis=1, keepdims=True), 1e-12)
    return cast(Vec8, np.rint(vectors * (127.0 / peak)).astype(np.int8))


def to_blob(vector: Vec8) -> bytes:
    return bytes(np.ascontiguousarray(vector, dtype=np.int8).tobytes())


def from_blob(blob: bytes) -> Vec8:
    return np.frombuffer(blob, dtype=np.int8)


class ScopeIndex:
    """The vectors of one scope, keyed by memory rowid."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self._keys = np.zeros(0, dtype=np.int64)
        self._rows = np.zeros((0, dimension), dtype=np.int8)
        self._where: dict[int, int] = {}
        self._count = 0
        self.graph: Any = None  # usearch Index, present while the scope is large
        self.dirty = False  # the graph differs from its saved file

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: int) -> bool:
        return key in self._where

    def upsert(self, keys: Sequence[int], vectors: Vec8, *, bulk: bool = False) -> None:
        """Add or replace vectors. A scope that grows past EXACT_LIMIT gets its graph here,
        unless `bulk` (a loader that will adopt a saved graph instead)."""
        fresh = [(k, v) for k, v in zip(keys, vectors, strict=True) if k not in self._where]
        for key, vector in zip(keys, vectors, strict=True):
            if key in self._where:
                self._rows[self._where[key]] = vector
        if fresh:
            needed = self._count + len(fresh)
            if needed > len(self._keys):
                capacity = max(needed, 2 * len(self._keys), 64)
                self._keys = np.resize(self._keys, capacity)
                rows = np.zeros((capacity, self.dimension), dtype=np.int8)
                rows[:self._count] = self._rows[:self._count]
                self._rows = rows
            for key, vector in fresh:
                self._keys[self._count] = key
                self._rows[self._count] = vector
                self._where[key] = self._count
                self._count += 1
        if self.graph is not None:
            self.dirty = True
            known = [k for k in keys if self.graph.contains(k)]
            if known:
                self.graph.remove(known)
            self.graph.add(np.asarray(keys, dtype=np.uint64), np.asarray(vectors))
        elif self._count > EXACT_LIMIT and not bulk:
            self.build_graph()

    def remove(self, keys: Iterable[int]) -> None:
        for key in keys:
            slot = self._where.pop(key, None)
            if slot is None:
                continue
            last = self._count - 1
            if slot != last:  # move the last row into the hole
                moved = int(self._keys[last])
                self._keys[slot], self._rows[slot] = moved, self._rows[last]
                self._where[moved] = slot
            self._count = last
            if self.graph is not None and self.graph.contains(key):
                self.graph.remove(key)
                self.dirty = True

    def search(self, query: Array, k: int,
               allowed: Iterable[int] | None = None) -> list[tuple[int, float]]:
        """The k nearest keys by cosine, only among `allowed` when given."""
        from usearch.index import search

        if allowed is None and self.graph is not None:
            found = self.graph.search(quantize(query)[0], k)
            return [(int(key), 1.0 - float(d)) for key, d in zip(found.keys, found.distances,
                                                                 strict=True)]
        if allowed is None:
            slots = np.arange(self._count)
        else:
            slots = np.fromiter((self._where[a] for a in allowed if a in self._where),
                                dtype=np.int64)
        if len(slots) == 0:
            return []
        k = min(k, len(slots))
        rows = self._rows[slots] if allowed is not None else self._rows[:self._count]
        found = search(rows, quantize(query)[0], k, "cos", exact=True)
        return [(int(self._keys[slots[int(i)]]), 1.0 - float(d))
                for i, d in zip(found.keys, found.distances, strict=True)]

    def build_graph(self) -> None:
        from usearch.index import Index

        graph = Index(ndim=self.dimension, metric="cos", dtype="i8", connectivity=CONNECTIVITY,
                      expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)
        if self._count:
            graph.add(self._keys[:self._count].astype(np.uint64), self._rows[:self._count])
        self.graph = graph
        self.dirty = True

    def save_graph(self, path: Path) -> os.stat_result | None:
        """Write the graph atomically (temp file, fsync, rename) if it changed; the written
        file's size and times, which identify it."""
        if self.graph is None or not self.dirty:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        self.graph.save(str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
            written = os.fstat(fh.fileno())
        os.replace(tmp, path)
        self.dirty = False
        return written

    def load_graph(self, path: Path) -> None:
        """Adopt the saved graph, repaired to match this scope: a missing or unreadable file
        is rebuilt; keys added, removed or re-embedded since it was saved are patched."""
        from usearch.index import Index

        graph = None
        if path.exists():
            with contextlib.suppress(ValueError, RuntimeError):
                graph = Index.restore(str(path))
        if graph is None or graph.ndim != self.dimension:
            self.build_graph()
            return
        self.dirty = False
        saved = np.asarray(graph.keys, dtype=np.int64)
        gone = [int(k) for k in saved if int(k) not in self._where]
        if gone:
            graph.remove(gone)
            self.dirty = True
        present = saved[np.isin(saved, self._keys[:self._count])]
        saved_rows = np.asarray(graph.get(present.astype(np.uint64)))
        stale = [int(k) for k, v in zip(present, saved_rows, strict=True)
                 if not np.array_equal(v, self._rows[self._where[int(k)]])]
        if stale:
            graph.remove(stale)
            self.dirty = True
        missing = [k for k in self._where if k in set(stale) or not graph.contains(k)]
        if missing:
            self.dirty = True
            graph.add(np.asarray(missing, dtype=np.uint64),
                      self._rows[[self._where[k] for k in missing]])
        self.graph = graph


class Snapshot:
    """A scope served from its saved graph, memory-mapped read-only (so opening costs
    nothing per vector), plus what changed since the graph was saved: new or re-embedded
    vectors in a small exact index, removed keys as tombstones. It answers unfiltered
    searches; anything that needs every row (a filtered scan) loads the scope in full."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        self.dimension = int(graph.ndim)
        self.delta = ScopeIndex(self.dimension)
        self.tombstones: set[int] = set()

    def __len__(self) -> int:
        return len(self.graph) - len(self.tombstones) + len(self.delta)

    @property
    def changes(self) -> int:
        return len(self.tombstones) + len(self.delta)

    def upsert(self, keys: Sequence[int], vectors: Vec8) -> None:
        self.tombstones.update(k for k in keys if self.graph.contains(k))
        self.delta.upsert(keys, vectors, bulk=True)  # the delta never grows a graph

    def remove(self, keys: Iterable[int]) -> None:
        keys = list(keys)
        self.tombstones.update(k for k in keys if self.graph.contains(k))
        self.delta.remove(keys)

    def search(self, query: Array, k: int) -> list[tuple[int, float]]:
        """The k nearest keys by cosine: the graph's (past the tombstones) and the delta's."""
        found = self.graph.search(quantize(query)[0], k + len(self.tombstones))
        hits = [(int(key), 1.0 - float(d)) for key, d in zip(found.keys, found.distances,
                                                              strict=True)
                if int(key) not in self.tombstones]
        hits += self.delta.search(query, k)
        return sorted(hits, key=lambda hit: -hit[1])[:k]


def open_snapshot(path: Path) -> Snapshot | None:
    """The saved graph at `path`, memory-mapped; None if it cannot be read."""
    from usearch.index import Index

    try:
        return Snapshot(Index.restore(str(path), view=True))
    except (ValueError, RuntimeError, OSError):
        return None
