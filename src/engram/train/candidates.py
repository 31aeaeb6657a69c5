"""Which memories are worth learning: persistent and confident long-term ones, scored by type
and by the user's feedback, and the user's accept/reject choice kept as tag events in the log
(so it is audited, travels by sync and survives `engram rebuild`).

Never a candidate: a forgotten memory (it is gone), a superseded or expired one, a raw chat
turn, and a private one: marked `sensitive` or tagged `private`. (Every memory's `privacy`
is "private" to its user by default, and a personal adapter stays that user's, so the
default privacy alone does not exclude.)"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engram import validate
from engram.capture.writer import TURN_TAG, require
from engram.errors import InvalidInput
from engram.lifecycle.consolidate import FEEDBACK_FACTORS
from engram.log.events import Draft, Event, EventType
from engram.model import Kind, MemoryEntry, Status, Tier, format_time
from engram.train import Host, settings

# The memory schema's training weights: facts and preferences high, skills and context medium,
# events low (beliefs sit with the medium ones: opinions the user holds, not facts)
KIND_WEIGHTS = {Kind.FACT: 1.0, Kind.PREFERENCE: 1.0, Kind.SKILL: 0.6, Kind.CONTEXT: 0.6,
                Kind.BELIEF: 0.6, Kind.EVENT: 0.3}
ACCEPTED, REJECTED = "train:accepted", "train:rejected"
PRIVATE_TAG = "private"
STATES = ("pending", "accepted", "rejected")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A memory that could be learnt, its score and why, and the user's choice so far."""

    memory: MemoryEntry
    score: float
    reason: str
    state: str  # one of STATES

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.memory.id, "score": self.score, "reason": self.reason,
                "state": self.state, "text": self.memory.content,
                "type": self.memory.memory_type.value, "tier": self.memory.tier.value}


def eligible(entry: MemoryEntry, min_confidence: float) -> bool:
    """Persistent, or long-term at `min_confidence`; active, not private, not a raw turn."""
    if entry.status is not Status.ACTIVE or entry.sensitive:
        return False
    if TURN_TAG in entry.tags or PRIVATE_TAG in entry.tags:
        return False
    if entry.tier is Tier.PERSISTENT:
        return True
    return entry.tier is Tier.LONG_TERM and entry.confidence.overall >= min_confidence


def score(entry: MemoryEntry, history: Sequence[Event]) -> tuple[float, str]:
    """Type weight x training weight (the feedback factors, already folded into it by the
    feedback events) x confidence, and the reason in words."""
    kind = KIND_WEIGHTS[entry.memory_type]
    parts = [f"{entry.memory_type.value} x{kind:g}", entry.tier.value,
             f"confidence {entry.confidence.overall:.2f}"]
    for event in history:
        rating = str((event.payload or {}).get("rating")) \
            if event.type is EventType.FEEDBACK else ""
        if rating in FEEDBACK_FACTORS:
            note = " (the correction is the target)" if rating == "correction" else ""
            parts.append(f"feedback {rating} x{FEEDBACK_FACTORS[rating]:g}{note}")
    value = round(kind * entry.training_weight * entry.confidence.overall, 4)
    return value, " · ".join(parts)


def state_of(entry: MemoryEntry) -> str:
    if ACCEPTED in entry.tags:
        return "accepted"
    return "rejected" if REJECTED in entry.tags else "pending"


def candidates(host: Host, user_id: str, *, state: str | None = None) -> list[Candidate]:
    """The user's candidates, best first; `state` keeps only pending, accepted or rejected."""
    if state is not None and state not in STATES:
        raise InvalidInput("state", f"unknown state {state!r}",
                           "use pending, accepted or rejected")
    floor = settings(host.policy).train_min_confidence
    found = []
    for entry in host.store.select(validate.filters(user_id), limit=None):
        if not eligible(entry, floor):
            continue
        value, reason = score(entry, host.store.history(entry.id))
        found.append(Candidate(entry, value, reason, state_of(entry)))
    found.sort(key=lambda c: (-c.score, c.memory.id))
    return [c for c in found if state is None or c.state == state]


def curate(host: Host, memory_ids: Iterable[str], accept: bool,
           user_id: str | None = None, actor: str = "user") -> list[str]:
    """Accept (or reject) the memories in one transaction: a `memory.tagged` event each, so
    the choice is in the log, and the opposite choice undoes it."""
    ids = list(dict.fromkeys(memory_ids))
    if not ids:
        raise InvalidInput("id", "no memory named", "give one or more candidate ids")
    add, remove = (ACCEPTED, REJECTED) if accept else (REJECTED, ACCEPTED)
    floor = settings(host.policy).train_min_confidence
    stamp = format_time(host.clock.now())
    with host.store.transaction() as tx:
        for memory_id in ids:
            entry = require(tx.get(memory_id), memory_id)
            if user_id is not None and entry.user_id != user_id:
                raise InvalidInput("id", f"{memory_id} belongs to another user",
                                   f"curate only {user_id}'s candidates")
            if accept and not eligible(entry, floor):
                raise InvalidInput("id", f"{memory_id} is not a training candidate "
                                   f"({entry.tier.value}, {entry.status.value})",
                                   "accept ids that `engram train candidates` lists")
            tx.append(Draft(EventType.TAGGED, memory_id,
                            {"add": [add], "remove": [remove], "at": stamp}, actor))
    return ids
