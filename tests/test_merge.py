"""Two devices' logs merge: each store admits the other's events (one chain per device), folds
them in hybrid-logical-clock order, and its live projection equals a rebuild, whatever the
interleaving and whatever the order of the lines imported. After syncing both ways the two
stores hold the same memories."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engram import EventType, ManualClock, Memory
from engram.log.export import read_events, write_events
from engram.query import Filters

pytestmark = pytest.mark.all_backends

WORDS = ["lisbon", "berlin", "dog", "tea", "jazz", "python"]
Snapshot = tuple[list[dict[str, object]], dict[str, list[str]]]


def snapshot(mem: Memory) -> Snapshot:
    """Every memory, and the keyword index's answers."""
    entries = sorted((e.to_dict() for e in mem.list(limit=None, status="all")),
                     key=lambda d: str(d["id"]))
    searches = {w: sorted(e.id for e, _ in mem.store.keyword_search(
        [w], Filters(user_id="u"), 100)) for w in WORDS}
    return entries, searches


def opened(location: str | Path, **kwargs: Any) -> Memory:
    return Memory(location, embedder=None, **kwargs)


def lines(mem: Memory) -> list[str]:
    buffer = io.StringIO()
    write_events(mem.events(), buffer)
    return buffer.getvalue().splitlines(keepends=True)


def sync(source: Memory, target: Memory, rng: random.Random) -> int:
    """Ship all of `source`'s events to `target`, the lines shuffled."""
    shipped = lines(source)
    rng.shuffle(shipped)
    return target.import_events(read_events("".join(shipped).encode()))


def assert_live_is_rebuild(mem: Memory) -> Snapshot:
    live = snapshot(mem)
    mem.rebuild()
    assert snapshot(mem) == live
    assert mem.verify().ok
    return live


def test_a_peers_older_events_fold_in_clock_order(new_store: Callable[[], Path]) -> None:
    """b edits a memory from a; a, whose clock is behind, edits it too and forgets another;
    b imports a's later writes, which are older by the clock than b's own."""
    rng = random.Random(7)
    clock_a = ManualClock(datetime(2026, 1, 1, 9, tzinfo=UTC))
    clock_b = ManualClock(datetime(2026, 1, 1, 12, tzinfo=UTC))  # three hours ahead
    with opened(new_store(), clock=clock_a, device_id="dev-a") as a, \
            opened(new_store(), clock=clock_b, device_id="dev-b") as b:
        shared = a.add("lisbon tea", user_id="u", session_id="s")
        doomed = a.add("berlin jazz secret", user_id="u", session_id="s")
        assert sync(a, b, rng) == 2 and b.get(shared.id).text == "lisbon tea"
        b.update(shared.id, text="lisbon tea with b")  # clock 12:00
        b.tag(doomed.id, add=["b-tag"])
        clock_a.advance(timedelta(minutes=5))
        a.update(shared.id, text="lisbon tea with a")  # clock 09:05: older than b's edit
        a.forget(doomed.id)
        a.add("dog python", user_id="u", session_id="s")
        assert sync(a, b, rng) == 3  # b's update stays the latest: it is later by the clock
        assert b.get(shared.id).text == "lisbon tea with b"
        assert b.store.get(doomed.id) is None
        history = b.history(doomed.id)  # in clock order: a's forget, then b's later tag
        assert [e.type for e in history][-2:] == [EventType.FORGOTTEN, EventType.TAGGED]
        assert all(e.payload is None for e in history if e.type is not EventType.FORGOTTEN)
        merged = assert_live_is_rebuild(b)
        assert sync(b, a, rng) == 2
        assert a.get(shared.id).text == "lisbon tea with b"
        assert assert_live_is_rebuild(a) == merged
        assert lines(a) == lines(b)  # one merged log, in one order


op = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(["a", "b"]),
              st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)),
    st.tuples(st.just("update"), st.sampled_from(["a", "b"]), st.integers(0, 20),
              st.sampled_from(WORDS)),
    st.tuples(st.just("tag"), st.sampled_from(["a", "b"]), st.integers(0, 20)),
    st.tuples(st.just("forget"), st.sampled_from(["a", "b"]), st.integers(0, 20)),
    st.tuples(st.just("search"), st.sampled_from(["a", "b"]), st.sampled_from(WORDS)),
    st.tuples(st.just("tick"), st.sampled_from(["a", "b"]), st.integers(1, 600)),
    st.tuples(st.just("sync"), st.sampled_from(["a", "b"]), st.randoms(use_true_random=False)),
)


def run(mems: dict[str, Memory], clocks: dict[str, ManualClock],
        ops: list[tuple[Any, ...]]) -> None:
    for kind, who, *args in ops:
        mem, other = mems[who], mems["b" if who == "a" else "a"]
        clocks[who].advance(timedelta(seconds=1))
        if kind == "add":
            mem.add(args[0], user_id="u", session_id="s", dedupe=False)
        elif kind == "search":
            mem.search(args[0], user_id="u")
            mem.flush()
        elif kind == "tick":
            clocks[who].advance(timedelta(seconds=args[0]))
        elif kind == "sync":
            mem.flush()
            sync(other, mem, args[0])
        else:
            live = [e.id for e in mem.list(limit=None, newest_first=False)]
            if not live:
                continue
            target = live[args[0] % len(live)]
            if kind == "update":
                mem.update(target, text=f"{mem.get(target).text} {args[1]}")
            elif kind == "tag":
                mem.tag(target, add=[who])
            else:
                mem.forget(target)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(op, min_size=4, max_size=20), st.randoms(use_true_random=False))
def test_any_interleaving_merges_to_the_same_memories_as_a_rebuild(
        new_store: Callable[[], Path], ops: list[tuple[Any, ...]], rng: random.Random) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clocks = {"a": ManualClock(start), "b": ManualClock(start + timedelta(seconds=90))}
    mems = {d: opened(new_store(), clock=clocks[d], device_id=f"dev-{d}", access_batch=1)
            for d in clocks}
    try:
        run(mems, clocks, ops)
        for mem in mems.values():
            mem.flush()
            assert_live_is_rebuild(mem)
        sync(mems["a"], mems["b"], rng)
        sync(mems["b"], mems["a"], rng)
        merged = [assert_live_is_rebuild(mem) for mem in mems.values()]
        assert merged[0] == merged[1]
    finally:
        for mem in mems.values():
            mem.close()
