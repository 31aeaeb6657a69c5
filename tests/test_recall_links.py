"""Links at recall: the memories that name what a question names join its candidates (graph
expansion through shared entities), a pronoun within a session is resolved through the
neighbour columns of the keyword index, and a name nearly every memory holds links nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engram import ManualClock, Memory
from engram.query import Filters
from engram.recall.links import linked, query_parts
from engram.recall.ranking import DEFAULT_WEIGHTS
from engram.store.keyword_layout import MAX_TERM_ROWS

NOW = datetime(2026, 6, 1, tzinfo=UTC)
LINKED = replace(DEFAULT_WEIGHTS, linked=0.2)

HOUSE_HUNT = [  # (session, text): Rachel is named once; "she" refers to her
    ("s1", "I started working with Rachel, a realtor my sister recommended"),
    ("s1", "She showed me three places in Brookside on the first day"),
    ("s1", "The weather was awful though"),
    ("s2", "I finally found a house I loved, with a big garden"),
    ("s2", "The kitchen needs some work"),
    *((f"f{i}", f"We talked about cooking pasta number {i}") for i in range(30)),
]


def remember(mem: Memory) -> None:
    mem.add_many([{"text": text, "user_id": "u", "session_id": session, "dedupe": False,
                   "at": NOW - timedelta(days=30 - n)}
                  for n, (session, text) in enumerate(HOUSE_HUNT)])


def test_a_question_pulls_in_what_was_said_about_its_names(tmp_path: Path) -> None:
    """"after I started working with Rachel": the query's other words find the house, the
    link finds Rachel, and through the session's neighbours the turn that says "she"."""
    question = "How long after working with Rachel did I find a house I loved?"
    with Memory(tmp_path / "s", clock=ManualClock(NOW), embedder=None,
                weights=LINKED) as mem:
        remember(mem)
        hits = {h.memory.content: h for h in mem.search(question, user_id="u", limit=10)}
        assert HOUSE_HUNT[0][1] in hits and HOUSE_HUNT[3][1] in hits
        she = hits[HOUSE_HUNT[1][1]].components["linked"]  # "She showed me ...": a neighbour
        assert 0 < she < hits[HOUSE_HUNT[0][1]].components["linked"]
        assert all(h.components["linked"] == 0 for text, h in hits.items() if "pasta" in text)


def test_without_the_link_weight_links_are_not_fetched(tmp_path: Path) -> None:
    with Memory(tmp_path / "s", clock=ManualClock(NOW), embedder=None) as mem:
        remember(mem)
        hits = mem.search("What did Rachel do in Brookside?", user_id="u", limit=10)
        assert all(h.components["linked"] == 0 for h in hits)
        assert mem.hybrid.candidates("Who is Rachel?", Filters(user_id="u"), 10) == \
            mem.hybrid.candidates("Who is Rachel?", Filters(user_id="u"), 10, linked=False)
        only_link = [c for c in mem.hybrid.candidates("Did I see Rachel?", Filters(user_id="u"),
                                                      10, linked=True) if not c.found]
        assert all(c.linked > 0 and c.keyword == 0 for c in only_link)


def test_a_name_in_nearly_every_memory_links_nothing(tmp_path: Path) -> None:
    with Memory(tmp_path / "s", clock=ManualClock(NOW), embedder=None) as mem:
        mem.add_many([{"text": f"Alex: note {i} about the day", "user_id": "u",
                       "dedupe": False} for i in range(20)]
                     + [{"text": "Alex: I adopted a cat called Miso", "user_id": "u"}])
        search = mem.store.keyword_candidates
        assert all(strength < 0.01 for _, strength in
                   linked([["alex"]], Filters(user_id="u"), search).values())
        (brief, strength), = linked([["miso"]], Filters(user_id="u"), search).values()
        assert strength > 0.5 and "Miso" in mem.get(brief.id).content


def test_the_two_facts_a_question_joins() -> None:
    assert query_parts("Which item did I purchase first, the dog bed for Max or the training "
                       "pads for Luna?") == ["the dog bed for Max", "the training pads for Luna"]
    assert query_parts("How many days did it take for me to find a house I loved after "
                       "starting to work with Rachel?") == [
        "How many days did it take for me to find a house I loved",
        "starting to work with Rachel"]
    assert query_parts("What is the total cost of Lola's vet visit and flea medication?") == [
        "Lola's vet visit", "flea medication"]
    assert query_parts("How many days passed between the trip and the party?") == [
        "the trip", "the party"]
    assert query_parts("Where does Alex live now?") == []
    assert query_parts("What did I do after?") == []  # a part with no content words
    assert query_parts("How long after the move did I adopt a cat?") == []  # "how long"


def test_a_name_in_thousands_of_memories_is_not_searched(tmp_path: Path) -> None:
    """Past MAX_TERM_ROWS rows a term is common: a link query made only of common terms
    finds nothing (the main query still searches the rarest in the memories' own text)."""
    with Memory(tmp_path / "s", clock=ManualClock(NOW), embedder=None) as mem:
        mem.add_many([{"text": f"Alex: note {i}", "user_id": "u", "dedupe": False}
                      for i in range(MAX_TERM_ROWS + 1)])
        search = mem.store.keyword_candidates
        assert linked([["alex"]], Filters(user_id="u"), search) == {}
        assert len(search(["alex"], Filters(user_id="u"), 5)) == 5
