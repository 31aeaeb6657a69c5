"""Entities at recall: the names a question mentions, and how many of them a memory names.

A name such as a person's recurs in so many memories that BM25 gives it almost no weight
(FTS5's IDF is ~0 past half the rows), and MiniLM barely separates "Caroline" from
"Melanie"; this signal says whether a candidate is about who or what the question names.
Its weight (`Weights.entity`) is chosen by cross-validation (docs/recall.md).
The memories linked to a question through its names: `recall.links`.
"""

from __future__ import annotations

import re
from functools import lru_cache

from engram.extract.text import entities

_QUESTION_WORDS = frozenset("""what when where who whom whose which why how is are was were do
does did can could would should will has have had tell name list""".split())


def query_entities(query: str) -> list[str]:
    """The names in a question, case-folded: capitalised words and runs of them, less the
    question words that open a sentence."""
    names = []
    for name in entities(query):
        words = name.split()
        while words and words[0].casefold() in _QUESTION_WORDS:
            words = words[1:]
        if words:
            names.append(" ".join(words).casefold().removesuffix("'s"))
    return list(dict.fromkeys(names))


def entity_share(names: list[str], text: str) -> float:
    """The share of `names` that `text` names (whole words, any case)."""
    if not names:
        return 0.0
    low = text.casefold()
    return sum(1 for n in names if n in low and _whole_word(n).search(low)) / len(names)


@lru_cache(maxsize=4096)
def _whole_word(name: str) -> re.Pattern[str]:
    """A name's pattern, compiled once: a question's names are matched in every candidate."""
    return re.compile(r"\b" + re.escape(name) + r"\b")

