"""The question's own signals and the ranking that weighs them: one candidate set ranked
under many weight settings at once (cross-validation) ranks as each setting alone does; the
session spread; the latest of competing memories for a question about now."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engram import ManualClock, Memory
from engram.model import Tier
from engram.query import Brief
from engram.recall.ranking import (
    DEFAULT_WEIGHTS,
    LONG_WORDS,
    Candidate,
    Weights,
    long_words,
    order,
    rank,
    signals,
)
from engram.recall.signals import with_question
from engram.recall.when import asks_now, lateness

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def brief(i: int, session: str | None, days_old: int = 0) -> Brief:
    return Brief(f"m{i:03d}", "u", session, NOW - timedelta(days=days_old), Tier.SHORT_TERM,
                 0.5, 0)


candidate_sets = st.lists(
    st.tuples(st.sampled_from([None, "s1", "s2", "s3"]), st.integers(0, 400),
              st.sampled_from([0.0, 1.0, 2.5, 7.0]), st.sampled_from([0.0, 0.2, 0.3, 0.6, 0.9]),
              st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([0.0, 1.0])),
    max_size=30)
SETTINGS = [replace(DEFAULT_WEIGHTS, keyword=kw, vector=1 - kw, min_vector=mv, session=s,
                    entity=e, time=t, spread=sp)
            for kw, mv, s, e, t, sp in [(0.4, 0.25, 0.2, 0.0, 0.0, 0.0),
                                        (0.3, 0.35, 0.0, 0.2, 0.1, 0.2),
                                        (0.5, 0.25, 0.3, 0.1, 0.2, 0.1),
                                        (0.4, 0.15, 0.1, 0.0, 0.2, 0.3)]]


@settings(max_examples=150, deadline=None)
@given(candidate_sets)
def test_many_settings_at_once_rank_as_each_alone(
        rows: list[tuple[str | None, int, float, float, float, float]]) -> None:
    found = [Candidate(brief(i, s, d), keyword=k, vector=v, entity=e, time=t)
             for i, (s, d, k, v, e, t) in enumerate(rows)]
    together, scores = order(signals(found, NOW), SETTINGS)
    for n, w in enumerate(SETTINGS):
        alone = [h.memory.id for h in rank(found, NOW, w)]
        kept = [found[i].memory.id for i in together[n] if scores[n, i] > float("-inf")]
        assert kept == alone
        assert all(found[i].keyword > 0 or found[i].vector >= w.min_vector
                   for i in together[n][:len(kept)])


def test_spread_lets_a_second_session_in() -> None:
    """Three turns of one session outscore the other session's evidence; with spread the
    session's third hit gives way."""
    found = [Candidate(brief(1, "s1"), vector=0.90), Candidate(brief(2, "s1"), vector=0.85),
             Candidate(brief(3, "s1"), vector=0.80), Candidate(brief(4, "s2"), vector=0.75)]
    plain = replace(DEFAULT_WEIGHTS, session=0.0)
    assert [h.memory.id for h in rank(found, NOW, plain)][:3] == ["m001", "m002", "m003"]
    spread = [h.memory.id for h in rank(found, NOW, replace(plain, spread=0.1))]
    assert spread[:3] == ["m001", "m002", "m004"]


def test_a_question_about_now() -> None:
    assert asks_now("Where does Alex live now?")
    assert asks_now("What is my current diet?")
    assert not asks_now("Where did Alex live in 2020?")
    assert lateness([NOW, NOW - timedelta(days=10), NOW - timedelta(days=5)]) == [1.0, 0.0, 0.5]
    assert lateness([NOW, NOW]) == [0.0, 0.0]
    assert lateness([]) == []


def test_only_weighted_signals_are_computed() -> None:
    found = [Candidate(brief(1, "s1", days_old=3)), Candidate(brief(2, "s1", days_old=1))]
    asked: list[list[str]] = []

    def texts(ids: Sequence[str]) -> dict[str, str]:
        asked.append(list(ids))
        return {"m001": "Caroline went hiking", "m002": "Melanie painted"}

    question = "What does Caroline do now?"
    unweighted = with_question(found, question, NOW, texts, Weights(entity=0.0, length=0.0))
    assert asked == [] and all(c.entity == c.latest == 0 for c in unweighted)
    every = with_question(found, question, NOW, texts)
    assert [c.entity for c in every] == [1.0, 0.0] and [c.latest for c in every] == [0.0, 1.0]


