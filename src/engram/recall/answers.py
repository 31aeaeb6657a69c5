"""The kind of answer a question asks for, and whether a memory holds one: a question that
asks where ("Which cities has Jon visited?") is answered by a memory that names a place ("Took
a short trip last week to Rome"), one that asks when by a memory that says when ("I went to
the support group yesterday"), one that asks how many by a memory with a number. An old
question-answering device (answer-type matching), by rules; its weight (`Weights.kind`) is
chosen by cross-validation (docs/recall.md). And whether a question asks what the assistant
said ("You recommended five bottles...", "our previous conversation"): its answer is one of
the long memories that `Weights.length` otherwise ranks lower."""

from __future__ import annotations

import re
from datetime import datetime

from engram.extract.dates import find_time

_PLACE_Q = re.compile(r"^\s*where\b|\b(?:which|what)\s+(?:\w+\s+)?(?:city|cities|country|"
                      r"countries|town|towns|place|places|state|states|restaurant|"
                      r"restaurants|park|parks|museum|museums)\b", re.IGNORECASE)
_TIME_Q = re.compile(r"^\s*when\b|\bwhat\s+(?:date|day|year|month|time)\b|\bhow\s+long\s+ago\b"
                     r"|\bwhich\s+(?:day|year|month)\b", re.IGNORECASE)
_NUMBER_Q = re.compile(r"\bhow\s+(?:many|much|old|far|often)\b", re.IGNORECASE)
# A name after a word of place: "to Rome", "in New York", "visited Paris"
_PLACE = re.compile(r"\b(?:in|to|at|from|near|around|visit|visited|visiting|across)\s+"
                    r"(?:the\s+)?[A-Z][\w'-]+")
_SAID_Q = re.compile(r"\byou\s+(?:\w+\s+)?(?:mentioned|recommended|suggested|said|told|created|"
                     r"gave|listed|wrote|explained|provided|shared|described)\b|\bour\s+"
                     r"(?:previous|last|earlier)\s+(?:conversation|chat)\b|\bremind\s+me\b",
                     re.IGNORECASE)
_NUMBER = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|"
                     r"twelve|twenty|thirty|forty|fifty|hundred|thousand|dozen|once|twice|"
                     r"half)\b", re.IGNORECASE)


def answer_kind(query: str) -> str | None:
    """'place', 'time' or 'number' when the question asks for one; else None."""
    for kind, pattern in (("place", _PLACE_Q), ("time", _TIME_Q), ("number", _NUMBER_Q)):
        if pattern.search(query):
            return kind
    return None


def holds(kind: str | None, text: str, at: datetime) -> float:
    """1.0 when `text` holds an answer of `kind` (a place, a time said against `at`, a
    number); else 0."""
    if kind == "place":
        return float(bool(_PLACE.search(text)))
    if kind == "time":
        return float(find_time(text, at) is not None)
    if kind == "number":
        return float(bool(_NUMBER.search(text)))
    return 0.0


def asks_said(query: str) -> bool:
    """Whether the question asks what was said to the user before ("what was the trail you
    recommended?", "in our previous chat...", "can you remind me..."): the assistant's answers
    are long, so the long-memory divisor must not rank them lower for it."""
    return bool(_SAID_Q.search(query))
