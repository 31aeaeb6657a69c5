"""A store written by the previous release (tests/data/store_v0_1, made by
tests/data/make_store_v0_1.py with Engram 0.1.0) opens, migrates to per-device chains,
verifies, answers the same searches, keeps forgotten text forgotten, and takes new writes.

SQLite only: the fixture is a SQLite file."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from engram import EventType, Memory
from engram.cli.main import app
from engram.log.events import SCHEMA_VERSION
from engram.store.sqlite.schema import MIGRATIONS

DATA = Path(__file__).parent / "data"
EXPECTED: dict[str, Any] = json.loads((DATA / "store_v0_1.json").read_text())
# The order in which make_store_v0_1.py ran them (searches count accesses).
QUERIES = ["puppy", "paints sunsets", "where do I live", "Radiohead", "Berlin", "PIN"]


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    store = tmp_path / "store_v0_1"
    shutil.copytree(DATA / "store_v0_1", store)
    return store


def store_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def test_the_fixture_is_a_previous_release_store(old_store: Path) -> None:
    with sqlite3.connect(old_store / "engram.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2 < len(MIGRATIONS)
        assert {r[0] for r in db.execute("SELECT DISTINCT schema FROM events")} == {1}


def test_a_previous_release_store_migrates_verifies_and_answers_the_same(
        old_store: Path) -> None:
    with Memory(old_store, embedder=None) as mem:
        report = mem.verify()
        assert report.ok, report
        assert report.checked == EXPECTED["events"] and report.devices == 1
        for query in QUERIES:
            for user in ("u1", "u2"):
                found = [h.memory.id for h in mem.search(query, user_id=user)]
                assert found == EXPECTED["searches"][f"{user}:{query}"], (user, query)
        for user, ids in EXPECTED["memories"].items():
            assert sorted(m.id for m in mem.list(user_id=user, status="all")) == ids
        history = mem.history(EXPECTED["forgotten_id"])
        assert history[-1].type is EventType.FORGOTTEN
        assert all(e.payload is None for e in history[:-1])
        old = list(mem.events())
        assert {e.schema for e in old} == {1}  # one device: its chain needed no re-seal

        fresh = mem.add("a memory written after the upgrade", user_id="u1")
        event = mem.history(fresh.id)[-1]
        assert event.schema == SCHEMA_VERSION
        assert event.seq == old[-1].seq + 1 and event.prev_hash == old[-1].hash
        assert event.hlc > max(e.hlc for e in old)
        assert mem.verify().ok and mem.verify().checked == EXPECTED["events"] + 1
        assert [h.memory.id for h in mem.search("upgrade", user_id="u1")] == [fresh.id]
    with sqlite3.connect(old_store / "engram.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        legacy = json.loads(db.execute(
            "SELECT value FROM meta WHERE key = 'legacy_chain'").fetchone()[0])
    assert legacy["events"] == EXPECTED["events"] and legacy["resealed"] == 0
    assert legacy["problem"] is None
    assert EXPECTED["forgotten_text"].encode() not in store_bytes(old_store)
    assert b"4321" not in store_bytes(old_store)


def test_engram_verify_passes_on_a_previous_release_store(old_store: Path) -> None:
    result = CliRunner().invoke(app, ["verify", "--data", str(old_store)])
    assert result.exit_code == 0, result.output
    assert f"{EXPECTED['events']} events" in result.output
    again = CliRunner().invoke(app, ["verify", "--data", str(old_store)])  # migrated once
    assert again.exit_code == 0, again.output


def test_the_forgotten_text_is_on_no_file_before_or_after(old_store: Path) -> None:
    assert EXPECTED["forgotten_text"].encode() not in store_bytes(old_store)
    with Memory(old_store, embedder=None) as mem:
        assert mem.search("bank PIN", user_id="u1") == []
        assert mem.rebuild() == sum(len(ids) for ids in EXPECTED["memories"].values())
    assert EXPECTED["forgotten_text"].encode() not in store_bytes(old_store)
