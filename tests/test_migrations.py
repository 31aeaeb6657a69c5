"""Schema upgrades are code; a store from a newer Engram is refused with the fix."""

import sqlite3
from pathlib import Path

import pytest

from engram import Memory, StoreError
from engram.store.sqlite.schema import MIGRATIONS

pytestmark = pytest.mark.all_backends


@pytest.mark.sqlite_only("reads the SQLite file's user_version and journal mode")
def test_new_store_is_at_the_latest_schema(store_dir: Path) -> None:
    Memory(store_dir).close()
    with sqlite3.connect(store_dir / "engram.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.sqlite_only("compares the SQLite file's bytes (test_postgres.py has its own)")
def test_store_from_a_newer_version_is_refused_untouched(store_dir: Path) -> None:
    with Memory(store_dir) as mem:
        mem.add("keep me", user_id="u")
    with sqlite3.connect(store_dir / "engram.db") as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    before = (store_dir / "engram.db").read_bytes()
    with pytest.raises(StoreError, match=r"newer Engram.*upgrade engram-memory"):
        Memory(store_dir)
    assert (store_dir / "engram.db").read_bytes() == before


def test_device_id_is_stable_across_opens(store_dir: Path) -> None:
    with Memory(store_dir) as mem:
        first = mem.store.device_id
    with Memory(store_dir, device_id="ignored-once-set") as mem:
        assert mem.store.device_id == first


@pytest.mark.sqlite_only("rewrites the FTS5 table (test_postgres.py has its own)")
def test_a_changed_projection_layout_is_rebuilt_on_open(store_dir: Path) -> None:
    with Memory(store_dir) as mem:
        kept = mem.add("the keyword index is derived data", user_id="u", session_id="s")
    with sqlite3.connect(store_dir / "engram.db") as db:  # as an older Engram left it
        db.execute("DROP TABLE memories_fts")
        db.execute("CREATE VIRTUAL TABLE memories_fts USING fts5(content)")
        db.execute("UPDATE meta SET value = 'old-layout' WHERE key = 'projection_layout'")
    with Memory(store_dir) as mem:
        assert [h.memory.id for h in mem.search("derived", user_id="u")] == [kept.id]
        mem.add("and writes work again", user_id="u", session_id="s")
