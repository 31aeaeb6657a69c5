"""Concepts in a context: when the recalled memories do not all fit, a concept's summary
stands in for the several members it covers, and a member stays beside it when the question
asks for a detail (a date, a number, a name) that the member holds and the summary does not.
When everything fits, members are shown as they are and their concepts add nothing. Pure."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from engram.extract.text import entities
from engram.model import Kind, MemoryEntry
from engram.recall.entities import query_entities

EXPAND = 2  # members of one concept kept beside its summary for the detail they hold

_ASKS_DATE = re.compile(r"\bwhen\b|\bwhat (?:date|day|year|month|time)\b|\bhow long ago\b|"
                        r"\bwhich (?:year|month|day|date)\b", re.IGNORECASE)
_ASKS_NUMBER = re.compile(r"\bhow (?:many|much|old|long|often|far)\b|\bnumber\b|\bprice\b|"
                          r"\bcost\b|\bage\b", re.IGNORECASE)
_ASKS_NAME = re.compile(r"\bwho(?:m|se)?\b|\bname[ds]?\b|\bcalled\b", re.IGNORECASE)
_DATE = re.compile(r"\b(?:\d{4}|january|february|march|april|may|june|july|august|september|"
                   r"october|november|december|monday|tuesday|wednesday|thursday|friday|"
                   r"saturday|sunday|yesterday|today|tomorrow|tonight|last (?:week|month|year|"
                   r"night|weekend)|\w+ (?:days?|weeks?|months?|years?) ago)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\b\d+(?:[.,]\d+)?\b|\b(?:one|two|three|four|five|six|seven|eight|nine|"
                     r"ten|eleven|twelve|twenty|thirty|hundred|thousand|dozen)\b",
                     re.IGNORECASE)


def asked_details(query: str) -> tuple[bool, bool, bool, list[str]]:
    """Whether `query` asks for a date, a number, a name; and the names it mentions."""
    return (bool(_ASKS_DATE.search(query)), bool(_ASKS_NUMBER.search(query)),
            bool(_ASKS_NAME.search(query)), query_entities(query))


def holds_detail(member: MemoryEntry, query: str, summary: str) -> bool:
    """Whether `member` holds something `query` asks for that `summary` leaves out."""
    date, number, name, names = asked_details(query)
    text, low_summary = member.content, summary.casefold()

    def missing(found: list[str]) -> bool:
        return any(f.casefold() not in low_summary for f in found)

    return ((date and missing(_DATE.findall(text)))
            or (number and missing(_NUMBER.findall(text)))
            or (name and missing(entities(text)))
            or missing([n for n in names if n in text.casefold()]))


def prefer_concepts(memories: Sequence[MemoryEntry], query: str | None,
                    fits: Callable[[list[MemoryEntry]], bool]) -> list[MemoryEntry]:
    """`memories` (best first, concepts among them) as the context should consider them;
    `fits(memories)` says whether all of these fit the budget."""
    concepts = [m for m in memories if m.memory_type is Kind.CONCEPT]
    if not concepts:
        return list(memories)
    present = {m.id for m in memories}
    concept_of: dict[str, MemoryEntry] = {}
    for c in concepts:
        for member in c.links.derived_from:
            if member in present:
                concept_of.setdefault(member, c)
    covered: dict[str, int] = {}
    for holder in concept_of.values():
        covered[holder.id] = covered.get(holder.id, 0) + 1
    plain = [m for m in memories if m.memory_type is not Kind.CONCEPT]
    if fits(plain):  # all of it fits: members as they are
        return [m for m in memories if m.memory_type is not Kind.CONCEPT
                or not covered.get(m.id)]
    out: list[MemoryEntry] = []
    placed: set[str] = set()
    expanded: dict[str, int] = {}
    for m in memories:
        concept = concept_of.get(m.id)
        if m.memory_type is Kind.CONCEPT or concept is None or covered[concept.id] < 2:
            if m.id not in placed:
                out.append(m)
                placed.add(m.id)
            continue
        if concept.id not in placed:
            out.append(concept)
            placed.add(concept.id)
        if query and expanded.get(concept.id, 0) < EXPAND and \
                holds_detail(m, query, concept.content):
            out.append(m)
            expanded[concept.id] = expanded.get(concept.id, 0) + 1
    return out
