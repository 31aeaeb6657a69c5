"""Per-user scope: a bundle for one user carries that user's events in full and every other
event redacted (header and payload hash, no payload).

Chains are per device and gap-free, so a receiver cannot take a device's events 5 and 7
without 6: another user's event 6 travels as a stub that still verifies (the hash covers the
payload's hash, not the payload) and folds to nothing, as a forgotten memory's events do.
What is not provably the user's is redacted: an access batch that counts any other user's
memory, and the events of a memory the store no longer holds (forgotten: their payloads are
redacted already, and the forget itself still forgets on the receiver as a stub)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set

from engram.log.events import Event, EventType
from engram.query import Filters
from engram.store.base import Store


def owned(store: Store, user: str) -> frozenset[str]:
    """The ids of the user's memories, of any status, that the store holds."""
    return frozenset(m.id for m in store.select(Filters(user_id=user, statuses=None),
                                                limit=None))


def scoped(events: Iterable[Event], mine: Set[str]) -> Iterator[Event]:
    """`events` with every event that is not about a memory in `mine` redacted."""
    for event in events:
        yield event if event.redacted or _about(event, mine) else event.redact()


def _about(event: Event, mine: Set[str]) -> bool:
    if event.type is EventType.ACCESSED:
        assert event.payload is not None
        return all(memory_id in mine for memory_id in event.payload["accesses"])
    return event.memory_id is not None and event.memory_id in mine
