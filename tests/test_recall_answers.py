"""Answer-type matching at recall: the kind of answer a question asks for, and whether a
memory holds one; with its weight, a memory that holds one comes before an equally relevant
one that does not, and an unrelated memory that holds one is not lifted."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from engram.model import Tier
from engram.query import Brief
from engram.recall.answers import answer_kind, asks_said, holds
from engram.recall.ranking import DEFAULT_WEIGHTS, Candidate, rank

AT = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)


def test_the_kind_of_answer_a_question_asks_for() -> None:
    assert answer_kind("Which cities has Jon visited?") == "place"
    assert answer_kind("Where did I redeem a $5 coupon on coffee creamer?") == "place"
    assert answer_kind("When did Caroline go to the LGBTQ support group?") == "time"
    assert answer_kind("In what year did Melanie start painting?") == "time"
    assert answer_kind("Who did Melanie paint with?") is None
    assert answer_kind("How many days a week do I attend fitness classes?") == "number"
    assert answer_kind("What is the name of Alex's dog?") is None


def test_whether_a_memory_holds_one() -> None:
    assert holds("place", "Jon: Took a short trip last week to Rome to clear my mind", AT)
    assert not holds("place", "Jon: Took a short trip last week to clear my mind", AT)
    assert holds("time", "Caroline: I went to a LGBTQ support group yesterday", AT)
    assert not holds("time", "Caroline: I love the support group", AT)
    assert holds("number", "I run about 20 km a week", AT)
    assert holds("number", "We have two dogs", AT)
    assert not holds("number", "We have dogs", AT)
    assert not holds(None, "anything at all, 20 of it, in Rome yesterday", AT)


def brief(name: str) -> Brief:
    return Brief(name, "u", None, AT, Tier.SHORT_TERM, 0.5, 0)


def test_the_kind_weight_orders_relevant_memories_only() -> None:
    found = [Candidate(brief("a-no-place"), vector=0.60),
             Candidate(brief("b-place"), vector=0.58, kind=1.0),
             Candidate(brief("c-unrelated-place"), vector=0.26, kind=1.0)]
    plain = [h.memory.id for h in rank(found, AT)]
    weighed = [h.memory.id for h in rank(found, AT, replace(DEFAULT_WEIGHTS, kind=0.2))]
    assert plain == ["a-no-place", "b-place", "c-unrelated-place"]
    assert weighed == ["b-place", "a-no-place", "c-unrelated-place"]


def test_a_question_about_what_was_said() -> None:
    assert asks_said("What was the name of that hiking trail you recommended?")
    assert asks_said("You mentioned that 6S and MAJA correct for the atmosphere; which one?")
    assert asks_said("I was going through our previous conversation about fashion brands")
    assert asks_said("Can you remind me of the restaurant's name?")
    assert not asks_said("Can you suggest some accessories for my camera?")
    assert not asks_said("Which bike did I service last weekend?")
    assert not asks_said("What did Caroline tell Melanie about the adoption?")
