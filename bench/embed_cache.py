"""An embedder that keeps every vector it makes in a SQLite file, so benchmark reruns do not
embed the datasets again (MiniLM on two shared cores takes minutes for LoCoMo and most of an
hour for LongMemEval-S). The cache lives under `.cache/` (gitignored), keyed by model and
SHA-256 of the text; it is a plain cache: deleting it only costs time."""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engram.embed.embedders import Array, Embedder, WrappedEmbedder, load_embedder

CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache"


class DiskCachedEmbedder(WrappedEmbedder):
    """Wraps an embedder; same name and vectors, computed once per text."""

    def __init__(self, inner: Embedder, folder: Path = CACHE_DIR, batch: int = 64) -> None:
        super().__init__(inner)
        self.batch = batch
        folder.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(folder / "embeddings.sqlite", check_same_thread=False)
        self.db.execute("PRAGMA busy_timeout = 30000")
        self.db.execute("CREATE TABLE IF NOT EXISTS vec (model TEXT, hash TEXT, v BLOB, "
                        "PRIMARY KEY (model, hash))")

    def cached(self, texts: Sequence[str]) -> bool:
        """Whether every text's vector is in the cache already."""
        unique = list(dict.fromkeys(hashlib.sha256(t.encode()).hexdigest() for t in texts))
        found = 0
        for i in range(0, len(unique), 500):
            chunk = unique[i:i + 500]
            marks = ",".join("?" * len(chunk))
            found += self.db.execute(
                f"SELECT COUNT(*) FROM vec WHERE model = ? AND hash IN ({marks})",
                [self.name, *chunk]).fetchone()[0]
        return found == len(unique)

    def embed(self, texts: Sequence[str], progress: bool = False) -> Array:
        keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 500):
            chunk = unique[i:i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT hash, v FROM vec WHERE model = ? AND hash IN ({marks})",
                                   [self.name, *chunk]).fetchall()
            found.update((h, np.frombuffer(v, dtype=np.float32)) for h, v in rows)
        todo = list({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        for i in range(0, len(todo), self.batch):
            part = todo[i:i + self.batch]
            vectors = self.inner.embed([t for _, t in part])
            with self.db:
                self.db.executemany("INSERT OR REPLACE INTO vec VALUES (?, ?, ?)",
                                    [(self.name, k, v.astype(np.float32).tobytes())
                                     for (k, _), v in zip(part, vectors, strict=True)])
            found.update((k, v) for (k, _), v in zip(part, vectors, strict=True))
            if progress:
                print(f"  embedded {i + len(part)}/{len(todo)}", file=sys.stderr)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32)


def cached_embedder() -> DiskCachedEmbedder:
    """The default model behind the disk cache."""
    return DiskCachedEmbedder(load_embedder())
