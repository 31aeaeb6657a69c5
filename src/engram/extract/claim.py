"""What a rule returns: one claim about the speaker, before time and provenance are attached."""

from __future__ import annotations

from dataclasses import dataclass

from engram.extract.dates import TimeMention
from engram.model import Kind, Truth


@dataclass(frozen=True, slots=True)
class Clause:
    """A tidied first-person clause and the time phrase found in it (already cut out), with
    what the turn said before it (where "her" or "the B1 class" finds whom or what it means)."""

    text: str
    when: TimeMention | None = None
    previous_attribute: str | None = None
    earlier: str = ""

    @property
    def low(self) -> str:
        return self.text.lower()


@dataclass(frozen=True, slots=True)
class Claim:
    kind: Kind
    attribute: str
    value: str
    content: str  # third-person statement, "{s}" standing for the subject
    truth: Truth = Truth.CONTEXTUAL
    confidence: float = 0.9
    negated: bool = False
