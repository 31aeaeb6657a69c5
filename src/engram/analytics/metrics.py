"""How memory is used, per store or per user: memories by tier, type and status over time,
promotions and expiries per day, tier transitions per day, context utilisation and recall hit
rate (from the contexts the service assembled), and compaction. `engram stats --json` prints
them, `--parquet` writes them as one long table, the dashboard's analytics page draws them.

The tier and type series come from the dashboard's fold (`server.insights`, pure); this module
adds statuses and transitions per day, and reads the rest from the store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engram.context.tokens import estimate_tokens
from engram.log.events import Event, EventType
from engram.model import Kind
from engram.query import Filters
from engram.server.insights import GONE, day_of, gather
from engram.store.base import Store

_STATUS_OF = {EventType.SUPERSEDED: "superseded", EventType.EXPIRED: "expired"}


@dataclass
class Metrics:
    days: list[str] = field(default_factory=list)
    tiers: dict[str, list[int]] = field(default_factory=dict)  # tier -> active count per day
    types: dict[str, list[int]] = field(default_factory=dict)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    promotions: dict[str, int] = field(default_factory=dict)  # day -> count
    expiries: dict[str, int] = field(default_factory=dict)
    transitions: dict[str, dict[str, int]] = field(default_factory=dict)  # "a→b" -> day -> n
    utilisation: dict[str, Any] = field(default_factory=dict)
    recall_hit_rate: float | None = None
    compaction: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"days": self.days, "tiers": self.tiers, "types": self.types,
                "statuses": self.statuses, "promotions": self.promotions,
                "expiries": self.expiries, "transitions": self.transitions,
                "utilisation": self.utilisation, "recall_hit_rate": self.recall_hit_rate,
                "compaction": self.compaction}

    def rows(self) -> Iterator[tuple[str, str | None, str, float]]:
        """(metric, day, series, value): the long table `--parquet` writes."""
        for metric, series in (("tier", self.tiers), ("type", self.types),
                               ("status", self.statuses)):
            for name, values in series.items():
                for day, value in zip(self.days, values, strict=True):
                    yield metric, day, name, float(value)
        for metric, per_day in (("promotions", self.promotions), ("expiries", self.expiries)):
            for day, value in sorted(per_day.items()):
                yield metric, day, metric, float(value)
        for move, days in self.transitions.items():
            for day, value in sorted(days.items()):
                yield "transition", day, move, float(value)
        for day, (contexts, used, budget) in sorted(self.utilisation.get("days", {}).items()):
            yield "utilisation", day, "contexts", float(contexts)
            yield "utilisation", day, "share", used / budget if budget else 0.0
        if self.recall_hit_rate is not None:
            yield "recall_hit_rate", None, "all", self.recall_hit_rate
        for name, value in self.compaction.items():
            yield "compaction", None, name, float(value)


def of_user(events: Iterable[Event], user_id: str) -> Iterator[Event]:
    """The events of one user's memories (access batches cut down to them)."""
    mine: set[str] = set()
    for event in events:
        p = event.payload
        if event.type is EventType.ACCESSED:
            if p is not None and (kept := {k: v for k, v in p["accesses"].items() if k in mine}):
                yield replace(event, payload={**p, "accesses": kept})
            continue
        if event.type is EventType.ADDED and p is not None and \
                p["memory"].get("user_id") == user_id and event.memory_id:
            mine.add(event.memory_id)
        if event.memory_id in mine:
            yield event


def measure(store: Store, user_id: str | None = None) -> Metrics:
    """Every metric of the store, or of one user's memories."""
    events = list(store.events() if user_id is None else of_user(store.events(), user_id))
    found = gather(events)
    out = Metrics(found.days, found.by_tier, found.by_type, promotions=found.promotions,
                  expiries=found.expiries)
    out.statuses, out.transitions = _statuses_and_moves(events, found.days)
    out.utilisation, out.recall_hit_rate = _contexts(store, user_id)
    out.compaction = compaction(store, user_id)
    return out


