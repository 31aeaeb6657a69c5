"""Retrieval: turning a question into candidate queries and ranked, explained hits. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engram.model import MemoryEntry

# Function words that match nearly every memory and so only add noise to an OR query.
STOPWORDS = frozenset("""
a about above after again against all am an and any are aren't as at be because been before
being below between both but by can can't cannot could couldn't did didn't do does doesn't
doing don't down during each few for from further had hadn't has hasn't have haven't having he
he'd he'll he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if
in into is isn't it it's its itself let's me more most mustn't my myself no nor not of off on
once only or other ought our ours ourselves out over own same shan't she she'd she'll she's
should shouldn't so some such than that that's the their theirs them themselves then there
there's these they they'd they'll they're they've this those through to too under until up
very was wasn't we we'd we'll we're we've were weren't what what's when when's where where's
which while who who's whom why why's will with won't would wouldn't you you'd you'll you're
you've your yours yourself yourselves s t d ll m re ve just also now
""".split())

_WORD = re.compile(r"[\w']+", re.UNICODE)


def keyword_terms(query: str) -> list[str]:
    """The query's distinct content words, lower-cased; all its words if every one is a
    stopword (so "who am I" still searches for something)."""
    words = [w.strip("'") for w in _WORD.findall(query.casefold())]
    words = [w for w in words if w]
    content = [w for w in words if w not in STOPWORDS]
    return list(dict.fromkeys(content or words))


@dataclass(frozen=True, slots=True)
class Hit:
    """A recalled memory, its score, and the parts the score is made of."""

    memory: MemoryEntry
    score: float
    components: dict[str, float] = field(default_factory=dict)
