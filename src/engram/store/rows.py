"""Backend-neutral row mapping: a memory as the columns of `memories`, a candidate's brief,
and an event as the columns of `events`. Both backends store the same columns."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

from engram.log.chain import Head
from engram.log.events import HLC, Event, canonical_json
from engram.log.upcast import upcast
from engram.model import MemoryEntry, Tier, format_time
from engram.query import Brief


class Row(Protocol):
    """A result row read by column name (sqlite3.Row, psycopg's dict rows)."""

    def __getitem__(self, key: str, /) -> Any: ...


EVENT_COLUMNS = ("id, type, schema, device_id, seq, hlc, actor, memory_id, payload, "
                 "payload_hash, prev_hash, hash")

# Columns of `memories` besides `doc`, which holds the rest of the entry as JSON.
_COLUMNS = ("id", "user_id", "agent_id", "session_id", "content", "content_hash", "tier",
            "memory_type", "occurred_at", "created_at", "tags", "access_count", "status",
            "sensitive", "slot")
# Every column `row_of` fills, in its order: the entry's columns, then what ranking reads
# besides them (confidence; when the memory was last seen: changed, confirmed or recalled).
ROW_COLUMNS = (*_COLUMNS, "confidence", "last_seen", "doc")
# What ranking reads of a candidate (recall.Brief), straight from columns: the content in
# the same read, where the candidate query already holds the row (a second query by id costs
# ~0.5 ms a search at 100k memories: docs/benchmarks.md).
BRIEF = ("m.id, m.user_id, m.session_id, m.occurred_at, m.tier, m.confidence, "
         "m.access_count, m.last_seen, m.content")


def index_changes(old: MemoryEntry | None, new: MemoryEntry | None) -> bool:
    """Whether the keyword index sees a difference: what `index_keys` reads of a memory and
    of its place among its session's neighbours."""
    if old is None or new is None:
        return True
    return (old.content, old.occurred_at, old.session_id, old.slot) != \
        (new.content, new.occurred_at, new.session_id, new.slot)


def row_of(entry: MemoryEntry) -> tuple[Any, ...]:
    data = entry.to_dict()
    cols = [data.pop(col, None) for col in _COLUMNS]
    cols[2] = cols[2] if cols[2] else None
    cols[_COLUMNS.index("tier")] = entry.tier.value
    cols[_COLUMNS.index("memory_type")] = entry.memory_type.value
    cols[_COLUMNS.index("tags")] = json.dumps(list(entry.tags), ensure_ascii=False)
    cols[_COLUMNS.index("access_count")] = entry.access_count
    cols[_COLUMNS.index("status")] = entry.status.value
    cols[_COLUMNS.index("sensitive")] = int(entry.sensitive)
    seen = max(entry.updated_at, entry.last_accessed or entry.updated_at)
    return (*cols, entry.confidence.overall, format_time(seen),
            json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


_TIERS = {tier.value: tier for tier in Tier}  # a dict lookup: Tier(value) costs 20x more


def brief_from(row: Row) -> Brief:
    return Brief(row["id"], row["user_id"], row["session_id"],
                 datetime.fromisoformat(row["occurred_at"]), _TIERS[row["tier"]],
                 row["confidence"], row["access_count"],
                 datetime.fromisoformat(row["last_seen"]) if row["last_seen"] else None,
                 row["content"])


def entry_from(row: Row) -> MemoryEntry:
    data: dict[str, Any] = json.loads(row["doc"])
    for col in _COLUMNS:
        if row[col] is not None:
            data[col] = row[col]
    data["tags"] = json.loads(row["tags"])
    data["sensitive"] = bool(row["sensitive"])
    return MemoryEntry.from_dict(data)


def event_row(event: Event) -> tuple[Any, ...]:
    """The values of an `events` row (the columns `event_from` reads), in that order: the
    event as it was written (an upcast payload is stored in its original form)."""
    return (event.id, event.type.value, event.schema, event.device_id, event.seq,
            str(event.hlc), event.actor, event.memory_id, payload_text(event),
            bytes.fromhex(event.payload_hash), bytes.fromhex(event.prev_hash),
            bytes.fromhex(event.hash))


def payload_text(event: Event) -> str | None:
    """The `payload` column of an event's row: its payload as written, or NULL (redacted)."""
    stored = event.stored_payload
    return None if stored is None else canonical_json(stored)


def event_from(row: Row) -> Event:
    """The stored event, its payload upcast to this Engram's schema (`log.upcast`)."""
    return upcast(Event.from_dict({
        **{k: row[k] for k in ("id", "type", "schema", "device_id", "seq", "hlc", "actor",
                               "memory_id")},
        "payload": None if row["payload"] is None else json.loads(row["payload"]),
        "payload_hash": bytes(row["payload_hash"]).hex(),
        "prev_hash": bytes(row["prev_hash"]).hex(),
        "hash": bytes(row["hash"]).hex(),
    }))


def head_from(row: Row) -> Head:
    """A device's last event (`log.chain.Head`) from a row of its seq, hash and hlc."""
    return Head(int(row["seq"]), bytes(row["hash"]).hex(), HLC.parse(str(row["hlc"])))
