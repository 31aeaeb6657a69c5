"""Appending to the log, written once for every backend: sealing this device's drafts,
admitting imported events, storing each with its effects (`rules`) and folding it into the
projections (`projection`). A backend's write transaction subclasses `LogWrites` and supplies
the primitives (rows in, rows out); the order of the steps and every decision live here."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence

from engram.log import chain, rules
from engram.log.chain import Head, MergeKey, Sealer, merge_key
from engram.log.events import Draft, Event, EventType
from engram.log.projection import apply, replay, targets
from engram.model import MemoryEntry


class LogWrites(ABC):
    """`append` and `import_events` of a write transaction, over a backend's primitives."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    # ------------------------------------------------------------ primitives

    @abstractmethod
    def get(self, memory_id: str) -> MemoryEntry | None:
        """The memory as the projection holds it now."""

    @abstractmethod
    def _heads(self, devices: Iterable[str]) -> dict[str, Head]:
        """The last stored event of each of these devices that has one."""

    @abstractmethod
    def _known(self, event_ids: Sequence[str]) -> dict[str, str]:
        """Hash (hex) of each of these events that is stored."""

    @abstractmethod
    def _last_key(self) -> MergeKey | None:
        """The merge key of the log's last event in merge order (None: an empty log)."""

    @abstractmethod
    def _past(self, memory_id: str) -> list[Event]:
        """The stored events whose memory_id is `memory_id`."""

    @abstractmethod
    def _touching(self, memory_ids: Sequence[str]) -> list[Event]:
        """Stored events that may target these memories (a superset will do)."""

    @abstractmethod
    def _insert(self, event: Event) -> None:
        """Store the event's row as it is (payload as stored, or NULL when redacted)."""

    @abstractmethod
    def _redact(self, event_ids: Sequence[str]) -> None:
        """Set these stored events' payloads to NULL."""

    @abstractmethod
    def _stubs(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these stored events are stored without their payload."""

    @abstractmethod
    def _fill(self, event: Event) -> None:
        """Store the payload of a stored event that lacks it (its hash already covers it)."""

    @abstractmethod
    def _write(self, old: MemoryEntry | None, new: MemoryEntry | None) -> None:
        """Replace one memory in the projections (None: absent), with its keyword index."""

    def _write_many(self, changes: Sequence[tuple[MemoryEntry | None, MemoryEntry | None]]
                    ) -> None:
        """`_write` of several memories at once (a backend may share the index work)."""
        for old, new in changes:
            self._write(old, new)

    @abstractmethod
    def _drop_vectors(self, content_hashes: Sequence[str]) -> None:
        """Delete the vectors of these texts that no stored memory has any more."""

    def _apply_accesses(self, event: Event) -> None:
        """Fold a `memory.accessed` event (a backend may update the columns directly)."""
        self._fold([event], accesses=set())

    # ------------------------------------------------------------ the rules, once

    def append(self, draft: Draft) -> Event:
        """Seal the draft onto this device's chain, store it, and update the projections."""
        device = self._sealer.device_id
        last = self._last_key()
        event = self._sealer.seal(draft, head=self._heads([device]).get(device),
                                  log_hlc=last[0] if last else None)
        self._store([event], imported=False, in_order=True)
        return event

    def import_events(self, events: list[Event]) -> int:
        """Admit exported events of any device (`chain.admit`); return how many were new or
        completed a stub (an event a per-user sync carried without its payload, which a later
        sync brings in full)."""
        if not events:
            return 0
        known = self._known(list({e.id for e in events}))
        new = chain.admit(events, known=known, heads=self._heads({e.device_id for e in events}))
        filled = self._fill_stubs([e for e in events if e.id in known and not e.redacted])
        if new:
            self._store(new, imported=True,
                        in_order=chain.in_merge_order(new, self._last_key()))
        if filled:
            self._refold(sorted({m for e in filled for m in targets(e)}))
        return len(new) + len(filled)

    def _fill_stubs(self, events: list[Event]) -> list[Event]:
        """Give stored stubs the payloads these (verified) events carry, unless the rules
        would store them redacted now (their memory is forgotten here: forget wins)."""
        stubs = self._stubs([e.id for e in events]) if events else set()
        filled = []
        for event in (e for e in events if e.id in stubs):
            past = [p for p in self._past(event.memory_id) if p.id != event.id] \
                if event.memory_id is not None else []
            if not rules.effects(event, past).store_redacted:
                self._fill(event)
                filled.append(event)
        return filled

    def _store(self, events: list[Event], *, imported: bool, in_order: bool) -> None:
        """Store `events` (in chain order) with their effects, then fold them in: onto the
        projection in merge order when they all merge after the log's last event, else by
        re-folding every memory they touch from its events in merge order."""
        redacted: set[str] = set()
        accesses: set[str] = set()
        drops: set[str] = set()
        for event in events:
            memory_id = event.memory_id
            past = self._past(memory_id) if memory_id is not None and \
                rules.needs_past(event, imported=imported) else []
            current = self.get(memory_id) if memory_id is not None and \
                event.type is EventType.FORGOTTEN else None
            fx = rules.effects(event, past, current)
            self._insert(event.redact() if fx.store_redacted else event)
            if fx.store_redacted:
                redacted.add(event.id)
            if fx.redact:
                self._redact(fx.redact)
                redacted.update(fx.redact)
            if fx.accesses is not None:
                accesses.add(event.id)
            drops.update(fx.drop_vectors)
        if in_order:
            self._fold([e.redact() if e.id in redacted else e
                        for e in sorted(events, key=merge_key)], accesses)
        else:
            self._refold(sorted({m for e in events for m in targets(e)}))
        if drops:
            self._drop_vectors(sorted(drops))

    def _refold(self, affected: list[str]) -> None:
        """Replace these memories by a replay of their stored events in merge order."""
        history: dict[str, list[Event]] = {m: [] for m in affected}
        for stored in sorted(self._touching(affected), key=merge_key):
            for memory_id in targets(stored):
                if memory_id in history:
                    history[memory_id].append(stored)
        self._write_many([(self.get(m), replay(m, history[m])) for m in affected])

    def _fold(self, events: list[Event], accesses: set[str]) -> None:
        """Fold events (in merge order) onto the projection, writing each memory they touch
        once, from its first state to its last (an access batch writes its columns directly,
        so what came before it is written first)."""
        changes: dict[str, tuple[MemoryEntry | None, MemoryEntry | None]] = {}
        for event in events:
            if event.id in accesses:
                self._write_many(list(changes.values()))
                changes.clear()
                self._apply_accesses(event)
                continue
            for memory_id in targets(event):
                first, current = changes[memory_id] if memory_id in changes else \
                    (self.get(memory_id),) * 2
                changes[memory_id] = (first, apply(current, event, memory_id))
        self._write_many(list(changes.values()))
