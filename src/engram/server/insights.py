"""What the dashboard shows, read from the event log: memories per tier and type over time,
promotions and expiries, tier transitions and the most recalled memories. Pure: a fold over
events, tested without a server."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from engram.log.events import Event, EventType

TIER_RANK = {"short_term": 0, "long_term": 1, "persistent": 2}
GONE = {EventType.EXPIRED: "expired", EventType.SUPERSEDED: "superseded",
        EventType.FORGOTTEN: "forgotten"}


@dataclass
class Insights:
    days: list[str] = field(default_factory=list)
    by_tier: dict[str, list[int]] = field(default_factory=dict)  # tier -> count at each day
    by_type: dict[str, list[int]] = field(default_factory=dict)
    promotions: dict[str, int] = field(default_factory=dict)  # day -> count
    demotions: dict[str, int] = field(default_factory=dict)
    expiries: dict[str, int] = field(default_factory=dict)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    recalls: Counter[str] = field(default_factory=Counter)  # memory id -> times recalled


def day_of(event: Event) -> str:
    return datetime.fromtimestamp(event.hlc.wall_ms / 1000, UTC).date().isoformat()


def gather(events: Iterable[Event]) -> Insights:
    """One pass over the log. A memory counts towards its tier and type while it is active."""
    out = Insights()
    live: dict[str, tuple[str, str]] = {}  # id -> (tier, type) of active memories
    known: dict[str, tuple[str, str]] = {}  # the same for every memory ever seen
    snapshots: list[tuple[str, Counter[str], Counter[str]]] = []
    current_day: str | None = None

    def snapshot() -> None:
        if current_day is not None:
            snapshots.append((current_day, Counter(t for t, _ in live.values()),
                              Counter(k for _, k in live.values())))

    for event in events:
        day = day_of(event)
        if day != current_day:
            snapshot()
            current_day = day
        _fold(event, day, live, known, out)
    snapshot()
    out.days = [d for d, _, _ in snapshots]
    tiers = sorted({t for _, c, _ in snapshots for t in c}, key=lambda t: TIER_RANK.get(t, 9))
    kinds = sorted({k for _, _, c in snapshots for k in c})
    out.by_tier = {t: [c[t] for _, c, _ in snapshots] for t in tiers}
    out.by_type = {k: [c[k] for _, _, c in snapshots] for k in kinds}
    return out


def _fold(event: Event, day: str, live: dict[str, tuple[str, str]],
          known: dict[str, tuple[str, str]], out: Insights) -> None:
    p, mid = event.payload, event.memory_id
    if event.type is EventType.ACCESSED and p is not None:
        for memory_id, (count, _) in p["accesses"].items():
            out.recalls[memory_id] += count
        return
    if mid is None:
        return
    if event.type is EventType.ADDED and p is not None:
        memory = p["memory"]
        known[mid] = live[mid] = (memory.get("tier", "short_term"),
                                  memory.get("memory_type", "fact"))
        out.transitions[("new", known[mid][0])] += 1
    elif event.type is EventType.TIER_CHANGED and p is not None and mid in known:
        before, after = p["from"], p["to"]
        known[mid] = (after, known[mid][1])
        if mid in live:
            live[mid] = known[mid]
        out.transitions[(before, after)] += 1
        bucket = out.promotions if TIER_RANK.get(after, 0) > TIER_RANK.get(before, 0) \
            else out.demotions
        bucket[day] = bucket.get(day, 0) + 1
    elif event.type is EventType.UPDATED and p is not None and mid in known:
        kind = p["changes"].get("memory_type")
        if kind:
            known[mid] = (known[mid][0], kind)
            if mid in live:
                live[mid] = known[mid]
    elif event.type in GONE and mid in live:
        out.transitions[(live.pop(mid)[0], GONE[event.type])] += 1
        if event.type is EventType.EXPIRED:
            out.expiries[day] = out.expiries.get(day, 0) + 1
    elif event.type is EventType.CORROBORATED and mid in known and mid not in live:
        live[mid] = known[mid]  # corroboration revives an expired or superseded memory
    if event.type is EventType.FORGOTTEN:
        known.pop(mid, None)
        live.pop(mid, None)
        out.recalls.pop(mid, None)
