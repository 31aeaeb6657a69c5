"""Schema upcasting: old events are read in today's form, hashes still verify over what was
stored, and an event from a newer Engram is refused with the fix."""

from __future__ import annotations

import io
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from engram import Memory
from engram.errors import InvalidInput
from engram.log import upcast as U
from engram.log.events import (
    GENESIS_HASH,
    HLC,
    SCHEMA_VERSION,
    Draft,
    Event,
    EventType,
    chain_problem,
    event_hash,
    new_id,
    seal,
)
from engram.log.export import read_events, write_events


def v1_event() -> Event:
    """A `memory.tagged` event as Engram 0.1 wrote it (schema 1)."""
    event = seal(Draft(EventType.TAGGED, "m1", {"add": ["pets"], "at": "2026-01-01T00:00:00Z"}),
                 event_id=new_id(1000), device_id="dev-old", seq=1, hlc=HLC(1000),
                 prev_hash=GENESIS_HASH)
    old = replace(event, schema=1)
    return replace(old, hash=event_hash(old))


def test_the_v1_upcaster_is_explicit_and_reads_v1_payloads_as_they_are() -> None:
    assert SCHEMA_VERSION == 2 and sorted(U.UPCASTERS) == [1]
    old = v1_event()
    read = U.upcast(old)
    assert read.payload == old.payload and read.schema == 1 and read.as_stored is None
    assert chain_problem(read, GENESIS_HASH) is None


def _renamed(_type: EventType, payload: dict[str, Any]) -> dict[str, Any]:
    """A made-up schema 2 -> 3 step: `add` became `tags`."""
    return {("tags" if k == "add" else k): v for k, v in payload.items()}


def test_an_upcaster_changes_the_payload_read_while_hashes_cover_what_was_stored() -> None:
    old = v1_event()
    steps = {**U.UPCASTERS, 2: _renamed}
    read = U.upcast(old, upcasters=steps, current=3)
    assert read.payload == {"tags": ["pets"], "at": "2026-01-01T00:00:00Z"}
    assert read.stored_payload == old.payload and read.schema == 1
    assert chain_problem(read, GENESIS_HASH) is None  # the hash is over the stored form
    assert read.to_dict() == old.to_dict()  # an export writes what was stored
    assert U.upcast(read, upcasters=steps, current=3) == read  # upcast once only
    assert read.redact().stored_payload is None
    buffer = io.StringIO()
    write_events([read], buffer)
    assert read_events(buffer.getvalue().encode()) == [old]


def test_an_event_from_a_newer_engram_is_refused_with_the_fix() -> None:
    newer = replace(v1_event(), schema=SCHEMA_VERSION + 1)
    with pytest.raises(InvalidInput, match=r"schema: .*written in schema 3.*upgrade "
                                           r"engram-memory"):
        U.upcast(newer)
    buffer = io.StringIO()
    write_events([newer], buffer)
    with pytest.raises(InvalidInput, match=r"line 1: schema: .*upgrade engram-memory"):
        read_events(buffer.getvalue().encode())


def test_a_store_holding_an_event_from_a_newer_engram_is_refused_on_read(
        tmp_path: Path) -> None:
    with Memory(tmp_path / "store", embedder=None) as mem:
        entry = mem.add("written by a future Engram", user_id="u")
    with sqlite3.connect(tmp_path / "store" / "engram.db") as db:
        db.execute("UPDATE events SET schema = ?", (SCHEMA_VERSION + 1,))
    with Memory(tmp_path / "store", embedder=None) as mem, \
            pytest.raises(InvalidInput, match=r"schema: .*upgrade engram-memory"):
        mem.history(entry.id)