def _statuses_and_moves(events: list[Event], days: list[str]
                        ) -> tuple[dict[str, list[int]], dict[str, dict[str, int]]]:
    """Memories per status at the end of each day; tier and status moves per day."""
    status: dict[str, str] = {}
    tier: dict[str, str] = {}
    per_day: list[Counter[str]] = []
    moves: dict[str, dict[str, int]] = {}
    current: str | None = None

    def move(day: str, a: str, b: str) -> None:
        days_of = moves.setdefault(f"{a}→{b}", {})
        days_of[day] = days_of.get(day, 0) + 1

    for event in events:
        day, mid, p = day_of(event), event.memory_id, event.payload
        if day != current and current is not None:
            per_day.append(Counter(status.values()))
        current = day
        if mid is None or event.type is EventType.ACCESSED:
            continue
        if event.type is EventType.ADDED and p is not None:
            status[mid], tier[mid] = "active", p["memory"].get("tier", "short_term")
            move(day, "new", tier[mid])
        elif event.type is EventType.TIER_CHANGED and p is not None and mid in tier:
            move(day, p["from"], p["to"])
            tier[mid] = p["to"]
        elif event.type in _STATUS_OF and status.get(mid) == "active":
            status[mid] = _STATUS_OF[event.type]
            move(day, tier[mid], GONE[event.type])
        elif event.type is EventType.CORROBORATED and mid in status:
            status[mid] = "active"
        elif event.type is EventType.FORGOTTEN:
            status.pop(mid, None)
    if current is not None:
        per_day.append(Counter(status.values()))
    names = sorted({s for c in per_day for s in c})
    return {s: [c[s] for c in per_day] for s in names}, moves


def _contexts(store: Store, user_id: str | None) -> tuple[dict[str, Any], float | None]:
    """Utilisation (tokens used of the budget) and recall hit rate (memories used in a
    context of those recalled for it), from the contexts the service recorded."""
    from engram.server.usage import ContextUsage

    state = ContextUsage(store).summary()
    samples = [s for s in state["samples"] if user_id is None or s["user_id"] == user_id]
    used = sum(s["tokens_used"] for s in samples)
    budget = sum(s["budget_tokens"] for s in samples)
    utilisation = {"contexts": len(samples), "tokens_used": used, "budget_tokens": budget,
                   "share": used / budget if budget else None,
                   "days": state["days"] if user_id is None else {}}
    counted = [s for s in samples if s.get("recalled")]
    recalled = sum(s["recalled"] for s in counted)
    rate = sum(s["memories"] for s in counted) / recalled if recalled else None
    return utilisation, rate


def compaction(store: Store, user_id: str | None) -> dict[str, Any]:
    """Concepts, their members, and the compression ratio: the (estimated) tokens of the
    active memories over those of the compacted memory (concept summaries plus the memories
    in no concept)."""
    active = store.select(Filters(user_id=user_id), limit=None)
    if user_id is not None:
        active = [m for m in active if m.user_id == user_id]
    concepts = [m for m in active if m.memory_type is Kind.CONCEPT]
    members = {i for c in concepts for i in c.links.derived_from}
    plain = [m for m in active if m.memory_type is not Kind.CONCEPT]
    whole = sum(estimate_tokens(m.content) for m in plain)
    compacted = sum(estimate_tokens(m.content) for m in concepts) + \
        sum(estimate_tokens(m.content) for m in plain if m.id not in members)
    return {"concepts": len(concepts), "members": len(members & {m.id for m in plain}),
            "memories": len(plain), "tokens": whole, "compacted_tokens": compacted,
            "ratio": round(whole / compacted, 2) if compacted else 1.0}


def write_parquet(metrics: Metrics, path: Path) -> int:
    """The metrics as one long table (metric, day, series, value); returns rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(metrics.rows())
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    table = pa.table({"metric": pa.array(columns[0], pa.string()),
                      "day": pa.array(columns[1], pa.string()),
                      "series": pa.array(columns[2], pa.string()),
                      "value": pa.array(columns[3], pa.float64())})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return len(rows)
