"""What storing an event does besides its fold step: which payloads it redacts, which vectors
it purges, whether it is stored redacted itself, and whether only access statistics change.

Pure and written once; every backend applies the `Effects` it returns (`log.append`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engram.log.events import Event, EventType
from engram.model import MemoryEntry


@dataclass(frozen=True, slots=True)
class Effects:
    """What follows from storing one event.

    `redact`: ids of stored events whose payload is set to NULL (forget means forget).
    `drop_vectors`: content hashes whose vectors go, unless a memory still has that text
    (a vector can be inverted into its text). `store_redacted`: the event is stored without
    its payload (it arrived for a memory already forgotten). `accesses`: the event changes
    access statistics only (memory id -> [count, last access]), which a backend may apply as
    column updates; None for every other event."""

    redact: tuple[str, ...] = ()
    drop_vectors: tuple[str, ...] = ()
    store_redacted: bool = False
    accesses: Mapping[str, Sequence[Any]] | None = None


NONE = Effects()


def needs_past(event: Event, *, imported: bool) -> bool:
    """Whether `effects` must see the stored events of the event's memory: a forget redacts
    them; an imported event may arrive after its memory was forgotten elsewhere (a local
    writer only writes to memories that exist)."""
    return event.memory_id is not None and (imported or event.type is EventType.FORGOTTEN)


def effects(event: Event, past: Sequence[Event] = (),
            current: MemoryEntry | None = None) -> Effects:
    """The effects of storing `event`, given the stored events of its memory (`past`, any
    order, the event itself excluded) and the memory as the projection holds it."""
    if event.type is EventType.ACCESSED:
        if event.payload is None:  # another user's batch in a per-user sync: nothing to count
            return NONE
        return Effects(accesses=event.payload["accesses"])
    if event.type is EventType.FORGOTTEN:
        texts = {current.content_hash} if current is not None else set()
        texts |= {h for e in past if (h := _content_hash(e)) is not None}
        return Effects(redact=tuple(e.id for e in past if e.payload is not None),
                       drop_vectors=tuple(sorted(texts)))
    if any(e.type is EventType.FORGOTTEN for e in past):
        return Effects(store_redacted=event.payload is not None)
    return NONE


def _content_hash(event: Event) -> str | None:
    """The content hash an added or updated event gave its memory, if any."""
    if event.payload is None or event.type not in (EventType.ADDED, EventType.UPDATED):
        return None
    part = event.payload.get("memory" if event.type is EventType.ADDED else "changes")
    found = part.get("content_hash") if isinstance(part, Mapping) else None
    return found if isinstance(found, str) else None
