"""The one writer of memories: `add`, `add_many`, `remember_turn` and the LLM extractor's
decisions all reach the log through `Writer`, so a rule (how an exact duplicate corroborates,
how a changed value supersedes) is written once. It takes the store, the embeddings, the
clock and the limits, never the facade."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from engram import validate
from engram.clock import Clock
from engram.errors import InvalidInput, NotFound
from engram.lifecycle import consolidate
from engram.log.events import Draft, EventType
from engram.model import (
    DEFAULT_MAX_CONTENT_BYTES,
    LinkKind,
    MemoryEntry,
    Status,
    check_unit,
    format_time,
    to_json,
)
from engram.recall.hybrid import Hybrid
from engram.store.base import Store, Tx

TURN_TAG = "turn"  # the raw record of a chat exchange


@dataclass(frozen=True, slots=True)
class Limits:
    """What a write may hold."""

    max_content_bytes: int = DEFAULT_MAX_CONTENT_BYTES


def require(entry: MemoryEntry | None, memory_id: str) -> MemoryEntry:
    """The memory, or NotFound naming its id."""
    if entry is None:
        raise NotFound(memory_id)
    return entry


class Writer:
    """Validated items in, events out: one transaction per call."""

    def __init__(self, store: Store, embeddings: Hybrid, clock: Clock, *,
                 limits: Limits = Limits(), actor: str = "user") -> None:
        self.store, self.embeddings, self.clock = store, embeddings, clock
        self.limits, self.actor = limits, actor

    def prepare(self, item: Mapping[str, Any]) -> tuple[MemoryEntry, bool]:
        """The entry `item` (add()'s fields) describes, and whether it may corroborate."""
        return validate.prepare(item, now=self.clock.now(), device_id=self.store.device_id,
                                max_content_bytes=self.limits.max_content_bytes)

    def add_many(self, items: Iterable[Mapping[str, Any]]) -> list[MemoryEntry]:
        """Add each item, or corroborate the live memory with its exact text: all or none."""
        prepared = []
        for index, item in enumerate(items):
            try:
                prepared.append(self.prepare(item))
            except InvalidInput as exc:
                raise InvalidInput(f"items[{index}].{exc.field}", exc.problem, exc.fix) from None
        vectors = self.embeddings.vectors_for([entry for entry, _ in prepared])
        with self.store.transaction() as tx:
            self.embeddings.store_vectors(tx, vectors)
            return [self.apply(tx, entry, consolidate.Decision(
                tx.find_by_hash(entry.user_id, entry.content_hash) if dedupe else None))
                for entry, dedupe in prepared]

    def update(self, memory_id: str, fields: Mapping[str, Any],
               confidence: float | None = None) -> MemoryEntry:
        """Change a memory's content or attributes (update()'s arguments)."""
        changes = validate.changes(fields, self.limits.max_content_bytes)
        vectors = self._vectors_for_change(memory_id, changes)
        with self.store.transaction() as tx:
            current = require(tx.get(memory_id), memory_id)
            self.embeddings.store_vectors(tx, vectors)
            if confidence is not None:
                overall = check_unit(confidence, "confidence")
                changes["confidence"] = to_json(replace(current.confidence, overall=overall))
            if not changes:
                raise InvalidInput("update", "nothing to change",
                                   "pass text, metadata, memory_type, ... to change")
            self.append(tx, EventType.UPDATED, memory_id,
                        {"changes": changes, "at": format_time(self.clock.now())})
            return require(tx.get(memory_id), memory_id)

    def feedback(self, memory_id: str, rating: str, correction: str | None) -> MemoryEntry:
        """The rating, and for a correction the new text, in one transaction."""
        changes = {} if correction is None else \
            validate.changes({"text": correction}, self.limits.max_content_bytes)
        vectors = self._vectors_for_change(memory_id, changes)
        with self.store.transaction() as tx:
            current = require(tx.get(memory_id), memory_id)
            self.embeddings.store_vectors(tx, vectors)
            now = format_time(self.clock.now())
            if changes:
                self.append(tx, EventType.UPDATED, memory_id, {"changes": changes, "at": now})
            confidence, weight = consolidate.after_feedback(
                current.confidence.overall, current.training_weight, rating)
            self.append(tx, EventType.FEEDBACK, memory_id, {
                "rating": rating, "confidence": confidence, "training_weight": weight,
                "at": now})
            return require(tx.get(memory_id), memory_id)

    def change(self, memory_id: str, kind: EventType, payload: dict[str, Any], *,
               also_exists: str | None = None) -> MemoryEntry:
        """One event on an existing memory (and on `also_exists`: a link's target)."""
        with self.store.transaction() as tx:
            require(tx.get(memory_id), memory_id)
            if also_exists is not None:
                require(tx.get(also_exists), also_exists)
            self.append(tx, kind, memory_id, payload)
            return require(tx.get(memory_id), memory_id)

    def _vectors_for_change(self, memory_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Vectors of a changed text, computed before the write transaction."""
        if "content" not in changes:
            return {}
        current = require(self.store.get(memory_id), memory_id)
        return self.embeddings.vectors_for([replace(current, content=changes["content"],
                                                    content_hash=changes["content_hash"])])

    def apply(self, tx: Tx, entry: MemoryEntry, decision: consolidate.Decision) -> MemoryEntry:
        """Write what `decision` says `entry` does: add it or corroborate its target, then
        supersede the values it replaces."""
        stamp = format_time(entry.created_at)
        if decision.target is None:
            self.append(tx, EventType.ADDED, entry.id, {"memory": entry.to_dict()})
            stored = entry
        else:
            stored = self._corroborate(tx, decision.target, entry, stamp)
        for old in decision.supersede:
            self._supersede(tx, old, stored, stamp)
            self.append(tx, EventType.LINKED, stored.id,
                        {"kind": LinkKind.SUPERSEDES.value, "target": old.id, "at": stamp})
            # The turns that stated the old value stay in recall for everything else they
            # said, marked as contradicted by the new value (recall ranks them below it).
            for turn_id in old.links.derived_from:
                turn = tx.get(turn_id)
                if turn is not None and turn.status is Status.ACTIVE and TURN_TAG in turn.tags:
                    self._supersede(tx, turn, stored, stamp, EventType.CONTRADICTED)
        if not decision.supersede:
            return stored  # as stored: an added entry folds to itself
        return tx.get(stored.id) or stored

    def append(self, tx: Tx, kind: EventType, memory_id: str, payload: dict[str, Any]) -> None:
        tx.append(Draft(kind, memory_id, payload, self.actor))

    def _corroborate(self, tx: Tx, target: MemoryEntry, entry: MemoryEntry,
                     stamp: str) -> MemoryEntry:
        """One rule for every writer: the confidence rises, the new source is kept, and
        every turn that said it links to the memory."""
        payload: dict[str, Any] = {"at": stamp, "confidence": consolidate.corroborated(
            max(target.confidence.overall, entry.confidence.overall))}
        if entry.sources:
            payload["source"] = to_json(entry.sources[0])
        self.append(tx, EventType.CORROBORATED, target.id, payload)
        for turn_id in entry.links.derived_from:
            self.append(tx, EventType.LINKED, target.id, {
                "kind": LinkKind.DERIVED_FROM.value, "target": turn_id, "at": stamp})
        found = tx.get(target.id)
        assert found is not None
        return found

    def _supersede(self, tx: Tx, old: MemoryEntry, new: MemoryEntry, stamp: str,
                   kind: EventType = EventType.SUPERSEDED) -> None:
        self.append(tx, kind, old.id, {
            "by": new.id, "at": stamp, "reason": f"now: {new.content}",
            "confidence": consolidate.contradicted(old.confidence.overall)})
