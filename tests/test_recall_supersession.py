"""Superseding a value keeps the rest of its turn recallable, ranked below the new value."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from engram import Memory, Status
from engram.capture.writer import TURN_TAG
from engram.model import LinkKind, MemoryEntry, content_hash
from engram.query import Hit
from engram.recall.hybrid import below_contradictors


def test_a_superseded_residence_leaves_the_nurse_in_recall(mem: Memory) -> None:
    paris = mem.remember_turn("I live in Paris and I work as a nurse at a children's hospital",
                              user_id="ada", session_id="s1")
    berlin = mem.remember_turn("I moved to Berlin", user_id="ada", session_id="s2")
    new_value = berlin.extracted[0]
    assert berlin.superseded and new_value.content == "User lives in Berlin"
    turn = mem.get(paris.turn.id)
    assert turn.status is Status.ACTIVE and turn.links.contradicts == (new_value.id,)
    assert turn.confidence.overall < paris.turn.confidence.overall
    nurse = mem.search("nurse", user_id="ada")
    assert "nurse" in nurse[0].memory.content  # the turn, or a fact extracted from it
    assert paris.turn.id in [h.memory.id for h in nurse]
    live = [h.memory.id for h in mem.search("Where does Ada live?", user_id="ada")]
    assert live[0] == new_value.id
    assert paris.extracted[0].id not in live  # the old value itself is superseded
    if paris.turn.id in live:
        assert live.index(paris.turn.id) > live.index(new_value.id)


def test_a_superseded_diet_leaves_the_allergy_in_recall(mem: Memory) -> None:
    mem.remember_turn("I'm vegetarian and allergic to peanuts", user_id="ada", session_id="s1")
    mem.remember_turn("I'm pescatarian now", user_id="ada", session_id="s2")
    top = mem.search("What food is Ada allergic to?", user_id="ada")[0].memory
    assert "peanut" in top.content
    diet = mem.search("What diet does Ada follow?", user_id="ada")[0].memory
    assert diet.content == "User is pescatarian"


def _entry(n: int, contradicts: tuple[str, ...] = ()) -> MemoryEntry:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    entry = MemoryEntry(id=f"m{n}", content=f"memory {n}", content_hash=content_hash(f"{n}"),
                        created_at=at, updated_at=at, occurred_at=at, user_id="u",
                        tags=(TURN_TAG,))
    links = entry.links
    for target in contradicts:
        links = links.add(LinkKind.CONTRADICTS, target)
    return replace(entry, links=links)


@given(st.lists(st.integers(0, 7), min_size=1, max_size=8, unique=True),
       st.dictionaries(st.integers(0, 7), st.integers(0, 7), max_size=3))
def test_contradicted_hits_follow_their_contradictor(order: list[int],
                                                      edges: dict[int, int]) -> None:
    hits = [Hit(_entry(n, (f"m{edges[n]}",) if n in edges and edges[n] != n else ()),
                1.0 - i / 10) for i, n in enumerate(order)]
    out = below_contradictors(hits)
    assert sorted(h.memory.id for h in out) == sorted(h.memory.id for h in hits)
    plain = [h.memory.id for h in hits if not h.memory.links.contradicts]
    assert [h.memory.id for h in out if not h.memory.links.contradicts] == plain
    ids = [h.memory.id for h in out]
    for h in hits:  # one contradictor each: it comes first whenever both were recalled
        for target in h.memory.links.contradicts:
            if target in ids and not _chained(hits, target):
                assert ids.index(target) < ids.index(h.memory.id)


def _chained(hits: list[Hit], memory_id: str) -> bool:
    """Whether the contradictor is itself contradicted (its own move may pass the other)."""
    return any(h.memory.id == memory_id and h.memory.links.contradicts for h in hits)
