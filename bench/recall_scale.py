"""Recall at scale: search latency, first-search cost, cold start and disk per memory at
100k (and 1M) memories in ONE user's scope, the worst case for a per-user index.

    python bench/recall_scale.py --data ../shared/data/locomo --sizes 100000

Texts are LoCoMo turns (with a counter, so each is unique); vectors are the turns' real MiniLM
embeddings plus small noise, so clusters look like real ones. Embedding 1M texts would take
hours on this CPU, so the store is fed the precomputed vectors through a lookup embedder:
search latency here EXCLUDES the query's embedding, which is measured on its own (real model).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).parent))
from embed_cache import cached_embedder
from engram import Memory, MemoryEntry
from engram.embed.embedders import load_embedder
from engram.query import Filters
from engram.recall.ranking import keyword_terms
from locomo import load

T = TypeVar("T")
Array = npt.NDArray[np.float32]


class LookupEmbedder:
    """Serves precomputed vectors under the real model's name."""

    def __init__(self, table: dict[str, Array], name: str, dimension: int) -> None:
        self.table, self.name, self.dimension = table, name, dimension

    def embed(self, texts: Sequence[str]) -> Array:
        return np.stack([self.table[t] for t in texts])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def timed(fn: Callable[[], T], runs: list[float]) -> T:
    t0 = time.perf_counter()
    result = fn()
    runs.append((time.perf_counter() - t0) * 1000)
    return result


def table_bytes(db: Path) -> dict[str, int]:
    """Bytes per table and index (SQLite's dbstat), the FTS5 shadow tables summed as one."""
    with sqlite3.connect(db) as conn:
        sizes: dict[str, int] = {}
        for name, size in conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            key = "memories_fts (all shadow tables)" if name.startswith("memories_fts") else name
            sizes[key] = sizes.get(key, 0) + size
    return sizes


def _keyword_search(mem: Memory, query: str,
                    filters: Filters) -> list[tuple[MemoryEntry, float]]:
    return mem.store.keyword_search(keyword_terms(query), filters, 50)


def measure(mem: Memory, questions: list[str], qvecs: Array,
            model: str) -> tuple[float, list[float], list[float], list[float], list[float]]:
    """First search (loads the scope, builds or adopts its graph), then every question:
    the whole search (keyword half in a worker thread, the default), the same search with
    both halves in turn (the baseline), and its keyword and vector candidate queries alone."""
    first: list[float] = []
    timed(lambda: mem.search(questions[0], user_id="u"), first)
    full: list[float] = []
    sequential: list[float] = []
    keyword: list[float] = []
    vector: list[float] = []
    filters = Filters(user_id="u")
    for n, (q, v) in enumerate(zip(questions, qvecs, strict=True)):
        # A question's first search warms caches for the second: alternate which goes first.
        for parallel in (True, False) if n % 2 else (False, True):
            mem.hybrid.parallel = parallel
            timed(partial(mem.search, q, user_id="u", limit=10),
                  full if parallel else sequential)
        mem.hybrid.parallel = True
        timed(partial(_keyword_search, mem, q, filters), keyword)
        timed(partial(mem.store.vector_search, v, filters, model, 50), vector)
    return first[0], full, sequential, keyword, vector


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo"))
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--keep", type=Path, help="keep the stores under this folder")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the stores kept under --keep instead of building them")
    args = parser.parse_args()

    conversations = load(args.data)
    turns = [str(t["text"]) for c in conversations for t in c.turns]
    questions = [q for c in conversations for q, _, _ in c.questions][:args.queries]
    model = load_embedder()
    cached = cached_embedder()  # the same model's vectors, from the disk cache when there
    t0 = time.perf_counter()
    base = cached.embed(turns)
    qvecs = cached.embed(questions)
    print(f"embedded {len(turns)} turns + {len(questions)} questions in "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    query_ms: list[float] = []
    for q in questions[:100]:  # a variant of each question, so the cache cannot answer
        timed(partial(model.embed, [q + "!"]), query_ms)

    rng = np.random.default_rng(7)
    rows = []
    breakdown: dict[int, dict[str, int]] = {}
    for size in [int(s) for s in args.sizes.split(",") if s]:
        root = args.keep or Path(tempfile.mkdtemp())
        store = root / f"store-{size}"
        reuse = args.reuse and store.exists()
        if not reuse:
            shutil.rmtree(store, ignore_errors=True)
        table = dict(zip(questions, qvecs, strict=True))
        mem = Memory(store, embedder=LookupEmbedder(table, model.name, model.dimension),
                     access_batch=10**9)
        started = time.perf_counter()
        for start in range(0, 0 if reuse else size, 1000):
            batch: list[dict[str, Any]] = []
            for i in range(start, min(size, start + 1000)):
                text = f"{turns[i % len(turns)]} (#{i})"
                noise = rng.normal(0, 0.02, int(base.shape[1])).astype(np.float32)
                vec = base[i % len(turns)] + noise
                table[text] = vec / np.linalg.norm(vec)
                batch.append({"text": text, "user_id": "u", "session_id": f"s{i // 20}",
                              "dedupe": False})
            mem.add_many(batch)
            for item in batch:
                del table[item["text"]]  # keep RAM flat: vectors now live in the store
        ingest_s = float("nan") if reuse else time.perf_counter() - started
        first, full, sequential, keyword, vector = measure(mem, questions, qvecs, model.name)
        mem.close()
        files = [p for p in store.rglob("*") if p.is_file()]
        graph = sum(p.stat().st_size for p in files if p.suffix == ".usearch")
        total = sum(p.stat().st_size for p in files)
        env = {**os.environ, "ENGRAM_DATA": str(store)}
        cold = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "engram", "search", questions[1], "--user", "u",
                            "--json"], env=env, check=True, capture_output=True)
            cold.append(time.perf_counter() - t)
        breakdown[size] = table_bytes(store / "engram.db")
        rows.append((size, ingest_s, first, full, sequential, keyword, vector, total, graph,
                     cold))
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    print(f"query embedding (MiniLM, NumPy, one query): p50 {pct(query_ms, 0.5):.1f} ms, "
          f"p95 {pct(query_ms, 0.95):.1f} ms")
    print("| memories | add_many/s | first search (load + graph) ms | search p50 / p95 ms | "
          "sequential halves p50 / p95 ms | keyword p50 / p95 ms | vector p50 / p95 ms | "
          "bytes/memory (all) | of which HNSW file | cold `engram search` s (median of 3) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size, ingest_s, first_ms, full, sequential, keyword, vector, total, graph, cold in rows:
        print(f"| {size:,} | {size / ingest_s:,.0f} | {first_ms:,.0f} | "
              f"{pct(full, .5):.1f} / {pct(full, .95):.1f} | "
              f"{pct(sequential, .5):.1f} / {pct(sequential, .95):.1f} | "
              f"{pct(keyword, .5):.1f} / {pct(keyword, .95):.1f} | "
              f"{pct(vector, .5):.1f} / {pct(vector, .95):.1f} | {total / size:,.0f} | "
              f"{graph / size:,.0f} | {statistics.median(cold):.2f} |")
    for size, sizes in breakdown.items():
        print(f"\nbytes per memory by table at {size:,} memories:")
        for name, total in sorted(sizes.items(), key=lambda kv: -kv[1]):
            if total / size >= 1:
                print(f"- {name}: {total / size:,.0f}")


if __name__ == "__main__":
    main()
