"""JSONL export/import is a lossless round trip; bad files are refused whole."""

import io
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from engram import ManualClock, Memory
from engram.errors import InvalidInput, StoreError
from engram.log.events import event_hash
from engram.log.export import read_events, write_events

pytestmark = pytest.mark.all_backends


def export(mem: Memory) -> str:
    buffer = io.StringIO()
    write_events(mem.events(), buffer)
    return buffer.getvalue()


def populate(mem: Memory) -> None:
    a = mem.add("I live in Lisbon", user_id="u", metadata={"n": 1.5, "ü": [True, None]})
    b = mem.add("Ich wohne jetzt in Berlin 🐻", user_id="u", tags=["home"])
    mem.link(b.id, "supersedes", a.id)
    c = mem.add("secret to forget", user_id="u")
    mem.search("Berlin", user_id="u")
    mem.flush()
    mem.forget(c.id)


def test_round_trip_is_lossless(new_store: Callable[[], Path], clock: ManualClock) -> None:
    with Memory(new_store(), clock=clock) as source:
        populate(source)
        text = export(source)
        memories = source.list(limit=None)
    with Memory(new_store(), clock=clock) as copy:
        assert copy.import_events(read_events(text.encode())) == len(text.splitlines())
        assert export(copy) == text
        assert copy.list(limit=None) == memories
        assert copy.verify().ok
        # importing again is idempotent
        assert copy.import_events(read_events(text.encode())) == 0


def test_bad_files_name_the_line_and_change_nothing(new_store: Callable[[], Path]) -> None:
    with Memory(new_store()) as source:
        populate(source)
        lines = export(source).encode().splitlines(keepends=True)
    with Memory(new_store()) as target:
        with pytest.raises(InvalidInput, match="line 3: is not valid JSON"):
            read_events(b"".join(lines[:2]) + lines[2][:40])
        with pytest.raises(InvalidInput, match="line 2: is not valid UTF-8"):
            read_events(lines[0] + b"\xff\xfe" + lines[1])
        with pytest.raises(InvalidInput, match="line 1: seq"):
            read_events(lines[0].replace(b'"seq":1', b'"nope":1'))
        with pytest.raises(StoreError, match=r"line 1: .*does not continue the chain"):
            target.import_events(read_events(b"".join(lines[1:])))
        assert target.stats()["events"] == 0 and target.count() == 0


def test_the_order_of_the_lines_does_not_matter(new_store: Callable[[], Path],
                                                clock: ManualClock) -> None:
    with Memory(new_store(), clock=clock) as source:
        populate(source)
        text = export(source)
        memories = source.list(limit=None)
    lines = text.splitlines(keepends=True)
    with Memory(new_store(), clock=clock) as copy:
        assert copy.import_events(read_events("".join(reversed(lines)).encode())) == len(lines)
        assert export(copy) == text and copy.list(limit=None) == memories
        assert copy.verify().ok


def test_an_event_that_differs_from_the_stored_one_is_refused(
        new_store: Callable[[], Path]) -> None:
    with Memory(new_store()) as source:
        source.add("the original text", user_id="u")
        text = export(source)
    with Memory(new_store()) as copy:
        copy.import_events(read_events(text.encode()))
        original = read_events(text.encode())[0]
        damaged = replace(original, actor="mallory")  # its hash no longer matches it
        with pytest.raises(StoreError, match=r"line 1: .*is damaged .*hash does not match"):
            copy.import_events([damaged])
        resealed = replace(damaged, hash=event_hash(damaged))  # consistent, but not ours
        with pytest.raises(StoreError, match=r"line 1: .*differs from the stored event"):
            copy.import_events([resealed])
        assert copy.verify().ok and copy.stats()["events"] == 1
