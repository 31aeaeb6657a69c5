"""Moving a store in and out: the event log as JSONL (lossless), memories as Parquet."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from engram.errors import InvalidInput
from engram.log.events import Event, canonical_json
from engram.log.upcast import upcast
from engram.model import MemoryEntry, to_json


def write_events(events: Iterable[Event], out: IO[str]) -> int:
    """One canonical JSON object per line; returns the number written."""
    count = 0
    for event in events:
        out.write(canonical_json(event.to_dict()) + "\n")
        count += 1
    return count


def read_events(data: bytes) -> list[Event]:
    """Parse an export, each event upcast to this Engram's schema; the error names the line
    and what is wrong with it."""
    events = []
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"line {number}", f"is not valid UTF-8 (byte {exc.start})",
                               "re-export the file or fix its encoding") from None
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"line {number}", f"is not valid JSON ({exc.msg}); the file may "
                               "be truncated", "re-export the file with `engram export`") from None
        if not isinstance(obj, dict):
            raise InvalidInput(f"line {number}", "is not a JSON object",
                               "each line must be one exported event")
        try:
            events.append(upcast(Event.from_dict(obj)))
        except InvalidInput as exc:
            raise InvalidInput(f"line {number}: {exc.field}", exc.problem, exc.fix) from None
    return events


def parquet_rows(memories: Iterable[MemoryEntry]) -> list[dict[str, Any]]:
    """Flat rows for analysis tools: one column per scalar, JSON text for nested fields."""
    rows = []
    for m in memories:
        rows.append({
            "id": m.id, "user_id": m.user_id, "agent_id": m.agent_id,
            "session_id": m.session_id, "content": m.content, "summary": m.summary,
            "content_hash": m.content_hash, "tier": m.tier.value,
            "truth_category": m.truth_category.value, "memory_type": m.memory_type.value,
            "confidence": m.confidence.overall,
            "corroboration_count": m.confidence.corroboration_count,
            "contradiction_count": m.confidence.contradiction_count,
            "tags": list(m.tags), "entities": list(m.entities), "domains": list(m.domains),
            "created_at": m.created_at, "updated_at": m.updated_at,
            "occurred_at": m.occurred_at, "last_accessed": m.last_accessed,
            "access_count": m.access_count, "device_id": m.device_id,
            "privacy": m.privacy.value,
            "links": json.dumps(to_json(m.links)), "sources": json.dumps(to_json(m.sources)),
            "metadata": json.dumps(dict(m.metadata), ensure_ascii=False),
        })
    return rows


def write_parquet(memories: Iterable[MemoryEntry], path: Path) -> int:
    """The memories table as Parquet (needs the `parquet` extra)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInput("--parquet", "needs pyarrow, which is not installed",
                           "pip install 'engram-memory[parquet]'") from None
    rows = parquet_rows(memories)
    table = pa.Table.from_pylist(rows, schema=_schema(pa)) if rows else _schema(pa).empty_table()
    pq.write_table(table, path)
    return len(rows)


def _schema(pa: Any) -> Any:
    ts, text, texts = pa.timestamp("us", tz="UTC"), pa.string(), pa.list_(pa.string())
    return pa.schema([
        ("id", text), ("user_id", text), ("agent_id", text), ("session_id", text),
        ("content", text), ("summary", text), ("content_hash", text), ("tier", text),
        ("truth_category", text), ("memory_type", text), ("confidence", pa.float64()),
        ("corroboration_count", pa.int64()), ("contradiction_count", pa.int64()),
        ("tags", texts), ("entities", texts), ("domains", texts), ("created_at", ts),
        ("updated_at", ts), ("occurred_at", ts), ("last_accessed", ts),
        ("access_count", pa.int64()), ("device_id", text), ("privacy", text), ("links", text),
        ("sources", text), ("metadata", text),
    ])
