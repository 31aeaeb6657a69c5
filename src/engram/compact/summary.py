"""A concept's name and summary. Extractive by default: the members' central sentences (the
member nearest the group's centroid first), each dated and with its speaker, in time order,
within a share of the members' tokens. Abstractive when a model is given: the members as dated
lines, and a request to keep every name, date and number. Pure: the model is passed in."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from engram.compact.cluster import Array
from engram.context.tokens import TokenCounter, estimate_tokens, fit_text
from engram.extract.text import entities, is_question, sentences
from engram.model import MemoryEntry
from engram.recall.ranking import keyword_terms

_SPEAKER = re.compile(r"^([A-Z][\w'.-]*(?: [A-Z][\w'.-]*){0,2}): ")
_DETAIL = re.compile(r"\d|\b(?:january|february|march|april|may|june|july|august|september|"
                     r"october|november|december|yesterday|today|tomorrow|last|next|ago)\b",
                     re.IGNORECASE)
_MIN_WORDS = 4
_NAME_PARTS = 3

Complete = Callable[[Sequence[Mapping[str, str]]], str]


@dataclass(frozen=True, slots=True)
class Length:
    """How long a summary may be: `ratio` of its members' tokens, at least `floor` tokens and
    at most `cap`."""

    ratio: float = 0.1
    floor: int = 24
    cap: int = 60

    def tokens(self, members: Sequence[MemoryEntry], count: TokenCounter) -> int:
        total = sum(count(m.content) for m in members)
        return max(self.floor, min(self.cap, int(total * self.ratio)))


def name(members: Sequence[MemoryEntry], document_counts: Mapping[str, int],
         documents: int) -> str:
    """Up to three words that say what the members share: the names most of them mention,
    then the words most particular to them (frequent here, rare in the user's other memories)."""
    said = Counter(n for m in members for n in {e for e in entities(m.content)})
    common = [n for n, c in said.most_common() if c >= 2][:2]
    terms = Counter(t for m in members for t in set(keyword_terms(m.content)) if len(t) > 2)
    taken = {w.casefold() for n in common for w in n.split()}
    weight = {t: c * math.log((documents + 1) / (document_counts.get(t, 0) + 1))
              for t, c in terms.items() if c >= 2 and t not in taken}
    words = [t for t, _ in sorted(weight.items(), key=lambda kv: (-kv[1], kv[0]))]
    parts = [*common, *words][:_NAME_PARTS]
    return " · ".join(parts) if parts else first_words(members[0].content)


def first_words(text: str, n: int = 4) -> str:
    return " ".join(text.split()[:n])


@dataclass(frozen=True, slots=True)
class _Sentence:
    text: str
    member: int
    at: datetime
    score: float


def extractive(members: Sequence[MemoryEntry], vectors: Array, budget_tokens: int,
               count: TokenCounter = estimate_tokens) -> str:
    """The members' most central sentences within `budget_tokens`, one per member before a
    second, in time order, each with its day and its speaker."""
    candidates = _sentences(members, vectors) or _sentences(members, vectors, strict=False)
    chosen: list[_Sentence] = []
    used, seen = 0, set()
    for round_ in range(2):  # breadth first: every member's best sentence, then the rest
        taken = {s.member for s in chosen}
        for s in candidates:
            key = s.text.casefold()
            if key in seen or (round_ == 0 and s.member in taken):
                continue
            cost = count(_render(s, None)) + 1
            if used + cost > budget_tokens:
                continue
            chosen.append(s)
            taken.add(s.member)
            seen.add(key)
            used += cost
    if not chosen and candidates:  # not even one sentence fits: the best one, cut
        return fit_text(_render(candidates[0], None), budget_tokens, count)
    chosen.sort(key=lambda s: (s.at, s.member))
    out, day = [], None
    for s in chosen:
        out.append(_render(s, day))
        day = s.at.date()
    return " ".join(out)


def _sentences(members: Sequence[MemoryEntry], vectors: Array,
               strict: bool = True) -> list[_Sentence]:
    """Every informative sentence (`strict`: not a question, not a few words), best first:
    its member's closeness to the centroid, plus a little for the dates, numbers and names it
    holds."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    centroid = unit.mean(axis=0)
    centrality = unit @ (centroid / max(float(np.linalg.norm(centroid)), 1e-12))
    found = []
    for i, m in enumerate(members):
        speaker = _SPEAKER.match(m.content)
        for text in sentences(m.content):
            bare = _SPEAKER.sub("", text)
            if strict and (len(bare.split()) < _MIN_WORDS or is_question(bare)):
                continue
            if speaker and not _SPEAKER.match(text):
                text = f"{speaker.group(1)}: {text}"
            details = len(_DETAIL.findall(bare)) + len(entities(bare))
            found.append(_Sentence(" ".join(text.split()), i, m.occurred_at,
                                   float(centrality[i]) + 0.05 * min(details, 3)))
    return sorted(found, key=lambda s: (-s.score, s.member))


def _render(s: _Sentence, previous_day: object) -> str:
    if s.at.date() == previous_day:
        return s.text
    return f"({s.at.day} {s.at:%B %Y}) {s.text}"


def abstractive_prompt(members: Sequence[MemoryEntry], max_words: int) -> list[dict[str, str]]:
    """Messages asking a model for one concept summary of `members`."""
    lines = "\n".join(f"- ({m.occurred_at.day} {m.occurred_at:%B %Y}) {' '.join(m.content.split())}"
                      for m in sorted(members, key=lambda m: m.occurred_at))
    return [{"role": "system", "content":
             "These memories of one user are about one topic. Write one summary of them for "
             f"the user's long-term memory in at most {max_words} words. Keep every name, "
             "date and number that matters. Answer with the summary only."},
            {"role": "user", "content": lines}]


def abstractive(members: Sequence[MemoryEntry], complete: Complete, budget_tokens: int,
                count: TokenCounter = estimate_tokens) -> str:
    """A model's summary of `members`, cut to `budget_tokens`; ValueError when it is empty."""
    written = " ".join(complete(abstractive_prompt(members, max(budget_tokens * 3 // 4, 10)))
                       .split())
    if not written:
        raise ValueError("the model returned an empty summary")
    return fit_text(written, budget_tokens, count)
