"""`Memory.ingest`, kept beside the package it drives (a mixin, like `engram.sync.methods`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from engram.capture.writer import Writer
from engram.errors import InvalidInput
from engram.ingest import adapter, files, ledger, pipeline
from engram.ingest.datapoint import Options
from engram.model import check_id
from engram.store.base import Store
from engram.validate import DEFAULT_USER


class Host(Protocol):
    """What ingestion uses of `Memory`: its store, its writer, and writing out batched
    access statistics (before a prune forgets)."""

    @property
    def store(self) -> Store: ...

    @property
    def writer(self) -> Writer: ...

    def flush(self) -> None: ...


class IngestMethods:
    """`Memory.ingest`, mirroring `engram ingest`."""

    def ingest(self: Host, kind: str, path: str | Path, *, user_id: str = DEFAULT_USER,
               exclude: Iterable[str] = (), prune: bool = False,
               private_tags: Iterable[str] = ("private",), speaker: str = "user",
               caption_model: str | None = None, progress: pipeline.Progress | None = None,
               batch: int = pipeline.BATCH) -> pipeline.Summary:
        """Turn the source at `path` (`kind`: see `engram.ingest.ADAPTERS`) into the user's
        memories: new items added, changed ones updated, unchanged ones left alone, items
        gone from the source reported (and forgotten with `prune`). Each batch is one
        transaction. A missing path, a path of another kind of source or an empty one
        raises InvalidInput before anything is written."""
        source = adapter(kind)
        root = files.existing(path)
        user = check_id(user_id, "user_id", required=True)
        assert user is not None
        collection = source.collection(root)
        known, cached = ledger.recall(self.store, user, kind, collection)
        held = ledger.documents(known)  # a cached stamp counts only while its items are held
        options = Options(tuple(exclude), tuple(t.lower() for t in private_tags),
                          caption_model, {document: stamp for document, stamp
                                          in cached.items() if document in held})
        summary = pipeline.Summary(kind, str(root), collection)
        run = pipeline.Run(self.writer, user, collection, speaker)
        stamps = pipeline.ingest(run, summary, source.read(root, options), known, progress,
                                 batch)
        if not (summary.read or summary.errors or summary.skipped):
            raise InvalidInput("path", f"{root} holds nothing to ingest as {kind}",
                               "check the path and the kind (engram ingest --list)")
        if prune:
            self.flush()
            pipeline.prune(run, summary, known)
        if summary.added or summary.updated or summary.linked or summary.pruned:
            known = ledger.load(self.store, user, kind, collection)
        ledger.remember(self.store, user, kind, collection, known, stamps)
        return summary
