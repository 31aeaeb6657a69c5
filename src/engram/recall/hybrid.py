"""Hybrid search for `Memory`: keyword and vector candidates from the store, fused by
`recall.rank`, and the embedding bookkeeping that keeps one model's vectors per store."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any

from engram.embed.embedders import DEFAULT_SPEC, Embedder, load_embedder
from engram.embed.vectors import quantize
from engram.errors import InvalidInput
from engram.model import MemoryEntry
from engram.query import Brief, Filters, Hit
from engram.recall.links import link_queries, linked
from engram.recall.ranking import Candidate, Weights, keyword_terms, rank
from engram.recall.signals import with_question
from engram.store.base import Store, Tx
from engram.store.settings import EMBEDDER, EMBEDDER_MODEL

CANDIDATES = 50  # from each of the keyword and the vector query (docs/recall-research.md)
# SQLite and the NumPy encoder release the GIL, so on two cores the halves really overlap.
_KEYWORD_THREAD = ThreadPoolExecutor(max_workers=4, thread_name_prefix="engram-keyword")
AUTO = "auto"


class Hybrid:
    """Owns the store's embedder: resolved lazily, so commands without vectors stay fast."""

    def __init__(self, store: Store, embedder: Embedder | str | None = AUTO, *,
                 parallel: bool = True) -> None:
        self.store = store
        self.parallel = parallel  # keyword half in a worker thread; False on a single core
        self._requested = embedder
        self._embedder: Embedder | None = None
        self._resolved = False

    @property
    def embedder(self) -> Embedder | None:
        if not self._resolved:
            self._embedder = self._resolve()
            self._resolved = True
        return self._embedder

    def _resolve(self) -> Embedder | None:
        requested = self._requested
        if requested is None:
            return None
        if not isinstance(requested, str):
            embedder = requested
        else:
            spec = (requested if requested != AUTO else
                    self.store.get_setting(EMBEDDER) or os.environ.get("ENGRAM_EMBEDDER")
                    or DEFAULT_SPEC)
            try:
                embedder = load_embedder(spec)
            except InvalidInput:
                if requested == AUTO and spec == DEFAULT_SPEC:
                    return None  # the [embed] extra is not installed: keyword search only
                raise
            if self.store.get_setting(EMBEDDER) is None:
                self.store.set_setting(EMBEDDER, spec)
        model = self.store.get_setting(EMBEDDER_MODEL)
        if model is None:
            self.store.set_setting(EMBEDDER_MODEL, embedder.name)
        elif model != embedder.name:
            raise InvalidInput("embedder", f"this store's vectors were made by {model!r}, not "
                               f"{embedder.name!r}",
                               "open it with that model, or switch with `engram reembed`")
        return embedder

    def vectors_for(self, entries: Sequence[MemoryEntry]) -> dict[str, Any]:
        """int8 vectors for the entries whose content has none yet (computed outside any
        transaction: embedding is the slow part)."""
        return self.encode(self.unembedded(entries))

    def unembedded(self, entries: Sequence[MemoryEntry]) -> dict[str, str]:
        """The texts of the entries whose content has no vector yet, by content hash (none
        without an embedder): what `encode` must embed."""
        embedder = self.embedder
        if embedder is None or not entries:
            return {}
        missing = self.store.missing_embeddings(embedder.name, (e.content_hash for e in entries))
        return {e.content_hash: e.content for e in entries if e.content_hash in missing}

    def encode(self, texts: dict[str, str]) -> dict[str, Any]:
        """int8 vectors of `texts` (by content hash); touches no store once the embedder is
        resolved (`unembedded` resolves it), so it may then run in another thread
        (ingestion overlaps it with writing)."""
        embedder = self.embedder
        if embedder is None or not texts:
            return {}
        return dict(zip(texts, quantize(embedder.embed(list(texts.values()))), strict=True))

    def store_vectors(self, tx: Tx, vectors: dict[str, Any]) -> None:
        if vectors and self.embedder is not None:
            tx.put_embeddings(self.embedder.name, vectors)

    def search(self, query: str, filters: Filters, limit: int, now: datetime,
               weights: Weights) -> list[Hit]:
        found = with_question(self.candidates(query, filters, limit, weights.linked > 0),
                              query, now, None, weights, filters.user_id)
        best = rank(found, now, weights, limit)
        entries = self.store.get_many(r.memory.id for r in best)
        return below_contradictors([Hit(entries[r.memory.id], r.score, r.components)
                                    for r in best if r.memory.id in entries])

    def candidates(self, query: str, filters: Filters, limit: int,
                   linked: bool = False) -> list[Candidate]:
        """The keyword and vector candidates of `query`, each with both raw signals, before
        ranking (benchmarks rank one candidate set under many weight settings); with
        `linked`, also the memories linked to it through what it names and the facts it joins
        (`recall.links`)."""
        pool = max(CANDIDATES, limit)
        embedder = self.embedder
        terms = keyword_terms(query)
        links = link_queries(query) if linked else []
        if embedder is None or filters.user_id is None:
            keyword = self.store.keyword_candidates(terms, filters, pool)
            candidates = {b.id: Candidate(b, keyword=s) for b, s in keyword}
            self._add_linked(candidates, self._linked(links, filters), {})
            return list(candidates.values())
        # the keyword half runs beside the query's embedding and the vector half
        pending = _KEYWORD_THREAD.submit(self.store.keyword_candidates, terms, filters,
                                         pool) if self.parallel else None
        vector = embedder.embed([query])[0]
        nearest = self.store.vector_candidates(vector, filters, embedder.name, pool)
        keyword = pending.result() if pending else \
            self.store.keyword_candidates(terms, filters, pool)
        near = {brief.id: sim for brief, sim in nearest}
        via_links = self._linked(links, filters)
        # the vectors of what only the keyword query or a link found, read in one query
        sims = self.store.similarities(vector, filters.user_id, embedder.name, [
            i for i in [*(b.id for b, _ in keyword), *via_links] if i not in near])
        near.update(sims)
        candidates = {b.id: Candidate(b, s, near.get(b.id, 0.0)) for b, s in keyword}
        for brief, sim in nearest:
            candidates.setdefault(brief.id, Candidate(brief, 0.0, sim))
        self._add_linked(candidates, via_links, near)
        return list(candidates.values())

    def _linked(self, links: list[list[str]],
                filters: Filters) -> dict[str, tuple[Brief, float]]:
        """The memories linked to the question (`recall.links`), by id, with the strength."""
        return linked(links, filters, self.store.keyword_candidates) if links else {}

    @staticmethod
    def _add_linked(candidates: dict[str, Candidate], links: dict[str, tuple[Brief, float]],
                    sims: dict[str, float]) -> None:
        """Adds the linked memories to `candidates`, as `found=False` unless the query found
        them too."""
        for brief, strength in links.values():
            found = candidates.get(brief.id)
            candidates[brief.id] = replace(found, linked=strength) if found else \
                Candidate(brief, vector=sims.get(brief.id, 0.0), linked=strength, found=False)

    def reembed(self, spec: str, batch: int = 256,
                progress: Callable[[int], None] | None = None) -> int:
        """Embed every live memory with another model, then switch to it. The old vectors
        serve searches until the new ones are complete; batches commit one at a time, so an
        interrupted run resumes where it stopped."""
        embedder = load_embedder(spec)
        done = 0
        while todo := self.store.unembedded(embedder.name, batch):
            vectors = quantize(embedder.embed([text for _, text in todo]))
            with self.store.transaction() as tx:
                tx.put_embeddings(embedder.name, {h: v for (h, _), v in zip(todo, vectors,
                                                                             strict=True)})
            done += len(todo)
            if progress:
                progress(done)
        self.store.set_setting(EMBEDDER, spec)
        self.store.set_setting(EMBEDDER_MODEL, embedder.name)
        self.store.drop_embeddings(keep_model=embedder.name)
        self._embedder, self._resolved = embedder, True
        return done


def below_contradictors(hits: list[Hit]) -> list[Hit]:
    """A memory contradicted by another (a turn that stated a value since replaced) is
    ranked just below the one that replaced it when both are recalled: the turn stays
    findable for the rest of what it said, the current value comes first for its own slot."""
    out = list(hits)
    for hit in hits:
        if not hit.memory.links.contradicts:
            continue
        at = out.index(hit)
        newer = [i for i, h in enumerate(out) if i > at and h.memory.id in
                 hit.memory.links.contradicts]
        if newer:
            out.insert(newer[-1], out.pop(at))
    return out
