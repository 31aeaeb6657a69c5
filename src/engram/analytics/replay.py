"""Episode replay: what happened in one chat session, rebuilt from the log alone. The turns in
order; what was extracted from each; the old values the session superseded; and what happened
to those memories since (tier changes, feedback, corrections, expiry, forgetting), each with
the time it was recorded. Pure: a fold over events. A forgotten memory shows as forgotten,
without its text (its payloads are redacted)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engram.errors import InvalidInput
from engram.log.events import Event, EventType
from engram.model import format_time

TURN_TAG = "turn"  # as capture.writer tags a recorded exchange


@dataclass(frozen=True, slots=True)
class Step:
    """One thing that happened: when, what, to which memory, and in words."""

    at: str  # when it was recorded (UTC ISO 8601)
    event: str  # the event type
    memory_id: str
    role: str  # turn, extracted, memory (of the session), earlier (superseded by it)
    text: str  # the memory's text, the reason, the rating...
    turn: str | None = None  # the turn an extracted memory came from
    occurred_at: str | None = None  # when it happened, for what was added

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in (("at", self.at), ("event", self.event),
                                  ("memory_id", self.memory_id), ("role", self.role),
                                  ("text", self.text), ("turn", self.turn),
                                  ("occurred_at", self.occurred_at)) if v is not None}


@dataclass
class Timeline:
    session_id: str
    user_id: str
    steps: list[Step] = field(default_factory=list)

    @property
    def turns(self) -> int:
        return sum(1 for s in self.steps if s.role == "turn" and s.event == EventType.ADDED)

    def to_dict(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "user_id": self.user_id, "turns": self.turns,
                "steps": [s.to_dict() for s in self.steps]}


def replay(events: Iterable[Event], session_id: str, user_id: str) -> Timeline:
    """The session's timeline; InvalidInput when the user has no such session."""
    out = Timeline(session_id, user_id)
    roles: dict[str, str] = {}  # memory id -> role in this session
    origin: dict[str, str] = {}  # extracted memory -> its turn
    for event in events:
        step = _step(event, session_id, user_id, roles, origin)
        if step is not None:
            out.steps.append(step)
    if not out.steps:
        raise InvalidInput("session", f"{session_id!r} has no events for user {user_id!r}",
                           f"list the user's sessions with `engram list --user {user_id}`")
    return out


@dataclass(frozen=True, slots=True)
class Session:
    """A session as the log knows it: whose, how many memories it added, when last."""

    user_id: str
    session_id: str
    memories: int
    last: str  # when its newest memory was recorded (UTC ISO 8601)


def sessions(events: Iterable[Event], user_id: str | None = None,
             limit: int = 20) -> list[Session]:
    """The sessions with memories (of one user, or all), most recent first."""
    seen: dict[tuple[str, str], tuple[int, str]] = {}
    for event in events:
        p = event.payload
        if event.type is not EventType.ADDED or p is None:
            continue
        memory = p["memory"]
        owner, session = memory.get("user_id"), memory.get("session_id")
        if session is None or (user_id is not None and owner != user_id):
            continue
        count, _ = seen.get((owner, session), (0, ""))
        seen[(owner, session)] = (count + 1, _recorded(event))
    found = [Session(u, s, n, last) for (u, s), (n, last) in seen.items()]
    return sorted(found, key=lambda s: (s.last, s.session_id), reverse=True)[:limit]


def _recorded(event: Event) -> str:
    return format_time(datetime.fromtimestamp(event.hlc.wall_ms / 1000, UTC))


def _step(event: Event, session: str, user: str, roles: dict[str, str],
          origin: dict[str, str]) -> Step | None:
    mid, p = event.memory_id, event.payload
    if mid is None or event.type is EventType.ACCESSED:
        return None
    at = _recorded(event)
    if event.type is EventType.ADDED:
        if p is None:
            return None
        memory = p["memory"]
        turns = [t for t in memory.get("links", {}).get("derived_from", [])
                 if roles.get(t) == "turn"]
        mine = memory.get("user_id") == user and memory.get("session_id") == session
        if not mine and not turns:
            return None
        roles[mid] = "turn" if TURN_TAG in memory.get("tags", ()) else \
            "extracted" if turns else "memory"
        if turns:
            origin[mid] = turns[0]
        return Step(at, event.type.value, mid, roles[mid], memory["content"], origin.get(mid),
                    memory.get("occurred_at"))
    if p is not None and event.type in (EventType.SUPERSEDED, EventType.CONTRADICTED) \
            and mid not in roles and p.get("by") in roles:
        return Step(at, event.type.value, mid, "earlier", f"by {p['by']}: {p.get('reason', '')}")
    if mid not in roles:
        return None
    return Step(at, event.type.value, mid, roles[mid], _detail(event), origin.get(mid))


def _detail(event: Event) -> str:
    """An event in a few words (a redacted one: only that it happened)."""
    p = event.payload
    if p is None:
        return "(forgotten)" if event.type is EventType.FORGOTTEN else "(redacted)"
    if event.type is EventType.TIER_CHANGED:
        return f"{p['from']} → {p['to']}: {p.get('reason', '')}"
    if event.type is EventType.FEEDBACK:
        return f"rated {p['rating']} (confidence {p['confidence']:.2f})"
    if event.type is EventType.UPDATED:
        changes = p["changes"]
        return str(changes["content"]) if "content" in changes else \
            "changed " + ", ".join(sorted(changes))
    if event.type is EventType.LINKED:
        return f"{p['kind']} {p['target']}"
    if event.type is EventType.TAGGED:
        return " ".join([*(f"+{t}" for t in p.get("add", [])),
                         *(f"-{t}" for t in p.get("remove", []))])
    if event.type in (EventType.SUPERSEDED, EventType.CONTRADICTED):
        return f"by {p['by']}: {p.get('reason', '')}"
    return str(p.get("reason", ""))
