"""Events: types, canonical JSON, time-sortable ids, a hybrid logical clock, the hash chain.

Pure: nothing here touches a disk or a network.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Self

from engram.errors import InvalidInput

# The event format this Engram writes. 1: prev_hash linked to the store's previous event (one
# chain per store); 2: to the same device's previous event (one chain per device). Older
# versions are read through `upcast.UPCASTERS`; newer ones are refused.
SCHEMA_VERSION = 2
GENESIS_HASH = "0" * 64
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class EventType(StrEnum):
    ADDED = "memory.added"
    UPDATED = "memory.updated"
    TAGGED = "memory.tagged"
    LINKED = "memory.linked"
    TIER_CHANGED = "memory.tier_changed"
    CORROBORATED = "memory.corroborated"
    ACCESSED = "memory.accessed"
    FORGOTTEN = "memory.forgotten"
    SUPERSEDED = "memory.superseded"
    CONTRADICTED = "memory.contradicted"
    EXPIRED = "memory.expired"
    FEEDBACK = "memory.feedback"


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_id(ms: int, randomness: bytes | None = None) -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, 26 Crockford base32 characters."""
    rand = randomness if randomness is not None else os.urandom(10)
    number = (ms << 80) | int.from_bytes(rand, "big")
    chars = []
    for _ in range(26):
        number, digit = divmod(number, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))


class MonotonicIds:
    """ULIDs that sort in creation order within this process, even inside one millisecond
    (the random part is incremented instead of redrawn), as the ULID spec suggests."""

    def __init__(self) -> None:
        self._ms, self._rand = -1, 0

    def __call__(self, ms: int) -> str:
        if ms <= self._ms:
            ms, self._rand = self._ms, self._rand + 1
        else:
            self._ms, self._rand = ms, int.from_bytes(os.urandom(10), "big") >> 1
        return new_id(ms, self._rand.to_bytes(10, "big"))


next_id = MonotonicIds()


@dataclass(frozen=True, order=True, slots=True)
class HLC:
    """Hybrid logical clock timestamp: wall milliseconds plus a counter; totally ordered."""

    wall_ms: int
    counter: int = 0

    def __str__(self) -> str:
        return f"{self.wall_ms:015d}.{self.counter:05d}"

    @classmethod
    def parse(cls, text: str) -> Self:
        wall, _, counter = text.partition(".")
        return cls(int(wall), int(counter or 0))

    def tick(self, now_ms: int) -> HLC:
        """The next timestamp after this one, given the physical time now."""
        if now_ms > self.wall_ms:
            return HLC(now_ms, 0)
        return HLC(self.wall_ms, self.counter + 1)


@dataclass(frozen=True, slots=True)
class Draft:
    """An event before the store places it in the log (sequence, clock, chain)."""

    type: EventType
    memory_id: str | None
    payload: Mapping[str, Any]
    actor: str = "user"


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the append-only log.

    `hash` covers every header field and the payload's hash, not the payload itself, so a
    forgotten memory's payload can be redacted while the chain still verifies.

    `schema` is the version the event was written in. An event read from a store or an export
    carries its payload in this Engram's form (`upcast.upcast`); when an upcaster changed it,
    `as_stored` keeps the payload as written, which is what its hash covers and what an export
    writes.
    """

    id: str
    type: EventType
    schema: int
    device_id: str
    seq: int
    hlc: HLC
    actor: str
    memory_id: str | None
    payload: Mapping[str, Any] | None
    payload_hash: str
    prev_hash: str
    hash: str
    as_stored: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def redacted(self) -> bool:
        return self.payload is None

    @property
    def stored_payload(self) -> Mapping[str, Any] | None:
        """The payload as it was written (what `payload_hash` covers)."""
        return self.as_stored if self.as_stored is not None else self.payload

    def header(self) -> dict[str, Any]:
        return {
            "id": self.id, "type": self.type.value, "schema": self.schema,
            "device_id": self.device_id, "seq": self.seq, "hlc": str(self.hlc),
            "actor": self.actor, "memory_id": self.memory_id,
            "payload_hash": self.payload_hash, "prev_hash": self.prev_hash,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.header(), "payload": self.stored_payload, "hash": self.hash}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse an exported event; errors name the missing or malformed field."""
        try:
            payload = data["payload"]
            if payload is not None and not isinstance(payload, Mapping):
                raise InvalidInput("payload", "is not an object", "export the event again")
            return cls(
                id=str(data["id"]), type=EventType(data["type"]), schema=int(data["schema"]),
                device_id=str(data["device_id"]), seq=int(data["seq"]),
                hlc=HLC.parse(str(data["hlc"])), actor=str(data["actor"]),
                memory_id=data.get("memory_id"), payload=payload,
                payload_hash=str(data["payload_hash"]), prev_hash=str(data["prev_hash"]),
                hash=str(data["hash"]),
            )
        except KeyError as exc:
            raise InvalidInput(str(exc.args[0]), "is missing from the event",
                               "export the events again with `engram export`") from None
        except ValueError as exc:
            if isinstance(exc, InvalidInput):
                raise
            raise InvalidInput("event", f"malformed ({exc})",
                               "export the events again with `engram export`") from None

    def redact(self) -> Event:
        return replace(self, payload=None, as_stored=None)


def seal(draft: Draft, *, event_id: str, device_id: str, seq: int, hlc: HLC,
         prev_hash: str) -> Event:
    """Place a draft in the chain: compute its payload hash and its own hash."""
    payload = dict(draft.payload)
    unsigned = Event(
        id=event_id, type=draft.type, schema=SCHEMA_VERSION, device_id=device_id, seq=seq,
        hlc=hlc, actor=draft.actor, memory_id=draft.memory_id, payload=payload,
        payload_hash=sha256_hex(canonical_json(payload)), prev_hash=prev_hash, hash="",
    )
    return replace(unsigned, hash=event_hash(unsigned))


def event_hash(event: Event) -> str:
    return sha256_hex(canonical_json(event.header()))


def chain_problem(event: Event, expected_prev: str) -> str | None:
    """Why `event` does not belong after a link whose hash is `expected_prev`, or None."""
    if event.prev_hash != expected_prev:
        return "prev_hash does not match the previous event's hash"
    if event_hash(event) != event.hash:
        return "hash does not match the event's header"
    stored = event.stored_payload
    if stored is not None and sha256_hex(canonical_json(stored)) != event.payload_hash:
        return "payload was altered (payload_hash mismatch)"
    return None
