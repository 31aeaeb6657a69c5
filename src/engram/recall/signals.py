"""The question's own signals for its candidates: which of the names it asks about a memory
names (`recall.entities`), whether it happened in the time the question names, how late it
happened when the question asks what holds now (`recall.when`), whether it holds the
kind of answer asked for (`recall.answers`), and how long it is (`recall.ranking.long_words`;
0 for all when the question asks what the assistant said). Each is 0 unless its weight is set
(cross-validation decides: docs/recall.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from engram.recall.answers import answer_kind, asks_said, holds
from engram.recall.entities import entity_share, query_entities
from engram.recall.ranking import Candidate, Weights, long_words
from engram.recall.when import asks_now, in_window, lateness, query_window


def with_question(candidates: Sequence[Candidate], query: str, now: datetime,
                  text_of: Callable[[Sequence[str]], dict[str, str]] | None,
                  weights: Weights | None = None, owner: str | None = None) -> list[Candidate]:
    """`candidates` with the signals `weights` weighs (all of them when None: benchmarks
    rank one candidate set under many weights). Stores read each candidate's text with its
    row; `text_of` gives the texts of briefs built without one (benchmarks, tests), called
    only when a signal that needs them counts for this question. `owner` is the user whose
    memories are searched: their own name (when it is their user id) tells none apart."""
    found = list(candidates)
    if not found:
        return found
    names = query_entities(query) if weights is None or weights.entity else []
    if owner is not None:
        names = [n for n in names if n != owner.casefold()]
    kind = answer_kind(query) if weights is None or weights.kind else None
    length = (weights is None or weights.length > 0) and not asks_said(query)
    if names or kind or length:
        missing = [c.memory.id for c in found if c.memory.text is None]
        texts = text_of(missing) if missing and text_of is not None else {}
        marked = []
        for c in found:  # most candidates hold none: they are kept as they are
            text = c.memory.text if c.memory.text is not None else texts.get(c.memory.id, "")
            entity, holds_kind = entity_share(names, text), holds(kind, text, c.memory.occurred_at)
            long = long_words(text) if length else 0.0
            marked.append(replace(c, entity=entity, kind=holds_kind, long=long)
                          if entity or holds_kind or long else c)
        found = marked
    window = query_window(query, now) if weights is None or weights.time else None
    if window is not None:
        found = [replace(c, time=in_window(c.memory.occurred_at, window)) for c in found]
    if (weights is None or weights.latest) and asks_now(query):
        late = lateness([c.memory.occurred_at for c in found])
        found = [replace(c, latest=x) for c, x in zip(found, late, strict=True)]
    return found
