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
from engram.recall.ranking import keyword_terms

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
    """Whether `member` holds something `query` asks for that `summary` leaves out: a date, a
    number or a name when the question asks for one, or a word of the question."""
    date, number, name, names = asked_details(query)
    text, low_summary = member.content, summary.casefold()

    def missing(found: list[str]) -> bool:
        return any(f.casefold() not in low_summary for f in found)

    asked = {_stem(t) for t in keyword_terms(query)}
    return bool((date and missing(_DATE.findall(text)))
                or (number and missing(_NUMBER.findall(text)))
                or (name and missing(entities(text)))
                or missing([n for n in names if n in text.casefold()])
                or asked & _stems(text) - _stems(summary))


def _stem(word: str) -> str:
    """A crude stem: the first five letters ("research", "researching")."""
    return word[:5]


def _stems(text: str) -> set[str]:
    return {_stem(t) for t in keyword_terms(text)}


def prefer_concepts(memories: Sequence[MemoryEntry], query: str | None,
                    select: Callable[[list[MemoryEntry]], list[MemoryEntry]],
                    cost: Callable[[MemoryEntry], int]) -> list[MemoryEntry]:
    """`memories` (best first, concepts among them) as the context should consider them.
    `select(memories)` gives those that fit the budget, in order; `cost` measures one.

    A concept stands in for its members that hold nothing the question asks when at least
    two of them would be shown and it costs less than they do: the tokens it saves go to
    memories further down. The members that hold what the question asks stay."""
    plain = [m for m in memories if m.memory_type is not Kind.CONCEPT]
    present = {m.id for m in plain}
    concept_of: dict[str, MemoryEntry] = {}
    for c in (m for m in memories if m.memory_type is Kind.CONCEPT):
        for member in c.links.derived_from:
            if member in present:
                concept_of.setdefault(member, c)
    shown = {m.id for m in select(plain)}
    replaced: set[str] = set()
    if len(shown) < len(plain):  # a tight budget: some recalled memories do not fit
        for c in {c.id: c for c in concept_of.values()}.values():
            rest = [m for m in plain if concept_of.get(m.id) is c
                    and (not query or not holds_detail(m, query, c.content))]
            visible = [m for m in rest if m.id in shown]
            if len(visible) >= 2 and cost(c) < sum(cost(m) for m in visible):
                replaced |= {m.id for m in rest}
    covering = {c.id for c in concept_of.values()}
    out: list[MemoryEntry] = []
    for m in memories:
        if m.id in replaced:
            m = concept_of[m.id]
        elif m.id in covering:
            continue  # its members are shown themselves (or it stands in for them above)
        if m not in out:
            out.append(m)
    return out
