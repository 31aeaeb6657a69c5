"""Offline, rule-based extraction of facts, preferences, beliefs, skills, events and context.

`extract` is a pure function of a chat turn and its time: no I/O, no model. Each result names a
slot (subject + attribute) so consolidation can spot contradictions: two results with the same
subject and attribute but another value or another `negated` contradict, except for the
accumulating attributes in `ACCUMULATING` ("event", "context", "belief").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from engram.extract import episodes, facts, opinions
from engram.extract.claim import Claim, Clause
from engram.extract.dates import TimeMention, find_time
from engram.extract.text import (
    clauses,
    entities,
    is_hypothetical,
    is_question,
    sentences,
    third_person,
    tidy,
    trim,
)
from engram.model import Kind, Truth

__all__ = ["ACCUMULATING", "Extracted", "TimeMention", "extract", "find_time"]

ACCUMULATING = frozenset({"event", "context", "belief"})

Rule = Callable[[Clause], list[Claim]]
_FACT_RULES: tuple[Rule, ...] = (facts.identity, facts.places, facts.work, facts.diet,
                                 facts.allergy, facts.pets, opinions.preferences,
                                 opinions.skills)
_LAST_RESORT: tuple[Rule, ...] = (opinions.context, episodes.events)
_HEDGE_CONFIDENCE = 0.6


@dataclass(frozen=True, slots=True)
class Extracted:
    """One memory proposed from a turn: what to store, and the slot it fills."""

    content: str  # a self-contained sentence: "User lives in Berlin"
    memory_type: Kind
    truth_category: Truth
    confidence: float  # 0..1
    entities: tuple[str, ...]
    subject: str  # whom it is about: the speaker ("user")
    attribute: str  # the slot: "residence", "pet:dog", "preference:jazz", "event", ...
    value: str  # "Berlin", "Rex", "jazz", "ran a half marathon"
    negated: bool  # "I no longer live in Paris" -> residence=Paris, negated
    occurred_at: datetime | None  # when it happened or became true, if the turn says
    time_precision: str | None  # "day" | "month" | "year" for occurred_at, else None
    span: str  # the source sentence

    @property
    def slot(self) -> tuple[str, str] | None:
        """(subject, attribute) when the attribute holds one value at a time; else None."""
        return None if self.attribute in ACCUMULATING else (self.subject, self.attribute)


# The clauses before this one that a rule may look back over ("her" -> "Maya" one sentence
# before): a chat turn's worth, so a long note (ingestion passes a note as one text) is not
# read again for every clause, nor searched far back for a name.
LOOK_BACK = 6


def extract(text: str, *, at: datetime, speaker: str = "user") -> list[Extracted]:
    """Memories stated in `text`, with relative dates resolved against `at` (the turn's time).

    Questions, hypotheticals, small talk and statements about other people yield nothing.
    """
    label = speaker[:1].upper() + speaker[1:]
    out: list[Extracted] = []
    said: list[str] = []  # the turn so far, for a rule that looks back ("her" -> "Maya")
    asked: list[tuple[str, str]] = []  # (sentence, setting) the speaker asked to switch to
    for sentence in sentences(text):
        if is_question(sentence) or is_hypothetical(tidy(sentence)):
            if (wanted := opinions.requested(tidy(sentence))) is not None:
                asked.append((sentence, wanted))
            said.append(sentence)
            continue
        carried: TimeMention | None = None
        previous: str | None = None
        for raw in clauses(sentence):
            clause, when = _clause(tidy(raw), at, carried, previous,
                                   ". ".join(said[-LOOK_BACK:]))
            said.append(raw)
            if not clause.text:
                carried = when
                continue
            if is_hypothetical(clause.text):
                continue
            for claim, truth, confidence in _claims(clause):
                if _unsure(claim, speaker):
                    continue
                previous = claim.attribute
                out.append(_extracted(claim, truth, confidence, clause, sentence, speaker,
                                      label))
    disliked = [e.value for e in out if e.memory_type is Kind.PREFERENCE and e.negated]
    if len(asked) == 1 and len(disliked) == 1:  # "how do I get X everywhere? I hate Y"
        sentence, wanted = asked[0]
        claim = opinions.instead(wanted, disliked[0])
        out.append(_extracted(claim, None, None, Clause(wanted), sentence, speaker, label))
    return _unique(out)


# An event or situation whose object is a bare pronoun ("decided to keep it", "met him") says
# nothing on its own: the raw turn keeps it, with the sentence that says what "it" is.
_UNRESOLVED = re.compile(r"\b(?:it|that|this|them|him|those|these)\b", re.IGNORECASE)


def _unsure(claim: Claim, speaker: str) -> bool:
    """Whether a rule's claim is one the rules cannot stand behind: a pronoun for its object,
    a state phrased as a future event ("I'll be ..."), or a name that only repeats the
    speaker's own ("I'm Alex" said by Alex)."""
    if claim.kind in (Kind.EVENT, Kind.CONTEXT):
        return bool(_UNRESOLVED.search(claim.value)) or claim.value.casefold().startswith("be ")
    if claim.attribute == "name":
        return claim.value.casefold() in (speaker.casefold(), speaker.split()[0].casefold())
    return False


def _clause(text: str, at: datetime, carried: TimeMention | None, previous: str | None,
            earlier: str) -> tuple[Clause, TimeMention | None]:
    when = find_time(text, at)
    if when is not None:
        text = (text[:when.start] + " " + text[when.end:]).strip()
        text = re.sub(r"\s+", " ", re.sub(r"^[,\s]+|[,\s]+$", "", text))
    return Clause(trim(text), when or carried, previous, earlier), when or carried


def _claims(clause: Clause) -> list[tuple[Claim, Truth | None, float | None]]:
    found = [claim for rule in _FACT_RULES for claim in rule(clause)]
    people = facts.relations(clause)
    if not found:
        belief = opinions.beliefs(clause)
        if isinstance(belief, str):  # "I think I'm allergic to cats": a fact, held loosely
            inner = Clause(tidy(belief), clause.when, clause.previous_attribute, clause.earlier)
            hedged = [claim for rule in _FACT_RULES for claim in rule(inner)]
            return [(c, Truth.INFERRED, c.confidence * _HEDGE_CONFIDENCE) for c in hedged]
        found = belief
    if not found:
        found = next((claims for rule in _LAST_RESORT if (claims := rule(clause))), [])
    return [(c, None, None) for c in [*found, *(p for p in people if p not in found)]]


def _extracted(claim: Claim, truth: Truth | None, confidence: float | None, clause: Clause,
               sentence: str, speaker: str, label: str) -> Extracted:
    when = clause.when
    content = claim.content.replace("{s}", label)
    if content.startswith(label):  # not "Tom's birthday is March 3", said of someone else
        content = label + third_person(content[len(label):])
    if when is not None and claim.kind in (Kind.EVENT, Kind.CONTEXT):
        content += _when_text(when)
    names = entities(clause.text)
    if claim.value[:1].isupper() and claim.value not in names:
        names.append(claim.value)
    return Extracted(
        content=content,
        memory_type=claim.kind,
        truth_category=truth or claim.truth,
        confidence=round(confidence if confidence is not None else claim.confidence, 3),
        entities=tuple(names),
        subject=speaker,
        attribute=claim.attribute,
        value=claim.value,
        negated=claim.negated,
        occurred_at=when.moment if when else None,
        time_precision=when.precision if when else None,
        span=sentence,
    )


def _when_text(when: TimeMention) -> str:
    moment = when.moment
    if when.precision == "year":
        return f" in {moment:%Y}"
    if when.precision == "month":
        return f" in {moment:%B %Y}"
    return f" on {moment:%Y-%m-%d}"


def _unique(found: list[Extracted]) -> list[Extracted]:
    seen: set[tuple[str, str, str, bool]] = set()
    out: list[Extracted] = []
    for item in found:
        key = (item.attribute, item.value.casefold(), item.span, item.negated)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
