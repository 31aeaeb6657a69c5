"""The Python contract of DESIGN.md: add, add_many, get, history, list, search, update."""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engram import EventType, Kind, ManualClock, Memory, MemoryEntry, NotFound, Tier
from engram.errors import InvalidInput
from store_contract import Backend


class MemoryContract(Backend):
    """The Python contract on every backend; run by test_store_*.py."""

    def test_add_then_get_keeps_every_field(self, mem: Memory) -> None:
        at = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
        entry = mem.add("Caroline adopted a puppy named Oscar", user_id="u1", session_id="s7",
                        agent_id="bot", metadata={"dia_id": "D7:3"}, at=at, tags=["pets"],
                        memory_type="event", entities=["Caroline", "Oscar"])
        got = mem.get(entry.id)
        assert got == entry
        assert got.text == "Caroline adopted a puppy named Oscar"
        assert got.metadata == {"dia_id": "D7:3"}
        assert got.occurred_at == at
        assert got.created_at == mem.clock.now()  # recorded now, happened then

    def test_add_many_is_one_transaction(self, mem: Memory) -> None:
        items = [{"text": f"fact number {i}", "user_id": "u1"} for i in range(5)]
        items.append({"text": "   ", "user_id": "u1"})
        with pytest.raises(InvalidInput, match=r"items\[5\]\.text: is empty"):
            mem.add_many(items)
        assert mem.count() == 0
        assert len(mem.add_many(items[:5])) == 5
        assert mem.count(user_id="u1") == 5

    def test_exact_duplicate_corroborates_instead_of_copying(self, mem: Memory) -> None:
        first = mem.add("I am allergic to peanuts", user_id="u1")
        again = mem.add("i am  allergic to PEANUTS", user_id="u1")
        assert again.id == first.id
        assert again.confidence.corroboration_count == 1
        assert mem.count(user_id="u1") == 1
        assert [e.type for e in mem.history(first.id)] == [EventType.ADDED, EventType.CORROBORATED]
        other_user = mem.add("I am allergic to peanuts", user_id="u2")
        assert other_user.id != first.id
        copy = mem.add("I am allergic to peanuts", user_id="u1", dedupe=False)
        assert copy.id != first.id

    def test_search_ranks_matches_and_isolates_users(self, mem: Memory) -> None:
        mem.add("Caroline adopted a puppy named Oscar", user_id="u1")
        mem.add("Melanie painted a sunrise over the lake", user_id="u1")
        mem.add("Oscar the puppy belongs to someone else", user_id="u2")
        hits = mem.search("what puppy did Caroline adopt?", user_id="u1")
        assert [h.memory.text for h in hits] == ["Caroline adopted a puppy named Oscar"]
        parts = hits[0].components
        assert parts["keyword"] > 0 and parts["vector"] > 0.5
        assert hits[0].score == (parts["relevance"] + parts["session"]) * (1 + parts["boost"])
        assert all(h.memory.user_id == "u2" for h in mem.search("puppy", user_id="u2"))

    def test_search_stems_words(self, mem: Memory) -> None:
        mem.add("I went running every morning", user_id="u")
        assert mem.search("runs", user_id="u")

    def test_filters_apply_before_the_limit(self, mem: Memory, clock: ManualClock) -> None:
        for i in range(30):
            mem.add(f"coffee note {i}", user_id="u", session_id="s1", tags=["noise"])
        wanted = mem.add("coffee with Maya", user_id="u", session_id="s2", tags=["family"])
        hits = mem.search("coffee", user_id="u", tags=["family"], limit=1)
        assert [h.memory.id for h in hits] == [wanted.id]
        hits = mem.search("coffee", user_id="u", session_id="s2", limit=1)
        assert [h.memory.id for h in hits] == [wanted.id]

    def test_list_filters(self, mem: Memory) -> None:
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        a = mem.add("a", user_id="u", agent_id="x", session_id="s1", tags=["t1"],
                    memory_type="preference", at=t0)
        b = mem.add("b", user_id="u", agent_id="y", session_id="s2", tags=["t1", "t2"],
                    tier="long_term", at=t0 + timedelta(days=10))
        c = mem.add("c", user_id="v", at=t0 + timedelta(days=20))

        def ids(entries: Iterable[MemoryEntry]) -> list[str]:
            return [e.id for e in entries]

        assert ids(mem.list()) == [c.id, b.id, a.id]
        assert ids(mem.list(user_id="u")) == [b.id, a.id]
        assert ids(mem.list(agent_id="x")) == [a.id]
        assert ids(mem.list(session_id="s2")) == [b.id]
        assert ids(mem.list(tags=["t1"])) == [b.id, a.id]
        assert ids(mem.list(tags=["t1", "t2"])) == [b.id]
        assert ids(mem.list(memory_type=Kind.PREFERENCE)) == [a.id]
        assert ids(mem.list(tier=Tier.LONG_TERM)) == [b.id]
        assert ids(mem.list(since=t0 + timedelta(days=5))) == [c.id, b.id]
        assert ids(mem.list(until=t0 + timedelta(days=10))) == [a.id]
        assert ids(mem.list(limit=1, offset=1)) == [b.id]

    def test_update_tag_link_tier_are_events(self, mem: Memory, clock: ManualClock) -> None:
        old = mem.add("I live in Lisbon", user_id="u")
        new = mem.add("I moved to Berlin", user_id="u")
        clock.advance(timedelta(hours=1))
        mem.update(new.id, text="I moved to Berlin in August", metadata={"city": "Berlin"})
        mem.tag(new.id, add=["home", "city"])
        mem.tag(new.id, remove=["city"])
        mem.link(new.id, "supersedes", old.id)
        entry = mem.set_tier(new.id, "long_term", reason="confirmed twice")
        assert entry.text == "I moved to Berlin in August"
        assert entry.metadata == {"city": "Berlin"}
        assert entry.tags == ("home",)
        assert entry.links.supersedes == (old.id,)
        assert entry.tier is Tier.LONG_TERM
        assert entry.updated_at == clock.now()
        assert mem.search("August", user_id="u")[0].memory.id == new.id
        types = [e.type for e in mem.history(new.id)]
        assert types == [EventType.ADDED, EventType.UPDATED, EventType.TAGGED, EventType.TAGGED,
                         EventType.LINKED, EventType.TIER_CHANGED]
        assert mem.history(new.id)[-1].payload == {"from": "short_term", "to": "long_term",
                                                    "reason": "confirmed twice",
                                                    "at": "2026-01-05T10:00:00.000000Z"}

    def test_unknown_id_is_not_found(self, mem: Memory) -> None:
        with pytest.raises(NotFound, match="no memory 'nope'"):
            mem.get("nope")
        with pytest.raises(NotFound):
            mem.forget("nope")

    def test_access_statistics_are_batched(self, store_dir: str | Path, clock: ManualClock) -> None:
        mem = Memory(store_dir, clock=clock, access_batch=1000)
        entry = mem.add("the blue notebook", user_id="u")
        events_before = mem.stats()["events"]
        assert isinstance(events_before, int)
        for _ in range(25):
            mem.search("notebook", user_id="u")
        assert mem.stats()["events"] == events_before  # no event per search
        mem.close()
        mem = Memory(store_dir, clock=clock)
        got = mem.get(entry.id)
        assert got.access_count == 25 and got.last_accessed == clock.now()
        assert mem.stats()["events"] == events_before + 1
        mem.close()

    def test_context_renders_recalled_memories_within_budget(self, mem: Memory) -> None:
        mem.add("I prefer dark mode", user_id="u", memory_type="preference")
        mem.add("My dog is called Pixel and loves the dark beach", user_id="u")
        xml = mem.context("dark", user_id="u", budget_tokens=500, style="claude")
        assert xml.startswith("<user_profile>") and "<preferences>" in xml and "Pixel" in xml
        small = mem.context("dark", user_id="u", budget_tokens=30, style="markdown")
        assert small.count("\n- ") == 1

    def test_assemble_builds_a_prompt_and_counts_only_used_memories(self, mem: Memory,
                                                                    store_dir: str) -> None:
        used = mem.add("I am allergic to peanuts", user_id="u", memory_type="preference")
        conversation = [{"role": "user", "content": "hi"},
                        {"role": "assistant", "content": "hello"},
                        {"role": "user", "content": "suggest a snack, mind my peanut allergy"}]
        plan = mem.assemble(user_id="u", conversation=conversation, budget_tokens=300,
                            style="openai")
        assert plan.memory_ids == (used.id,) or list(plan.memory_ids) == [used.id]
        messages = plan.prompt.chat()
        assert messages[0]["role"] == "system" and "peanuts" in messages[0]["content"]
        assert messages[-1]["content"].startswith("suggest a snack")
        assert plan.tokens_used <= 300
        mem.close()  # flushes access statistics
        reopened = Memory(store_dir, clock=mem.clock)
        assert reopened.get(used.id).access_count == 1
        reopened.close()

    @pytest.mark.parametrize("field, value, message", [
        ("confidence", {"overal": 0.9}, "confidence.overal: is not a confidence field"),
        ("source", {"knd": "file"}, "source.knd: is not a source field"),
        ("confidence", 1.5, "confidence: 1.5 is out of range"),
    ])
    def test_nested_fields_are_checked_by_name(self, mem: Memory, field: str, value: object,
                                               message: str) -> None:
        with pytest.raises(InvalidInput, match=message):
            mem.add("text", **{field: value})  # type: ignore[arg-type]
        assert mem.count() == 0
