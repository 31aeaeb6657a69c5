"""Retrieval: turning a question into candidate queries and ranked, explained hits. Pure."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from engram.model import MemoryEntry

# NLTK's English stopwords plus question words: they match nearly every memory, so they only
# add noise (and time) to an OR query. Measured on LoCoMo: docs/recall-research.md.
STOPWORDS = frozenset("""
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
yourselves he him his himself she she's her hers herself it it's its itself they them their
theirs themselves what which who whom this that that'll these those am is are was were be been
being have has had having do does did doing a an the and but if or because as until while of at
by for with about against between into through during before after above below to from up down
in out on off over under again further then once here there when where why how all any both each
few more most other some such no nor not only own same so than too very s t can will just don
don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn
doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn
needn't shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn wouldn't
whose kind type sort would could might likely many much ever yet also
""".split())

_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # the characters FTS5's unicode61 keeps in a token


def keyword_terms(query: str) -> list[str]:
    """The query's distinct content words, lower-cased; all its words if every one is a
    stopword (so "who am I" still searches for something)."""
    words = _WORD.findall(query.casefold())
    content = [w for w in words if w not in STOPWORDS]
    return list(dict.fromkeys(content or words))


@dataclass(frozen=True, slots=True)
class Hit:
    """A recalled memory, its score, and the parts the score is made of."""

    memory: MemoryEntry
    score: float
    components: dict[str, float] = field(default_factory=dict)


# What the keyword index holds for each memory, with each column's BM25 weight. Neighbouring
# memories of the same session give a turn the context it was said in; the date lets
# "what happened in May 2023" match. Weights measured on LoCoMo (docs/recall-research.md).
INDEX_COLUMNS = ("text", "prev1", "next1", "prev2", "next2", "date")
INDEX_WEIGHTS = (1.0, 0.5, 0.5, 0.2, 0.2, 1.0)
NEIGHBOURS = 2


def date_words(moment: datetime) -> str:
    """'8 May 2023': the words a question about a date would use."""
    return f"{moment.day} {moment.strftime('%B %Y')}"


def index_keys(text: str, occurred_at: datetime, before: Sequence[str],
               after: Sequence[str]) -> tuple[str, ...]:
    """The keyword-index columns of a memory, given up to NEIGHBOURS texts on each side,
    nearest first."""
    def at(side: Sequence[str], i: int) -> str:
        return side[i] if i < len(side) else ""

    return (text, at(before, 0), at(after, 0), at(before, 1), at(after, 1),
            date_words(occurred_at))
