"""What a read asks for and what it returns: filters, ranking briefs, hits. Plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from engram.model import Kind, MemoryEntry, Status, Tier


@dataclass(frozen=True, slots=True)
class Filters:
    """Scope and narrowing of a read. `user_id` isolates; everything else narrows.

    Time bounds apply to `occurred_at` (when it happened): `since` inclusive, `until` exclusive.
    `statuses` None means any status; by default only active memories are read.
    `include_sensitive=False` leaves out memories flagged sensitive.
    """

    user_id: str | None = None
    agent_id: str | None = None
    session_id: str | None = None
    tags: tuple[str, ...] = ()
    memory_type: Kind | None = None
    tier: Tier | None = None
    since: datetime | None = None
    until: datetime | None = None
    statuses: tuple[Status, ...] | None = (Status.ACTIVE,)
    include_sensitive: bool = True
    min_confidence: float | None = None

    @property
    def narrows(self) -> bool:
        """Whether anything beyond the user scope and the status choice narrows the read."""
        return self != Filters(user_id=self.user_id, statuses=self.statuses)


@dataclass(frozen=True, slots=True)
class Hit:
    """A recalled memory, its score, and the parts the score is made of."""

    memory: MemoryEntry
    score: float
    components: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Brief:
    """What ranking needs to know of a memory. Stores read it from columns, so candidates
    are ranked without parsing whole memories; only the winners are loaded."""

    id: str
    user_id: str
    session_id: str | None
    occurred_at: datetime
    tier: Tier
    confidence: float
    access_count: int
    last_seen: datetime | None = None  # last changed, confirmed or recalled
    text: str | None = None  # the content, read with the row (a question's signals read it)

    @classmethod
    def of(cls, m: MemoryEntry) -> Brief:
        return cls(m.id, m.user_id, m.session_id, m.occurred_at, m.tier, m.confidence.overall,
                   m.access_count, max(m.updated_at, m.last_accessed or m.updated_at),
                   m.content)
