"""Schema upcasting: events written by an older Engram are read in this version's form.

Every event records the `schema` it was written in. Reading one from a store or an export
passes it through the upcasters from its version up to `SCHEMA_VERSION`, one step (N -> N+1)
at a time. Hashes stay verifiable: an upcaster changes the payload the fold reads, never the
header, and the event keeps the payload as written (`Event.as_stored`), which its hash covers
and an export writes. An event from a newer schema than this Engram knows is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from engram.errors import InvalidInput
from engram.log.events import SCHEMA_VERSION, Event, EventType

# One step: the payload of an event of `type` at schema N, as schema N+1 spells it.
Upcaster = Callable[[EventType, dict[str, Any]], dict[str, Any]]


def _v1_to_v2(_type: EventType, payload: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 changed what the header's prev_hash links to (the same device's previous
    event, not the store's), not any payload: the payload reads the same. Stores migrate
    their schema-1 chains on open (`log.legacy`)."""
    return payload


# UPCASTERS[n] turns a schema-n payload into schema n+1; one entry per version below the
# current one.
UPCASTERS: Mapping[int, Upcaster] = {1: _v1_to_v2}
assert sorted(UPCASTERS) == list(range(1, SCHEMA_VERSION)), "an upcaster per older schema"


def upcast(event: Event, *, upcasters: Mapping[int, Upcaster] = UPCASTERS,
           current: int = SCHEMA_VERSION) -> Event:
    """`event` with its payload in schema `current`'s form; refused when it is newer."""
    if event.schema > current:
        raise InvalidInput("schema", f"event {event.id} was written in schema {event.schema}, "
                           f"and this Engram reads schemas 1 to {current}",
                           "upgrade engram-memory to read it")
    if event.schema < 1:
        raise InvalidInput("schema", f"event {event.id} has schema {event.schema}, which no "
                           "Engram wrote", "export the event again with `engram export`")
    if event.schema == current or event.payload is None or event.as_stored is not None:
        return event
    payload = dict(event.payload)
    for version in range(event.schema, current):
        payload = upcasters[version](event.type, payload)
    if payload == event.payload:
        return event
    return replace(event, payload=payload, as_stored=event.stored_payload)
