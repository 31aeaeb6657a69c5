"""Extraction rules that read a whole turn, not one clause: another person's birthday ("her"
is the one person the turn named), a language course's CEFR level (the language the turn
names), a setting asked for beside a dislike, a new home's district with the city the turn is
sent from; and a race's finishing time. Each with the sentences it must refuse."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from engram.extract import extract, find_time
from engram.model import Kind

AT = datetime(2026, 1, 20, 15, 0, tzinfo=UTC)  # a Tuesday


def slots(text: str, at: datetime = AT) -> set[tuple[str, str]]:
    return {(e.attribute, e.value) for e in extract(text, at=at)}


def content(text: str, attribute: str) -> str:
    [found] = [e for e in extract(text, at=AT) if e.attribute == attribute]
    return found.content


# ---------------------------------------------------------------- someone else's birthday


@pytest.mark.parametrize(("text", "slot", "says"), [
    ("The race is partly an excuse to visit my sister Maya, she lives in Berlin. Her birthday "
     "is September 12, by the way, and I always end up scrambling for a gift.",
     ("birthday:maya", "September 12"), "User's sister Maya's birthday is September 12"),
    ("I need a gift for my mum Ingrid. Her birthday is on the 14th of May.",
     ("birthday:ingrid", "May 14"), "User's mum Ingrid's birthday is May 14"),
    ("My dad's birthday is July 21.", ("birthday:dad", "July 21"),
     "User's dad's birthday is July 21"),
    ("It's my husband's birthday tomorrow.", ("birthday:husband", "January 21"),
     "User's husband's birthday is January 21"),
    ("Lena's birthday is May 3.", ("birthday:lena", "May 3"), "Lena's birthday is May 3"),
])
def test_another_persons_birthday(text: str, slot: tuple[str, str], says: str) -> None:
    assert slot in slots(text)
    assert content(text, slot[0]) == says


@pytest.mark.parametrize("text", [
    "Her birthday is September 12.",  # nobody named before "her"
    "My sister and my cousin Rita are visiting. Her birthday is June 2.",  # which one?
    "My sister Ana and my brother Luis are twins. Her birthday is March 3.",
    "My brother Tom is visiting. His birthday is next week.",  # no day named
    "My birthday is next week.",
    "Lena's birthday party is on Saturday.",
    "Tom and I went hiking. His birthday is April 9.",  # Tom is not named as a relation
])
def test_a_birthday_without_one_person_or_one_day_is_refused(text: str) -> None:
    assert not [e for e in extract(text, at=AT) if e.attribute.startswith("birthday")]


def test_week_phrases_are_approximate_days() -> None:
    week, day = find_time("next week", AT), find_time("on May 3", AT)
    assert week is not None and week.precision == "day" and week.approximate
    assert day is not None and not day.approximate


# ---------------------------------------------------------------- a course's level


@pytest.mark.parametrize(("text", "slot", "says"), [
    ("I ordered at the bakery entirely in German this morning! I'm almost done with A2 and "
     "I've signed up for a B1 evening class starting in November.", ("level:german", "B1"),
     "User's German course is at level B1"),
    ("I passed my A2 exam and now I'm taking a B1 Spanish course.", ("level:spanish", "B1"),
     "User's Spanish course is at level B1"),
    ("I enrolled in an intensive C1 English class.", ("level:english", "C1"),
     "User's English course is at level C1"),
    ("I'm learning Italian. The school put me into the A2 group.", ("level:italian", "A2"),
     "User's Italian course is at level A2"),
    ("My French is at B2 level now.", ("level:french", "B2"), "User's French is at level B2"),
    ("I've been taking a B1 French class since May.", ("level:french", "B1"),
     "User's French course is at level B1"),
])
def test_a_language_course_level(text: str, slot: tuple[str, str], says: str) -> None:
    assert slot in slots(text)
    assert content(text, slot[0]) == says
    found = [e for e in extract(text, at=AT) if e.attribute == slot[0]]
    assert found[0].memory_type is Kind.SKILL


@pytest.mark.parametrize("text", [
    # no language named in the turn: the level stays in the raw turn
    "Also, the language school gave me a placement test and put me straight into the B1 "
    "class, starting next week instead of November.",
    "I'm almost done with A2 and I've signed up for a B1 evening class.",
    "I signed up for a B2 course at the Goethe-Institut.",
    # two languages named: which one?
    "I speak Spanish and I'm learning Portuguese. I signed up for a B1 class.",
    # a level-like code that is not a course
    "I booked seat B1 on the train to Munich.",
    "My flight leaves from gate A2 and I'm reading a German novel.",
])
def test_a_level_without_one_language_or_a_course_is_refused(text: str) -> None:
    found = extract(text, at=AT)
    assert not [e for e in found if e.attribute.startswith("level:")]
    # nor "is learning B2": a level is not a subject
    assert not [e for e in found if e.attribute.startswith("learning:")
                and re.search(r"\b[abc][12]\b", e.attribute)]


# ---------------------------------------------------------------- a setting asked for


@pytest.mark.parametrize(("text", "wanted", "says"), [
    ("They gave me a new work MacBook. How do I get dark mode everywhere? I really can't stand "
     "light themes.", "dark mode", "User prefers dark mode to light themes"),
    ("How do I switch Slack to dark mode? I hate bright screens.", "dark mode",
     "User prefers dark mode to bright screens"),
    ("I can't stand tiny text. Can I turn on large fonts everywhere?", "large fonts",
     "User prefers large fonts to tiny text"),
])
def test_a_setting_asked_for_beside_a_dislike(text: str, wanted: str, says: str) -> None:
    found = {e.attribute: e for e in extract(text, at=AT)}
    preference = found["preference:" + wanted]
    assert (preference.memory_type, preference.value, preference.negated) == (
        Kind.PREFERENCE, wanted, False)
    assert preference.content == says
    assert any(e.negated for e in found.values())  # the dislike stays its own memory


@pytest.mark.parametrize("text", [
    "Can I switch this app to dark mode? The white screen at night hurts my eyes.",  # no dislike
    "How do I get to the airport? I hate taxis.",  # not a setting
    "How do I turn on the oven? I hate cold food.",  # on once, not everywhere
    "Can you switch to Spanish? I can't stand it when you answer in English.",  # "it"
    "Can I switch to dark mode? Or to sepia? I hate white and I hate grey.",  # two of each
    "Can you change my flight to Tuesday? I hate early mornings.",  # asks someone, no setting
])
def test_a_request_without_one_dislike_or_setting_is_refused(text: str) -> None:
    assert not [e for e in extract(text, at=AT) if e.memory_type is Kind.PREFERENCE
                and not e.negated]


# ---------------------------------------------------------------- a new home's city


@pytest.mark.parametrize(("text", "home"), [
    ("Hallo! Greetings from Berlin. We moved into our new flat in Prenzlauer Berg last "
     "Saturday.", "Prenzlauer Berg, Berlin"),
    ("I'm in Munich now. We moved into our new place in Schwabing last week.",
     "Schwabing, Munich"),
    ("Greetings from Hamburg! We moved into a new flat in Hamburg.", "Hamburg"),  # said once
    ("We moved into a new flat in Hamburg last month.", "Hamburg"),  # no city to add
    # the greeting says more than where the speaker is (a trip): no city added
    ("Greetings from Paris, where I'm at a conference. We moved into our new flat in Lyon "
     "last month.", "Lyon"),
    ("Greetings from Rome! I moved to Naples.", "Naples"),  # a move to a city, not a district
])
def test_a_new_homes_district_with_the_city_the_turn_is_sent_from(text: str,
                                                                  home: str) -> None:
    assert slots(text) == {("residence", home)}
    assert content(text, "residence") == "User lives in " + home


# ---------------------------------------------------------------- a race's finishing time


def test_a_race_finished_in_a_time() -> None:
    at = datetime(2026, 10, 13, 8, 0, tzinfo=UTC)
    found = extract("I did it! I finished the Berlin half marathon on Sunday in 1:54:32, and "
                    "Maya and Pixel were waiting at the finish line.", at=at)
    result = {e.attribute: e for e in found}["result:berlin half marathon"]
    assert (result.memory_type, result.value) == (Kind.FACT, "1:54:32")
    assert result.content == "User's finishing time in the Berlin half marathon was 1:54:32"
    assert result.occurred_at is not None and result.occurred_at.date() == date(2026, 10, 11)
    assert [e.memory_type for e in found].count(Kind.EVENT) == 1  # the event stays
    assert ("result:first 10k", "52 minutes") in slots(
        "I ran my first 10k in 52 minutes last weekend.")
    assert content("I ran my first 10k in 52 minutes.", "result:first 10k") == \
        "User's finishing time in their first 10k was 52 minutes"


@pytest.mark.parametrize("text", [
    "I finished the report in 2 hours.",  # not a race
    "I finished the Berlin half marathon last year.",  # no time
    "My friend ran the marathon in 3:30.",  # not the speaker
    "I signed up for a half marathon in 10 weeks.",  # not finished
])
def test_a_time_that_is_not_the_speakers_race_result_is_refused(text: str) -> None:
    assert not [e for e in extract(text, at=AT) if e.attribute.startswith("result:")]


def test_a_rule_looks_back_over_a_turns_worth_of_clauses_only() -> None:
    """A long text (a note) is not searched far back: "her" finds Maya one sentence before,
    not twenty sentences before."""
    named = "I visited my sister Maya today."
    filler = " ".join(f"The garden needed work number {i}." for i in range(20))
    assert ("birthday:maya", "September 12") in slots(f"{named} Her birthday is September 12.")
    assert not [e for e in extract(f"{named} {filler} Her birthday is September 12.", at=AT)
                if e.attribute.startswith("birthday")]
