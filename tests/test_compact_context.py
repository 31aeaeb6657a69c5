"""The context builder with concepts: a summary in place of its members under a tight budget,
members kept for the detail a question asks, members as they are when everything fits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from engram import ManualClock, Memory
from engram.context import build_context, estimate_tokens
from engram.context.concepts import holds_detail, prefer_concepts
from engram.lifecycle.tiers import Policy
from engram.model import Kind, Links, MemoryEntry
from engram.query import Hit
from engram.validate import prepare

NOW = datetime(2026, 3, 1, 9, tzinfo=UTC)
MEMBERS = ["Ana adopted a puppy named Oscar at the shelter in Porto",
           "Ana walks Oscar along the river every morning before work",
           "Oscar the puppy had his vaccinations on 3 June 2025",
           "Ana bought Oscar a red collar and a squeaky toy"]
SUMMARY = "Ana adopted a puppy, Oscar, and walks him every morning."


def entry(text: str, kind: str = "fact") -> MemoryEntry:
    made, _ = prepare({"text": text, "user_id": "ana", "memory_type": kind}, now=NOW,
                      device_id="d", max_content_bytes=10_000)
    return made


def recalled() -> tuple[list[MemoryEntry], MemoryEntry, MemoryEntry]:
    members = [entry(t) for t in MEMBERS]
    concept = replace(entry(SUMMARY, "concept"),
                      links=Links(derived_from=tuple(m.id for m in members)))
    other = entry("Ana's sister Rita lives in Lisbon")
    return members, concept, other


def cost(m: MemoryEntry) -> int:
    return estimate_tokens(m.content) + 2


def within(cap: int) -> Callable[[list[MemoryEntry]], list[MemoryEntry]]:
    """The memories that fit in `cap`, in order (as the context builder selects them)."""
    def select(ranked: list[MemoryEntry]) -> list[MemoryEntry]:
        chosen, used = [], 0
        for m in ranked:
            if used + cost(m) <= cap:
                chosen.append(m)
                used += cost(m)
        return chosen
    return select


def test_a_tight_budget_takes_the_summary_instead_of_its_members() -> None:
    members, concept, other = recalled()
    ranked = [members[0], other, members[1], concept, members[2], members[3]]
    chosen = prefer_concepts(ranked, "What does Ana do with her dog?", within(50), cost)
    assert chosen == [concept, other]  # the summary at its best member's rank


def test_a_question_for_a_date_keeps_the_member_that_holds_it() -> None:
    members, concept, other = recalled()
    ranked = [members[2], members[0], members[1], concept, other, members[3]]
    chosen = prefer_concepts(ranked, "When did Oscar get his vaccinations?", within(50), cost)
    assert chosen == [members[2], concept, other]  # rank order: the date first
    assert holds_detail(members[2], "When were the vaccinations?", SUMMARY)
    assert not holds_detail(members[1], "When were the vaccinations?", SUMMARY)
    assert holds_detail(members[0], "Where is the shelter in Porto?", SUMMARY)  # a name


def test_when_everything_fits_members_stay_and_the_concept_goes() -> None:
    members, concept, other = recalled()
    ranked = [concept, *members, other]
    assert prefer_concepts(ranked, "Oscar?", within(10_000), cost) == [*members, other]


def test_build_context_under_a_tight_budget_shows_the_summary() -> None:
    members, concept, other = recalled()
    hits = [Hit(m, 1.0 - i / 10) for i, m in enumerate([members[0], concept, members[1],
                                                        members[3], other])]
    tight = build_context(hits, budget_tokens=70, style="markdown", query="Ana's dog?")
    assert SUMMARY in tight.text and concept.id in tight.memory_ids
    assert members[1].content not in tight.text
    roomy = build_context(hits, budget_tokens=2000, style="markdown", query="Ana's dog?")
    assert concept.id not in roomy.memory_ids
    assert all(m.content in roomy.text for m in (members[0], members[1], members[3]))


def test_memory_context_uses_concepts_after_compaction(tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    with Memory(tmp_path, clock=clock, policy=Policy(compact_distance=0.65)) as mem:
        for text in MEMBERS:
            mem.add(text, user_id="ana")
        mem.add("Ana's sister Rita lives in Lisbon", user_id="ana")
        before = mem.assemble("Tell me about Ana's puppy Oscar", user_id="ana",
                              budget_tokens=60, style="markdown")
        mem.compact("ana")
        (concept,) = mem.concepts("ana")
        after = mem.assemble("Tell me about Ana's puppy Oscar", user_id="ana",
                             budget_tokens=60, style="markdown")
        assert concept.id not in before.memory_ids and concept.id in after.memory_ids
        assert mem.get(concept.id).memory_type is Kind.CONCEPT
