"""`Memory.maintain()`: apply the tier rules of `tiers.py` to every active memory, as events
(promotions and expiries with their reasons), in one transaction; then, when `compact` is
given, compaction of the users with enough new memories (`compact.min_new`), one transaction
per concept. Fading by disuse needs no events: ranking computes it from when a memory was
last seen (`recall.fading`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engram.lifecycle import tiers
from engram.lifecycle.tiers import Policy
from engram.log.events import Draft, EventType
from engram.model import Kind, MemoryEntry, Tier, format_time
from engram.query import Filters
from engram.store.base import Store
from engram.store.settings import MAINTAINED_AT


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    at: datetime
    examined: int
    promoted: int
    expired: int
    compacted: int = 0  # concepts written or redone

    def to_dict(self) -> dict[str, Any]:
        return {"at": format_time(self.at), "examined": self.examined,
                "promoted": self.promoted, "expired": self.expired,
                "compacted": self.compacted}


def maintain(store: Store, policy: Policy, now: datetime, actor: str,
             compact: Callable[[Sequence[MemoryEntry]], int] | None = None
             ) -> MaintenanceReport:
    """Promote and expire what the rules say, compact (`compact(short-term memories)` returns
    the concepts it wrote), and record when it ran."""
    counts = {"examined": 0, "promoted": 0, "expired": 0}
    stamp = format_time(now)
    found = candidates(store, policy)
    with store.transaction() as tx:
        for entry in found:
            counts["examined"] += 1
            history = store.history(entry.id) if policy.identity_tag in entry.tags else []
            change = tiers.review(entry, history, now, policy)
            if change is not None and change.to_tier is not None:
                tx.append(Draft(EventType.TIER_CHANGED, entry.id, {
                    "from": entry.tier.value, "to": change.to_tier.value,
                    "reason": change.reason, "at": stamp}, actor))
                counts["promoted"] += 1
            elif change is not None:
                tx.append(Draft(EventType.EXPIRED, entry.id,
                                {"reason": change.reason, "at": stamp}, actor))
                counts["expired"] += 1
    if compact is not None:
        counts["compacted"] = compact([m for m in found if m.tier is Tier.SHORT_TERM])
    store.set_setting(MAINTAINED_AT, stamp)
    return MaintenanceReport(now, **counts)


def candidates(store: Store, policy: Policy) -> list[MemoryEntry]:
    """The memories a rule could move: every short-term one (they are few: promoted or
    expired within days), and the long-term ones that meet a precondition of persistence
    (high confidence, the identity tag, preferences). Not the whole store."""
    found = {m.id: m for m in store.select(Filters(tier=Tier.SHORT_TERM), newest_first=False)}
    for narrowed in (Filters(tier=Tier.LONG_TERM, min_confidence=policy.absolute_confidence),
                     Filters(tier=Tier.LONG_TERM, tags=(policy.identity_tag,)),
                     Filters(tier=Tier.LONG_TERM, memory_type=Kind.PREFERENCE)):
        found |= {m.id: m for m in store.select(narrowed, newest_first=False)}
    return list(found.values())


def overdue(store: Store, policy: Policy, now: datetime) -> bool:
    """Whether lazy maintenance should run now (never when `every_hours` is 0)."""
    if policy.every_hours <= 0:
        return False
    last = store.get_setting(MAINTAINED_AT)
    if last is None:
        return True
    return (now - datetime.fromisoformat(last)).total_seconds() >= policy.every_hours * 3600