def test_the_latest_weight_answers_what_holds_now(tmp_path: Path) -> None:
    """Two memories about the same thing, months apart: a question about now prefers the
    later; the same question without "now" keeps the closer match first."""
    clock = ManualClock(NOW)
    weights = replace(DEFAULT_WEIGHTS, latest=1.0)
    with Memory(tmp_path / "s", clock=clock, weights=weights, embedder=None) as mem:
        mem.add_many([
            {"text": "Alex is learning German at beginner level", "user_id": "u",
             "at": NOW - timedelta(days=120), "dedupe": False},
            {"text": "Alex moved up to the B1 German level", "user_id": "u",
             "at": NOW - timedelta(days=5), "dedupe": False},
            *({"text": f"Alex walked the dog on day {i}", "user_id": "u",
               "at": NOW - timedelta(days=i), "dedupe": False} for i in range(10)),
        ])
        now_hits = mem.search("Which German level is Alex learning now?", user_id="u")
        assert now_hits[0].memory.content == "Alex moved up to the B1 German level"
        assert now_hits[0].components["latest"] > 0.9  # the latest of them, the walks aside
        then = mem.search("Which German level is Alex learning?", user_id="u")
        assert then[0].memory.content == "Alex is learning German at beginner level"


def test_the_owners_own_name_tells_none_of_their_memories_apart() -> None:
    """Searching alex's memories, "Alex" is in the facts and not in the turns that say "I":
    it must not lift the facts; another name in the question still counts."""
    found = [Candidate(brief(1, "s1")), Candidate(brief(2, "s1"))]
    texts = {"m001": "Alex has a dog", "m002": "User: I use DuckDB while Pixel sleeps"}

    def text_of(ids: Sequence[str]) -> dict[str, str]:
        return {i: texts[i] for i in ids}

    asked = "Which tool does Alex use while Pixel sleeps?"
    as_anyone = with_question(found, asked, NOW, text_of, DEFAULT_WEIGHTS)
    assert [c.entity for c in as_anyone] == [0.5, 0.5]  # "alex" and "pixel", one each
    as_owner = with_question(found, asked, NOW, text_of, DEFAULT_WEIGHTS, owner="Alex")
    assert [c.entity for c in as_owner] == [0.0, 1.0]  # "pixel" alone counts


def test_a_long_memory_ranks_below_a_short_one_unless_the_question_asks_what_was_said() -> None:
    """Pivoted length normalisation: a memory over LONG_WORDS words scores its fused score
    over 1 + length x log2(words / LONG_WORDS); one at or under it is not touched. A question
    about what the assistant said wants one of the long answers: nothing is divided then."""
    found = [Candidate(replace(brief(1, "s1"), text="bike " * (4 * LONG_WORDS)), keyword=5.0,
                       vector=0.6),
             Candidate(replace(brief(2, "s2"), text="bike " * LONG_WORDS), keyword=5.0,
                       vector=0.6)]
    plain = with_question(found, "Which bike did I service?", NOW, None, DEFAULT_WEIGHTS)
    assert [c.long for c in plain] == [2.0, 0.0]
    hits = rank(plain, NOW)
    assert [h.memory.id for h in hits] == ["m002", "m001"]
    assert [h.components["length"] for h in hits] == [0.0, 2.0]
    assert hits[1].score == pytest.approx(hits[0].score / (1 + 2 * DEFAULT_WEIGHTS.length))
    said = with_question(found, "Which bike was it that you recommended?", NOW, None,
                         DEFAULT_WEIGHTS)
    assert [c.long for c in said] == [0.0, 0.0]
    assert rank(said, NOW)[0].score == rank(said, NOW)[1].score
    unweighted = with_question(found, "Which bike did I service?", NOW, None,
                               Weights(length=0.0))
    assert [c.long for c in unweighted] == [0.0, 0.0]


@given(st.text(alphabet=" \n\tab", max_size=400), st.integers(1, 100))
def test_long_words_counts_doublings_past_the_pivot(text: str, pivot: int) -> None:
    words = len(text.split())
    assert long_words(text, pivot) == (math.log2(words / pivot) if words > pivot else 0.0)
