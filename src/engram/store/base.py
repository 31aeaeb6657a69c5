"""The persistence protocol every backend implements, and the query types it takes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Protocol

from engram.embed.vectors import Array, Vec8
from engram.log import chain
from engram.log.chain import ChainReport, Head
from engram.log.events import Draft, Event, EventType
from engram.model import MemoryEntry
from engram.query import Brief, Filters
from engram.store.settings import Setting


class Tx(Protocol):
    """One write transaction: reads see its own writes; everything commits or nothing does."""

    def get(self, memory_id: str) -> MemoryEntry | None: ...

    def find_by_hash(self, user_id: str, content_hash: str) -> MemoryEntry | None: ...

    def find_by_slot(self, user_id: str, slot: str) -> list[MemoryEntry]:
        """The user's memories of any status that fill `slot` (`MemoryEntry.slot`), oldest
        first."""
        ...

    def append(self, draft: Draft) -> Event:
        """Seal the draft onto this device's chain, store it, and update the projections."""
        ...

    def put_embeddings(self, model: str, vectors: dict[str, Vec8]) -> None:
        """Store int8 vectors by content hash (existing ones are kept)."""
        ...

    def import_events(self, events: list[Event]) -> int:
        """Admit exported events of any device verbatim; return how many were new."""
        ...


class Store(Protocol):
    device_id: str

    def transaction(self) -> AbstractContextManager[Tx]: ...

    def get(self, memory_id: str) -> MemoryEntry | None: ...

    def select(self, filters: Filters, *, limit: int | None = None, offset: int = 0,
             newest_first: bool = True) -> list[MemoryEntry]: ...

    def count(self, filters: Filters) -> int: ...

    def keyword_search(self, terms: list[str], filters: Filters,
                       limit: int) -> list[tuple[MemoryEntry, float]]:
        """Memories matching any term, best first, with a positive BM25 score."""
        ...

    def keyword_candidates(self, terms: list[str], filters: Filters, limit: int,
                           rare_only: bool = False) -> list[tuple[Brief, float]]: ...

    def vector_candidates(self, query: Array, filters: Filters, model: str,
                          limit: int) -> list[tuple[Brief, float]]: ...

    def get_many(self, memory_ids: Iterable[str]) -> dict[str, MemoryEntry]: ...

    def missing_embeddings(self, model: str, hashes: Iterable[str]) -> set[str]: ...

    def unembedded(self, model: str, limit: int) -> list[tuple[str, str]]: ...

    def drop_embeddings(self, keep_model: str) -> None: ...

    def vector_search(self, query: Array, filters: Filters, model: str,
                      limit: int) -> list[tuple[MemoryEntry, float]]: ...

    def similarities(self, query: Array, user_id: str, model: str,
                     memory_ids: Iterable[str]) -> dict[str, float]: ...

    def get_setting(self, setting: Setting, qualifier: str = "") -> str | None: ...

    def set_setting(self, setting: Setting, value: str, qualifier: str = "") -> None: ...

    def settings_of(self, setting: Setting) -> dict[str, str]:
        """Every value the setting holds, by qualifier ("" for an unqualified one)."""
        ...

    def history(self, memory_id: str) -> list[Event]:
        """The memory's events in merge order."""
        ...

    def events(self) -> Iterator[Event]:
        """Every event in merge order: (hlc, device_id, seq)."""
        ...

    def heads(self) -> dict[str, Head]:
        """Each device's last event in this store."""
        ...

    def events_after(self, vector: Mapping[str, int]) -> Iterator[Event]:
        """Every event past `vector` (device -> the last seq the reader holds; absent: none),
        device by device in chain order: what a peer at `vector` lacks."""
        ...

    def import_events(self, events: list[Event]) -> int: ...

    def rebuild(self) -> int: ...

    def redact_residue(self) -> None:
        """After a forget: purge what indexes and journals may still hold of the text."""
        ...

    def verify(self) -> ChainReport: ...

    def stats(self) -> dict[str, object]: ...

    def close(self) -> None: ...


class DerivedReads(ABC):
    """The parts of `Store` that follow from a backend's primitives, written once."""

    @abstractmethod
    def get_many(self, memory_ids: Iterable[str]) -> dict[str, MemoryEntry]: ...

    @abstractmethod
    def keyword_candidates(self, terms: list[str], filters: Filters, limit: int,
                           rare_only: bool = False) -> list[tuple[Brief, float]]: ...

    @abstractmethod
    def vector_candidates(self, query: Array, filters: Filters, model: str,
                          limit: int) -> list[tuple[Brief, float]]: ...

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Tx]: ...

    @abstractmethod
    def chain_events(self) -> Iterator[tuple[int, Event]]:
        """Every event with its position in the store, in (device_id, seq) order: one device's
        chain after another."""

    def keyword_search(self, terms: list[str], filters: Filters,
                       limit: int) -> list[tuple[MemoryEntry, float]]:
        return self._load(self.keyword_candidates(terms, filters, limit))

    def vector_search(self, query: Array, filters: Filters, model: str,
                      limit: int) -> list[tuple[MemoryEntry, float]]:
        return self._load(self.vector_candidates(query, filters, model, limit))

    def _load(self, found: list[tuple[Brief, float]]) -> list[tuple[MemoryEntry, float]]:
        entries = self.get_many(b.id for b, _ in found)
        return [(entries[b.id], s) for b, s in found if b.id in entries]

    def verify(self) -> ChainReport:
        """Walk every device's chain (`log.chain.verify`)."""
        return chain.verify(self.chain_events())

    def import_events(self, events: list[Event]) -> int:
        """Admit exported events of any device verbatim (ids, hashes and all), in one
        transaction (`log.append.LogWrites.import_events`); already present ones are skipped.
        After an imported forget, purge what indexes and journals may still hold."""
        with self.transaction() as tx:
            added = tx.import_events(events)
        if added and any(e.type is EventType.FORGOTTEN for e in events):
            self.redact_residue()
        return added

    @abstractmethod
    def redact_residue(self) -> None: ...
