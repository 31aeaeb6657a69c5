"""Appending to the log, written once for every backend: sealing this device's drafts,
admitting imported events, storing each with its effects (`rules`) and folding it into the
projections (`projection`). A backend's write transaction subclasses `LogWrites` and supplies
the primitives (rows in, rows out); the order of the steps and every decision live here."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
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

    def get_many(self, memory_ids: Sequence[str]) -> dict[str, MemoryEntry]:
        """`get` of several memories: those that exist, by id (a backend reads them at once)."""
        return {m: entry for m in memory_ids if (entry := self.get(m)) is not None}

    @abstractmethod
    def _past(self, memory_ids: Sequence[str]) -> list[Event]:
        """The stored events whose memory_id is one of `memory_ids`."""

    @abstractmethod
    def _touching(self, memory_ids: Sequence[str]) -> list[Event]:
        """Stored events that may target these memories (a superset will do)."""

    @abstractmethod
    def _insert(self, events: Sequence[Event]) -> None:
        """Store the events' rows as they are (payload as stored, or NULL when redacted), in
        this order."""

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
        arrived = [e for e in events if e.id in stubs]
        pasts = self._pasts(sorted({e.memory_id for e in arrived if e.memory_id is not None}))
        filled = []
        for event in arrived:
            past = [p for p in pasts.get(event.memory_id or "", []) if p.id != event.id]
            if not rules.effects(event, past).store_redacted:
                self._fill(event)
                filled.append(event)
        return filled

    def _pasts(self, memory_ids: Sequence[str]) -> dict[str, list[Event]]:
        """The stored events of each of these memories, read at once."""
        pasts: dict[str, list[Event]] = defaultdict(list)
        for stored in self._past(memory_ids) if memory_ids else []:
            pasts[str(stored.memory_id)].append(stored)
        return pasts

    def _store(self, events: list[Event], *, imported: bool, in_order: bool) -> None:
        """Store `events` (in chain order) with their effects, then fold them in: onto the
        projection in merge order when they all merge after the log's last event, else by
        re-folding every memory they touch from its events in merge order. The effects are
        decided first, over what is stored plus the batch's events before each one, so every
        row is written once, as it ends (a payload the batch's own forget redacts never
        reaches the disk)."""
        pasts = self._pasts(sorted({e.memory_id for e in events if e.memory_id is not None
                                    and rules.needs_past(e, imported=imported)}))
        kept: dict[str, Event] = {}  # what is stored of each event, in chain order
        earlier: list[str] = []  # events stored before this batch to redact
        accesses: set[str] = set()
        drops: set[str] = set()
        for event in events:
            memory_id = event.memory_id
            past = pasts[memory_id] if memory_id is not None and \
                rules.needs_past(event, imported=imported) else []
            current = self.get(memory_id) if memory_id is not None and \
                event.type is EventType.FORGOTTEN else None
            fx = rules.effects(event, past, current)
            kept[event.id] = event.redact() if fx.store_redacted else event
            if memory_id is not None:
                pasts[memory_id].append(kept[event.id])
            if fx.redact:
                gone = set(fx.redact)
                earlier += [i for i in fx.redact if i not in kept]
                kept.update((i, kept[i].redact()) for i in gone if i in kept)
                pasts[str(memory_id)] = [p.redact() if p.id in gone else p
                                         for p in pasts[str(memory_id)]]
            if fx.accesses is not None:
                accesses.add(event.id)
            drops.update(fx.drop_vectors)
        self._insert(list(kept.values()))
        if earlier:
            self._redact(earlier)
        if in_order:
            self._fold(sorted(kept.values(), key=merge_key), accesses)
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
        before = self.get_many(affected)
        self._write_many([(before.get(m), replay(m, history[m])) for m in affected])

    def _fold(self, events: list[Event], accesses: set[str]) -> None:
        """Fold events (in merge order) onto the projection, writing each memory they touch
        once, from its first state to its last (an access batch writes its columns directly,
        so what came before it is written first)."""
        run: list[Event] = []
        for event in events:
            if event.id in accesses:
                self._fold_run(run)
                run = []
                self._apply_accesses(event)
            else:
                run.append(event)
        self._fold_run(run)

    def _fold_run(self, events: list[Event]) -> None:
        """Fold events without an access batch among them: the memories they touch are read
        at once, folded in memory and written at once."""
        touched = list(dict.fromkeys(m for event in events for m in targets(event)))
        if not touched:
            return
        first = self.get_many(touched)
        last: dict[str, MemoryEntry | None] = dict(first)
        for event in events:
            for memory_id in targets(event):
                last[memory_id] = apply(last.get(memory_id), event, memory_id)
        self._write_many([(first.get(m), last.get(m)) for m in touched])
