"""The store contract: what every backend must do, as abstract test cases (the pattern of
pyeventsourcing's tests/persistence.py).

A backend's test module (test_store_sqlite.py, test_store_postgres.py) defines one `Backend`
subclass, which says how to make fresh, empty store locations, and runs every contract by
subclassing it: `class TestStore(SQLite, StoreContract): ...`. The contracts are
`StoreContract` below (the `Store` protocol of engram/store/base.py, used directly) and the
feature contracts kept beside the tests of their feature (`MemoryContract` in test_memory.py,
`RecallContract` in test_recall.py, ...). A new backend passes when its module runs them all.

Inside a contract class the shared fixtures of conftest.py (`store_dir`, `mem`, `clock`) use
the class's `new_store`, so a contract test reads like any other test.
"""

from __future__ import annotations

import itertools
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engram import ManualClock
from engram.embed.vectors import quantize
from engram.log.events import GENESIS_HASH, Draft, EventType, chain_problem, next_id
from engram.model import MemoryEntry, Status, Tier, content_hash, format_time
from engram.query import Brief, Filters
from engram.recall.ranking import keyword_terms
from engram.store import open_store
from engram.store.base import Store

NewStore = Callable[[], "str | Path"]
_numbers = itertools.count()


# ---------------------------------------------------------------- store locations


@contextmanager
def directories(tmp_path: Path) -> Iterator[NewStore]:
    """Fresh SQLite store locations: directories not yet created."""
    yield lambda: tmp_path / f"engram-data-{next(_numbers)}"


@contextmanager
def databases(admin_url: str) -> Iterator[NewStore]:
    """Fresh PostgreSQL store locations: URLs of new, empty databases on the server at
    `admin_url`, dropped afterwards."""
    import psycopg

    created: list[str] = []

    def make() -> str:
        name = f"engram_test_{os.getpid()}_{next(_numbers)}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}".encode())
        created.append(name)
        return database_url(admin_url, name)

    try:
        yield make
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            for name in created:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


