"""The fold from events to memories. Live writes and `rebuild` both go through `apply`,
so a rebuilt store equals the live one by construction (and a property test checks it)."""

from __future__ import annotations

from dataclasses import replace

from engram.log.events import Event, EventType
from engram.model import (
    LinkKind,
    MemoryEntry,
    Source,
    Status,
    Tier,
    parse_time,
)

# Fields an `memory.updated` event may change; the rest have their own event types.
UPDATABLE = frozenset({
    "content", "content_hash", "summary", "metadata", "memory_type", "truth_category",
    "privacy", "confidence", "occurred_at", "entities", "domains", "shared_with", "sensitive",
    "links",  # a concept redone by compaction names its new members
})


def targets(event: Event) -> list[str]:
    """Ids of the memories an event changes (a redacted access batch, as a per-user sync
    sends another user's, changes none)."""
    if event.type is EventType.ACCESSED:
        return list(event.payload["accesses"]) if event.payload is not None else []
    return [event.memory_id] if event.memory_id else []


def apply(current: MemoryEntry | None, event: Event, memory_id: str) -> MemoryEntry | None:
    """The memory `memory_id` after `event`; None when it does not exist (or was forgotten)."""
    if event.type is EventType.FORGOTTEN:
        return None
    if event.payload is None:
        # Redacted: an event of a forgotten memory (whose added event is redacted too, so
        # there is nothing to keep), or another user's event that a per-user sync carried
        # as a stub, which must not touch a memory this store holds in full.
        return current
    p = event.payload
    if event.type is EventType.ADDED:
        return MemoryEntry.from_dict(p["memory"])
    if current is None:
        return None
    if event.type is EventType.ACCESSED:
        count, last = p["accesses"][memory_id]
        seen = parse_time(last, "last_accessed")
        latest = max(seen, current.last_accessed) if current.last_accessed else seen
        return replace(current, access_count=current.access_count + count, last_accessed=latest)
    at = parse_time(p["at"], "at")
    if event.type is EventType.UPDATED:
        merged = {**current.to_dict(), **p["changes"], "updated_at": p["at"]}
        return MemoryEntry.from_dict(merged)
    if event.type is EventType.TAGGED:
        kept = [t for t in current.tags if t not in p.get("remove", [])]
        added = [t for t in p.get("add", []) if t not in kept]
        return replace(current, tags=(*kept, *added), updated_at=at)
    if event.type is EventType.LINKED:
        links = current.links.add(LinkKind(p["kind"]), p["target"])
        return replace(current, links=links, updated_at=at)
    if event.type is EventType.TIER_CHANGED:
        # A transition decided from another tier than the current one is stale: another
        # device recorded it (or a later one) first. Skipping it keeps promotions made by
        # maintenance on two devices from undoing each other (docs/sync.md).
        if p.get("from", current.tier.value) != current.tier.value:
            return current
        return replace(current, tier=Tier(p["to"]), updated_at=at)
    conf = current.confidence
    # Events carry the confidence their writer computed, so replay never re-derives it.
    overall = p.get("confidence", conf.overall)
    if event.type is EventType.CORROBORATED:  # also revives an expired or superseded memory
        return replace(
            current,
            confidence=replace(conf, overall=overall,
                               corroboration_count=conf.corroboration_count + 1),
            sources=(*current.sources, Source(**p["source"])) if p.get("source") else
            current.sources,
            status=Status.ACTIVE, updated_at=at,
        )
    if event.type in (EventType.SUPERSEDED, EventType.CONTRADICTED):
        superseded = event.type is EventType.SUPERSEDED
        links = current.links.add(LinkKind.SUPERSEDED_BY if superseded else
                                  LinkKind.CONTRADICTS, p["by"])
        return replace(
            current,
            confidence=replace(conf, overall=overall,
                               contradiction_count=conf.contradiction_count + 1),
            links=links, status=Status.SUPERSEDED if superseded else current.status,
            updated_at=at,
        )
    if event.type is EventType.EXPIRED:
        # Only an active memory expires: a second device's expiry of the same memory, or one
        # decided before a supersession arrived, is recognised and changes nothing.
        if current.status is not Status.ACTIVE:
            return current
        return replace(current, status=Status.EXPIRED, updated_at=at)
    if event.type is EventType.FEEDBACK:
        return replace(current, confidence=replace(conf, overall=overall),
                       training_weight=p["training_weight"],
                       validated=current.validated or p["rating"] != "bad", updated_at=at)
    raise ValueError(f"no projection rule for {event.type}")


def fold(events: list[Event]) -> dict[str, MemoryEntry]:
    """Replay events from nothing: the live memories, by id."""
    state: dict[str, MemoryEntry] = {}
    for event in events:
        for memory_id in targets(event):
            entry = apply(state.get(memory_id), event, memory_id)
            if entry is None:
                state.pop(memory_id, None)
            else:
                state[memory_id] = entry
    return state



def replay(memory_id: str, events: list[Event]) -> MemoryEntry | None:
    """One memory folded from nothing: `events` are those that target it, in merge order (a
    live import of events older than what is applied re-folds the memories they touch)."""
    entry: MemoryEntry | None = None
    for event in events:
        if memory_id in targets(event):
            entry = apply(entry, event, memory_id)
    return entry
