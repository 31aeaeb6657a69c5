"""Entities at recall: the names a question mentions lift the memories that name them."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from engram import ManualClock, Memory
from engram.recall.entities import entity_share, query_entities
from engram.recall.ranking import DEFAULT_WEIGHTS


def test_the_names_of_a_question() -> None:
    assert query_entities("When did Caroline go to the LGBTQ support group?") == [
        "caroline", "lgbtq"]
    assert query_entities("What is Alex's dog called?") == ["alex"]
    assert query_entities("How many days did I spend in Japan?") == ["japan"]
    assert query_entities("what did she paint last week?") == []


def test_the_share_of_names_a_memory_names() -> None:
    names = ["caroline", "lgbtq"]
    assert entity_share(names, "Caroline: I went to the LGBTQ group") == 1.0
    assert entity_share(names, "Caroline went hiking") == 0.5
    assert entity_share(names, "Carolines and more") == 0.0  # whole words only
    assert entity_share([], "anything") == 0.0


@given(st.lists(st.sampled_from(["ana", "bo", "cy"]), unique=True), st.text(max_size=40))
def test_the_share_is_a_fraction(names: list[str], text: str) -> None:
    share = entity_share(names, text)
    assert 0.0 <= share <= 1.0
    assert entity_share(names, text + " " + " ".join(names)) == (1.0 if names else 0.0)


def test_an_entity_weight_prefers_the_person_asked_about(tmp_path: object,
                                                        clock: ManualClock) -> None:
    """Two people did the same thing: the question names one of them. Without the entity
    signal, the name (in half the memories) weighs nothing and the other one may win."""
    texts = ["Melanie: I painted a sunset over the lake with watercolours",
             "Caroline: I painted a lake at sunrise",
             *(f"Melanie: note {i} about the weather" for i in range(4)),
             *(f"Caroline: note {i} about the garden" for i in range(4))]
    with Memory(f"{tmp_path}/s", clock=clock,
                weights=replace(DEFAULT_WEIGHTS, entity=0.5)) as mem:
        mem.add_many([{"text": t, "user_id": "u", "dedupe": False} for t in texts])
        hits = mem.search("What did Caroline paint by the lake?", user_id="u")
        assert hits[0].memory.content == texts[1]
        assert hits[0].components["entity"] == 1.0
        other = next(h for h in hits if h.memory.content == texts[0])
        assert other.components["entity"] == 0.0