def database_url(server_url: str, name: str) -> str:
    """The server's URL with another database name."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


class Backend(ABC):
    """The hook a backend's test module fills in: its name and how to make store locations.
    Every contract inherits it, so its tests can ask for `new_store` and `backend`."""

    name: ClassVar[str]

    @abstractmethod
    def locations(self, request: pytest.FixtureRequest) -> AbstractContextManager[NewStore]:
        """Makes fresh, empty store locations for one test, and cleans them up after it."""

    @pytest.fixture
    def new_store(self, request: pytest.FixtureRequest) -> Iterator[NewStore]:
        with self.locations(request) as make:
            yield make

    @pytest.fixture
    def backend(self) -> str:
        return self.name


# ---------------------------------------------------------------- the Store protocol

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MODEL = "test-4d"
_WORDS = ("kite", "river", "garden", "tea", "lisbon", "jazz")


def memory(text: str, *, user: str = "u1", session: str | None = None,
           at: datetime = T0, tags: tuple[str, ...] = (), slot: str | None = None) -> MemoryEntry:
    return MemoryEntry(id=next_id(int(at.timestamp() * 1000)), content=text,
                       content_hash=content_hash(text), created_at=at, updated_at=at,
                       occurred_at=at, user_id=user, session_id=session, tags=tags, slot=slot)


def added(entry: MemoryEntry) -> Draft:
    return Draft(EventType.ADDED, entry.id, {"memory": entry.to_dict()})


class StoreContract(Backend):
    """The `Store` protocol used directly, without the facade: what a new backend must do."""

    @pytest.fixture
    def store(self, new_store: NewStore, clock: ManualClock) -> Iterator[Store]:
        opened = open_store(new_store(), clock=clock)
        yield opened
        opened.close()

    def write(self, store: Store, *entries: MemoryEntry) -> list[MemoryEntry]:
        with store.transaction() as tx:
            for entry in entries:
                tx.append(added(entry))
        return list(entries)

    def test_a_new_store_is_empty(self, store: Store) -> None:
        assert store.count(Filters()) == 0
        assert store.select(Filters()) == []
        assert list(store.events()) == []
        assert store.get("nope") is None and store.history("nope") == []
        assert store.verify().ok and store.verify().checked == 0
        stats = store.stats()
        assert (stats["memories"], stats["events"], stats["device_id"]) == \
            (0, 0, store.device_id)
        assert store.device_id

    def test_append_seals_drafts_into_one_chain(self, store: Store,
                                                clock: ManualClock) -> None:
        entry = memory("Ada lives in Lisbon")
        with store.transaction() as tx:
            first = tx.append(added(entry))
            clock.advance(timedelta(seconds=1))
            second = tx.append(Draft(EventType.TAGGED, entry.id, {
                "add": ["home"], "at": format_time(clock.now())}))
        assert (first.seq, second.seq) == (1, 2)
        assert first.device_id == second.device_id == store.device_id
        assert chain_problem(first, GENESIS_HASH) is None
        assert chain_problem(second, first.hash) is None
        assert second.hlc > first.hlc
        assert list(store.events()) == [first, second] == store.history(entry.id)
        report = store.verify()
        assert report.ok and report.checked == 2
        assert store.stats()["events"] == 2

    def test_reads_inside_a_transaction_see_its_own_writes(self, store: Store) -> None:
        entry = memory("Ada lives in Lisbon", slot="user/home")
        with store.transaction() as tx:
            assert tx.get(entry.id) is None
            tx.append(added(entry))
            assert tx.get(entry.id) == entry
            assert tx.find_by_hash("u1", entry.content_hash) == entry
            assert tx.find_by_hash("u2", entry.content_hash) is None
            assert tx.find_by_slot("u1", "user/home") == [entry]
            assert tx.find_by_slot("u2", "user/home") == []
        assert store.get(entry.id) == entry

    def test_a_failed_transaction_leaves_nothing_behind(self, store: Store) -> None:
        kept = self.write(store, memory("kept"))[0]
        with pytest.raises(RuntimeError), store.transaction() as tx:
            tx.append(added(memory("lost")))
            raise RuntimeError("the operation fails halfway")
        assert store.select(Filters()) == [kept]
        assert [e.memory_id for e in store.events()] == [kept.id]
        later = self.write(store, memory("later"))[0]  # the chain goes on from `kept`
        assert store.verify().ok and store.get(later.id) == later

    def test_the_projection_follows_each_event(self, store: Store,
                                               clock: ManualClock) -> None:
        entry = self.write(store, memory("Ada lives in Lisbon"))[0]
        stamp = format_time(clock.now())
        with store.transaction() as tx:
            tx.append(Draft(EventType.UPDATED, entry.id, {
                "changes": {"content": "Ada lives in Porto",
                            "content_hash": content_hash("Ada lives in Porto")}, "at": stamp}))
            tx.append(Draft(EventType.TIER_CHANGED, entry.id,
                            {"from": "short_term", "to": "long_term", "reason": "r",
                             "at": stamp}))
        got = store.get(entry.id)
        assert got is not None and got.content == "Ada lives in Porto"
        assert got.tier is Tier.LONG_TERM and got.updated_at == clock.now()
        assert [e.type for e in store.history(entry.id)] == [
            EventType.ADDED, EventType.UPDATED, EventType.TIER_CHANGED]
        with store.transaction() as tx:
            tx.append(Draft(EventType.EXPIRED, entry.id, {"reason": "r", "at": stamp}))
        assert store.count(Filters()) == 0  # only active memories by default
        assert store.count(Filters(statuses=None)) == 1
        expired = store.select(Filters(statuses=(Status.EXPIRED,)))
        assert [m.id for m in expired] == [entry.id]

    def test_select_and_count_apply_filters_in_order(self, store: Store) -> None:
        a = memory("alpha", user="u1", session="s1", tags=("x",), at=T0)
        b = memory("bravo", user="u1", session="s2", tags=("x", "y"), at=T0 + timedelta(days=1))
        c = memory("charlie", user="u2", at=T0 + timedelta(days=2))
        self.write(store, a, b, c)
        assert store.select(Filters()) == [c, b, a]  # newest first
        assert store.select(Filters(), newest_first=False) == [a, b, c]
        assert store.select(Filters(user_id="u1")) == [b, a]
        assert store.select(Filters(session_id="s1")) == [a]
        assert store.select(Filters(tags=("x", "y"))) == [b]
        assert store.select(Filters(since=T0 + timedelta(days=1))) == [c, b]
        assert store.select(Filters(until=T0 + timedelta(days=1))) == [a]
        assert store.select(Filters(), limit=1, offset=1) == [b]
        assert store.count(Filters()) == 3 and store.count(Filters(user_id="u1")) == 2
        assert store.count(Filters(user_id="nobody")) == 0
        assert store.get_many([a.id, c.id, "nope"]) == {a.id: a, c.id: c}

    def test_keyword_candidates_are_best_first_and_filtered(self, store: Store) -> None:
        both, red, kite = memory("a red kite over the hills"), memory("a red bicycle"), \
            memory("a green kite")
        other = memory("a red kite", user="u2")
        # Filler, so neither query word is common (a common word's weight is nearly nil).
        self.write(store, both, red, kite, other, *(memory(f"blue water {i}") for i in range(30)))
        terms = keyword_terms("red kite")
        found = store.keyword_candidates(terms, Filters(user_id="u1"), 10)
        assert [b.id for b, _ in found][:1] == [both.id]
        assert {b.id for b, _ in found} == {both.id, red.id, kite.id}
        assert all(score > 0 for _, score in found)
        assert [score for _, score in found] == sorted((s for _, s in found), reverse=True)
        assert found[0][0] == Brief.of(both)
        assert store.keyword_candidates(terms, Filters(user_id="u1"), 1) == found[:1]
        assert store.keyword_candidates(keyword_terms("zebra"), Filters(), 10) == []
        loaded = store.keyword_search(terms, Filters(user_id="u2"), 10)
        assert [m for m, _ in loaded] == [other]

    def test_vector_candidates_are_nearest_first_and_filtered(self, store: Store) -> None:
        east, north, north_east = memory("east"), memory("north"), memory("north east")
        elsewhere = memory("north", user="u2", at=T0 + timedelta(seconds=1))
        vectors = {"east": [1, 0, 0, 0], "north": [0, 1, 0, 0], "north east": [1, 1, 0, 0]}
        with store.transaction() as tx:
            tx.put_embeddings(MODEL, {content_hash(text): quantize(
                np.array(v, dtype=np.float32))[0] for text, v in vectors.items()})
            for entry in (east, north, north_east, elsewhere):
                tx.append(added(entry))
        query = np.array([0.1, 1, 0, 0], dtype=np.float32)
        query /= np.linalg.norm(query)
        found = store.vector_candidates(query, Filters(user_id="u1"), MODEL, 10)
        assert [b.id for b, _ in found][:2] == [north.id, north_east.id]
        assert found[0][1] > found[1][1] > found[-1][1] and found[0][1] > 0.9
        assert {b.id for b, _ in found} <= {east.id, north.id, north_east.id}
        assert [b.id for b, _ in store.vector_candidates(query, Filters(user_id="u2"),
                                                         MODEL, 10)] == [elsewhere.id]
        assert store.vector_candidates(query, Filters(user_id="u1"), "other-model", 10) == []
        assert store.stats()["vectors"] == {MODEL: 3}
        assert store.missing_embeddings(MODEL, [content_hash("east"), "h"]) == {"h"}

    def test_forgetting_redacts_earlier_payloads_and_still_verifies(self, store: Store,
                                                                   clock: ManualClock) -> None:
        kept, gone = self.write(store, memory("kept"), memory("a secret"))
        with store.transaction() as tx:
            tx.append(Draft(EventType.FORGOTTEN, gone.id,
                            {"reason": "asked", "at": format_time(clock.now())}))
        assert store.get(gone.id) is None and store.select(Filters()) == [kept]
        history = store.history(gone.id)
        assert [e.type for e in history] == [EventType.ADDED, EventType.FORGOTTEN]
        assert history[0].redacted and "secret" not in str(list(store.events()))
        assert store.verify().ok

    def test_rebuild_replays_the_log_into_the_same_projection(self, store: Store,
                                                              clock: ManualClock) -> None:
        entries = self.write(store, *(memory(f"note {i} about kites", session=f"s{i % 2}",
                                             at=T0 + timedelta(minutes=i)) for i in range(6)))
        with store.transaction() as tx:
            tx.append(Draft(EventType.TAGGED, entries[0].id,
                            {"add": ["kept"], "at": format_time(clock.now())}))
        before = store.select(Filters(statuses=None))
        keyword = store.keyword_candidates(["kites"], Filters(user_id="u1"), 10)
        assert store.rebuild() == 6
        assert store.select(Filters(statuses=None)) == before
        assert store.keyword_candidates(["kites"], Filters(user_id="u1"), 10) == keyword
        assert store.verify().ok and store.stats()["events"] == 7

    def test_import_events_copies_a_log_once(self, store: Store, new_store: NewStore,
                                             clock: ManualClock) -> None:
        self.write(store, memory("one"), memory("two"))
        events = list(store.events())
        copy = open_store(new_store(), clock=clock)
        try:
            assert copy.import_events(events) == 2
            assert copy.import_events(events) == 0  # already there: nothing new
            assert copy.select(Filters()) == store.select(Filters())
            assert list(copy.events()) == events and copy.verify().ok
        finally:
            copy.close()

    @given(st.lists(st.tuples(st.sampled_from(["add", "add", "add", "edit", "move", "forget"]),
                              st.integers(0, 40), st.sampled_from(["s0", "s1", None]),
                              st.lists(st.sampled_from(_WORDS), min_size=1, max_size=3)),
                    min_size=1, max_size=25))
    # Each backend's subclass runs this test (a different `self` each: hypothesis's
    # differing_executors), and the fixtures make a new store per example.
    @settings(max_examples=12, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.differing_executors])
    def test_one_batch_indexes_as_one_event_at_a_time_does(
            self, new_store: NewStore, clock: ManualClock,
            ops: list[tuple[str, int, str | None, list[str]]]) -> None:
        """Importing a log in one transaction writes each memory once and shares the
        keyword-index work of neighbours in a session; the index must come out as writing
        one event at a time (and as a rebuild) makes it."""
        single = open_store(new_store(), clock=clock)
        batch = open_store(new_store(), clock=clock)
        try:
            live: list[MemoryEntry] = []
            for op, minute, session, words in ops:
                at = format_time(T0 + timedelta(minutes=minute))
                if op == "add" or not live:
                    entry = memory(" ".join(words), session=session,
                                   at=T0 + timedelta(minutes=minute))
                    draft = added(entry)
                    live.append(entry)
                else:
                    target = live[minute % len(live)]
                    if op == "forget":
                        live.remove(target)
                        draft = Draft(EventType.FORGOTTEN, target.id, {"reason": "x", "at": at})
                    else:
                        changes = {"content": " ".join(words),
                                   "content_hash": content_hash(" ".join(words))} \
                            if op == "edit" else {"occurred_at": at}
                        draft = Draft(EventType.UPDATED, target.id,
                                      {"changes": changes, "at": at})
                with single.transaction() as tx:
                    tx.append(draft)
            assert batch.import_events(list(single.events())) == len(ops)

            def index(store: Store) -> list[object]:
                return [store.keyword_candidates([w], Filters(user_id="u1"), 50)
                        for w in _WORDS]
            expected = index(single)
            assert index(batch) == expected
            assert batch.select(Filters(statuses=None)) == single.select(Filters(statuses=None))
            batch.rebuild()
            assert index(batch) == expected
        finally:
            single.close()
            batch.close()

    def test_what_is_committed_outlives_the_store_object(self, new_store: NewStore,
                                                         clock: ManualClock) -> None:
        location = new_store()
        first = open_store(location, clock=clock)
        entry = self.write(first, memory("durable"))[0]
        device = first.device_id
        first.close()
        first.close()  # closing twice is fine
        again = open_store(location, clock=clock)
        try:
            assert again.get(entry.id) == entry and again.device_id == device
            assert again.history(entry.id) == list(again.events()) and again.verify().ok
        finally:
            again.close()
