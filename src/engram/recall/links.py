"""Links at recall: the memories a question reaches through what it names, and through the
facts it joins, join its candidates even when its other words miss them.

- Names (`recall.entities`): "How many days after I started working with Rachel did I find a
  house?" pulls in what was said about Rachel.
- Parts of a question that joins two facts ("..., the dog bed for Max or the training pads
  for Luna?", "... a house I loved after starting to work with Rachel?", "the total cost of
  the vet visit and the flea medication"): each part is searched alone, so the best
  memories for one part are not crowded out by those for the other.

Both are keyword searches, whose neighbour columns resolve a pronoun within a session: "she
showed me three places", said just after "I started working with Rachel", is linked to
Rachel with the neighbour's lower weight. `Weights.linked`, chosen by cross-validation,
weighs the link (docs/recall.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from engram.query import Brief, Filters
from engram.recall.entities import query_entities
from engram.recall.ranking import keyword_terms

LINKS = 10  # memories linked through each name or part

# "..., A or B?"; "A after/before B", "between A and B"; "the total/sum/difference of A and B"
_CHOICE = re.compile(r",\s*(?P<a>[^,]+?)\s+or\s+(?P<b>[^,?]+)\??\s*$", re.IGNORECASE)
_ORDER = re.compile(r"^(?P<a>.+?)\s+(?:after|before|since|until)\s+(?P<b>.+)$", re.IGNORECASE)
_BETWEEN = re.compile(r"\bbetween\s+(?P<a>.+?)\s+and\s+(?P<b>.+)$", re.IGNORECASE)
_SUM = re.compile(r"\b(?:total|sum|combined|difference|both)\b.*?\bof\s+(?P<a>.+?)\s+and\s+"
                  r"(?P<b>.+)$", re.IGNORECASE)


# Words of the question's frame ("how long did it take", "how many days after"), not of a fact
_FRAME = frozenset("long day days week weeks month months year years ago take took first "
                   "later earlier".split())


def part_terms(part: str) -> list[str]:
    return [t for t in keyword_terms(part) if t not in _FRAME]


def query_parts(query: str) -> list[str]:
    """The two facts a question joins, when its form says it joins two; else none."""
    text = query.strip().rstrip("?").strip()
    for pattern in (_CHOICE, _BETWEEN, _SUM, _ORDER):
        if match := pattern.search(text):
            parts = [match["a"].strip(), match["b"].strip()]
            if all(part_terms(part) for part in parts):
                return parts
    return []


def link_queries(query: str) -> list[list[str]]:
    """The keyword queries a question links through: each name it asks about, and each part
    of the two facts it joins."""
    queries = [_WORD.findall(name) for name in query_entities(query)]
    queries += [part_terms(part) for part in query_parts(query)]
    return [q for q in queries if q]


def linked(queries: list[list[str]], filters: Filters,
           search: Callable[..., list[tuple[Brief, float]]]) -> dict[str, tuple[Brief, float]]:
    """The memories each link query finds by keyword `search` (`Store.keyword_candidates`:
    rare terms only, so a name in thousands of memories costs nothing), with the strength of
    the link: bm25 / (1 + bm25), so a name nearly every memory holds (the user's own, a
    speaker's), which BM25 weighs at ~0, links nothing. By memory id, the strongest link."""
    out: dict[str, tuple[Brief, float]] = {}
    for terms in queries:
        for brief, score in search(terms, filters, LINKS, rare_only=True):
            strength = score / (1.0 + score)
            if brief.id not in out or strength > out[brief.id][1]:
                out[brief.id] = (brief, strength)
    return out


_WORD = re.compile(r"[^\W_]+", re.UNICODE)
