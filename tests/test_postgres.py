"""What only the PostgreSQL store has: its schema guard and layout rebuild, forgetting in every
table, filtered HNSW search, connection errors, and `engram migrate` between the backends.
Everything else runs on both backends in the store test modules (see conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from engram import ManualClock, Memory, StoreError
from engram.cli.main import app
from engram.query import Filters
from engram.store import open_store
from engram.store.migrate import checksum, copy_store
from engram.store.postgres.schema import MIGRATIONS
from test_recall import HashingEmbedder

pytestmark = pytest.mark.postgres_only


def dump(url: str) -> str:
    """Every row of every Engram table, as PostgreSQL prints it."""
    with psycopg.connect(url) as conn:
        return "\n".join(str(row[0]) for table in ("events", "memories", "embeddings", "meta")
                         for row in conn.execute(f"SELECT t::text FROM {table} t"))


def test_a_store_from_a_newer_version_is_refused_untouched(store_dir: str) -> None:
    with Memory(store_dir) as mem:
        mem.add("keep me", user_id="u")
    with psycopg.connect(store_dir, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = %s WHERE key = 'schema_version'",
                     (str(len(MIGRATIONS) + 1),))
    before = dump(store_dir)
    with pytest.raises(StoreError, match=r"newer Engram.*upgrade engram-memory"):
        Memory(store_dir)
    assert dump(store_dir) == before


def test_a_changed_projection_layout_is_rebuilt_on_open(store_dir: str) -> None:
    with Memory(store_dir, embedder=None) as mem:
        kept = mem.add("the keyword index is derived data", user_id="u", session_id="s")
    with psycopg.connect(store_dir, autocommit=True) as conn:  # as an older Engram left it
        conn.execute("UPDATE memories SET fts = NULL")
        conn.execute("UPDATE meta SET value = 'old-layout' WHERE key = 'projection_layout'")
    with Memory(store_dir, embedder=None) as mem:
        assert [h.memory.id for h in mem.search("derived", user_id="u")] == [kept.id]


def test_forgotten_text_is_gone_from_every_table(store_dir: str, clock: ManualClock) -> None:
    secret = "Zanzibarian quokka passphrase plumwyvern"
    with Memory(store_dir, clock=clock, embedder=HashingEmbedder()) as mem:
        for i in range(30):
            mem.add(f"ordinary memory number {i}", user_id="u", session_id="s")
        entry = mem.add(secret, user_id="u", session_id="s", tags=["vault"])
        mem.update(entry.id, text=secret + " (updated)")
        mem.search("quokka passphrase", user_id="u")
        mem.flush()
        assert "quokka" in dump(store_dir)
        mem.forget(entry.id)
        text = dump(store_dir)
        for needle in ("Zanzibarian", "zanzibarian", "quokka", "plumwyvern"):
            assert needle not in text, needle  # events, rows, tsvectors (neighbours too);
                # no digits: a hex digest could hold them by chance
        assert mem.search("quokka", user_id="u") == []
        assert mem.verify().ok
        assert mem.stats()["vectors"] == {"hashing-64": 30}


def test_filters_apply_inside_the_hnsw_scan(store_dir: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A scope past EXACT_LIMIT walks the model's HNSW index; with a filter that few rows
    pass, the iterative scan must still find every one of them, as the exact scan does."""
    query = HashingEmbedder().embed(["red apples"])[0]
    rare_session = Filters(user_id="u", session_id="rare")
    with Memory(store_dir, embedder=HashingEmbedder()) as mem:
        mem.add_many([{"text": f"red apples and green pears {i}", "user_id": "u",
                       "session_id": "busy"} for i in range(400)])
        rare = mem.add_many([{"text": f"blue whales near iceland {i}", "user_id": "u",
                              "session_id": "rare"} for i in range(6)])
        exact = mem.store.vector_search(query, rare_session, "hashing-64", 10)
    # A table this small is sorted, not walked: make the planner walk the index, as it does
    # for large tables, and check that the index matches the store's query.
    with psycopg.connect(store_dir, autocommit=True) as conn:
        conn.execute("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET enable_seqscan = off; "
                     "ALTER DATABASE %I SET enable_sort = off', current_database(), "
                     "current_database()); END $$")
    monkeypatch.setattr("engram.embed.vectors.EXACT_LIMIT", 50)
    with Memory(store_dir, embedder=HashingEmbedder()) as mem:
        approximate = mem.store.vector_search(query, rare_session, "hashing-64", 10)
    with psycopg.connect(store_dir) as conn:
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT 1 FROM embeddings e WHERE e.model = 'hashing-64' "
            "ORDER BY (e.vec::halfvec(64)) <=> (SELECT vec FROM embeddings LIMIT 1)::"
            "halfvec(64) LIMIT 5"))
    assert "Index Scan using embeddings_hnsw_hashing_64" in plan
    assert {e.id for e, _ in approximate} == {e.id for e, _ in exact} == {e.id for e in rare}
    assert [s for _, s in approximate] == sorted((s for _, s in approximate), reverse=True)


def test_an_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match=r"cannot connect to postgresql://engram:\*\*\*@"
                                         r"127\.0\.0\.1:9/nowhere .*check the URL"):
        Memory("postgresql://engram:hunter2@127.0.0.1:9/nowhere")


def test_migrate_copies_both_ways_and_proves_it(new_store: Callable[[], str], tmp_path: Path,
                                                clock: ManualClock) -> None:
    source = tmp_path / "embedded"
    with Memory(source, clock=clock, embedder=HashingEmbedder()) as mem:
        first = mem.add("Caroline adopted a puppy named Oscar", user_id="u1", session_id="s1")
        mem.add("Melanie paints sunsets", user_id="u1", session_id="s1")
        mem.tag(first.id, add=["pets"])
        clock.advance(timedelta(days=1))
        mem.forget(mem.add("a secret to forget", user_id="u2").id)
        expected = [h.memory.id for h in mem.search("puppy", user_id="u1")]
    server = new_store()
    result = CliRunner().invoke(app, ["migrate", "--from", str(source), "--to", server,
                                      "--no-vectors", "--json"])
    assert result.exit_code == 0, result.output
    assert '"events_copied": 6' in result.output and '"memories": 2' in result.output
    with Memory(server, clock=clock, embedder=None) as copy:
        assert [h.memory.id for h in copy.search("puppy", user_id="u1")] == expected
        assert copy.get(first.id).tags == ("pets",)
        assert copy.verify().ok
        copy.add("written on the server", user_id="u1", at=datetime(2026, 2, 1, tzinfo=UTC))

    back = tmp_path / "back"
    done = copy_store(server, back, vectors=False)
    assert done.events_copied == done.events_total == 8  # + an access event, a new memory
    again = copy_store(server, back, vectors=False)  # a second run copies nothing new
    assert again.events_copied == 0 and again.checksum == done.checksum
    source_store = open_store(server, clock=clock)
    copy_store_ = open_store(back, clock=clock)
    try:
        assert checksum(source_store) == checksum(copy_store_)
    finally:
        source_store.close()
        copy_store_.close()


def test_migrate_refuses_a_target_with_another_log(new_store: Callable[[], str],
                                                   tmp_path: Path) -> None:
    with Memory(tmp_path / "a", embedder=None) as mem:
        mem.add("one log", user_id="u")
    target = new_store()
    with Memory(target, embedder=None) as mem:
        mem.add("another log", user_id="u")
    result = CliRunner().invoke(app, ["migrate", "--from", str(tmp_path / "a"), "--to", target])
    assert result.exit_code == 2
    assert "does not continue the chain" in result.output
