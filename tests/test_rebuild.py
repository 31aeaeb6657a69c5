"""The log is the truth: replaying it yields exactly the live projection."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engram import ManualClock, Memory
from engram.query import Filters

pytestmark = pytest.mark.all_backends

WORDS = ["lisbon", "berlin", "dog", "pixel", "tea", "coffee", "run", "python", "maya", "japan"]
# Statements the extractor turns into slot claims that corroborate and supersede each other.
STATEMENTS = ["I live in Lisbon.", "I moved to Berlin.", "I live in Lisbon now.",
              "I love jazz.", "I don't like jazz anymore.", "I'm tired today."]
text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join)
op = st.one_of(
    st.tuples(st.just("add"), text, st.sampled_from(["u1", "u2"]), st.booleans()),
    st.tuples(st.just("add_many"), st.lists(text, min_size=1, max_size=3)),
    st.tuples(st.just("update"), st.integers(0, 50), text),
    st.tuples(st.just("tag"), st.integers(0, 50), st.sampled_from(["a", "b", "c"]),
              st.booleans()),
    st.tuples(st.just("link"), st.integers(0, 50), st.integers(0, 50)),
    st.tuples(st.just("tier"), st.integers(0, 50),
              st.sampled_from(["short_term", "long_term", "persistent"])),
    st.tuples(st.just("search"), st.sampled_from(WORDS)),
    st.tuples(st.just("forget"), st.integers(0, 50)),
    st.tuples(st.just("turn"), st.sampled_from(STATEMENTS), st.sampled_from(["s1", "s2"])),
    st.tuples(st.just("feedback"), st.integers(0, 50), st.sampled_from(["good", "bad"])),
    st.tuples(st.just("maintain"), st.integers(1, 100)),
)


def snapshot(mem: Memory) -> tuple[list[dict[str, object]], dict[str, list[str]]]:
    entries = sorted((e.to_dict() for e in mem.list(limit=None, status="all")),
                     key=lambda d: str(d["id"]))
    # The store's own query: Memory.search would count accesses and change what it reads.
    searches = {w: sorted(e.id for e, _ in mem.store.keyword_search([w], Filters(user_id=u), 100))
                for w in WORDS for u in ("u1", "u2")}
    return entries, searches


def run(mem: Memory, clock: ManualClock, ops: list[tuple[Any, ...]]) -> None:
    """Apply generated operations; those aimed at a memory pick one of the live ones."""
    for kind, *args in ops:
        clock.advance(timedelta(minutes=7))
        if kind == "add":
            mem.add(args[0], user_id=args[1], dedupe=args[2])
        elif kind == "add_many":
            mem.add_many([{"text": t, "user_id": "u1"} for t in args[0]])
        elif kind == "search":
            mem.search(args[0], user_id="u1")
        elif kind == "turn":
            mem.remember_turn(args[0], "ok", user_id="u1", session_id=args[1])
        elif kind == "maintain":
            clock.advance(timedelta(hours=args[0]))
            mem.maintain()
        else:
            live = [e.id for e in mem.list(limit=None, newest_first=False)]
            if live:
                pick = [live[n % len(live)] for n in args[:2] if type(n) is int]
                apply_to(mem, kind, [*pick, *args[len(pick):]])


def apply_to(mem: Memory, kind: str, args: list[Any]) -> None:
    target = args[0]
    if kind == "update":
        mem.update(target, text=args[1])
    elif kind == "tag" and args[2]:
        mem.tag(target, add=[args[1]])
    elif kind == "tag" and args[1] in mem.get(target).tags:
        mem.tag(target, remove=[args[1]])
    elif kind == "link" and target != args[1]:
        mem.link(target, "related", args[1])
    elif kind == "tier":
        mem.set_tier(target, args[1], reason="property test")
    elif kind == "forget":
        mem.forget(target)
    elif kind == "feedback":
        mem.feedback(target, args[1])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(op, max_size=25))
def test_rebuild_equals_live_projection(new_store: Callable[[], Path],
                                        ops: list[tuple[Any, ...]]) -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    path = new_store()
    mem = Memory(path, clock=clock, access_batch=3)
    try:
        run(mem, clock, ops)
        mem.flush()
        live = snapshot(mem)
        mem.rebuild()
        assert snapshot(mem) == live
        assert mem.verify().ok
    finally:
        mem.close()
