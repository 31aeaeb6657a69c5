"""What a new memory does to what is already known, and how confidence moves. Pure.

A memory extracted from a turn carries a slot ("user/residence") when its attribute holds one
value at a time, and its claim (value, negated) in `metadata["claim"]`. Against the user's
memories it either corroborates one (the same text, the same slot value, or — for memories
without a slot — a near-duplicate by embedding) or is added; either way it supersedes the
active memories of its slot that hold another value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from engram.extract import Extracted
from engram.model import LinkKind, MemoryEntry, Status

CORROBORATION_GAIN = 0.25  # each corroboration closes this share of the gap to 1.0
CONTRADICTION_FACTOR = 0.5
FEEDBACK_FACTORS = {"good": 1.5, "bad": 0.5, "correction": 3.0}  # the seed's weights


@dataclass(frozen=True, slots=True)
class Decision:
    target: MemoryEntry | None  # the memory to corroborate; None: add the new one
    supersede: tuple[MemoryEntry, ...] = ()  # active memories whose value it replaces


def decide(entry: MemoryEntry, *, same_text: MemoryEntry | None,
           same_slot: Sequence[MemoryEntry], nearest: tuple[MemoryEntry, float] | None,
           near_duplicate: float) -> Decision:
    """How `entry` (not stored yet) consolidates with the user's memories."""
    target = same_text
    if entry.slot is not None:
        agreeing = [m for m in same_slot if _claim(m) == _claim(entry)]
        if target is None and agreeing:
            active = [m for m in agreeing if m.status is Status.ACTIVE]
            target = (active or agreeing)[-1]
        keep = target.id if target else None
        return Decision(target, tuple(m for m in same_slot if m.status is Status.ACTIVE
                                      and m.id != keep and _claim(m) != _claim(entry)))
    if target is None and nearest is not None:
        found, similarity = nearest
        if similarity >= near_duplicate and found.memory_type is entry.memory_type and \
                found.slot is None:
            target = found
    return Decision(target)


def _claim(entry: MemoryEntry) -> tuple[str, bool] | None:
    claim = entry.metadata.get("claim")
    if not isinstance(claim, dict):
        return None
    return str(claim.get("value", "")).casefold(), bool(claim.get("negated", False))


def claim_item(found: Extracted, *, turn: MemoryEntry, at: datetime) -> dict[str, Any]:
    """`add()` fields for a memory extracted from `turn` (or from a text added with infer)."""
    return {
        "text": found.content, "user_id": turn.user_id, "agent_id": turn.agent_id,
        "session_id": turn.session_id, "at": found.occurred_at or at,
        "memory_type": found.memory_type, "truth_category": found.truth_category,
        "confidence": found.confidence, "entities": list(found.entities),
        "source": {"kind": "extraction", "ref": turn.id},
        "metadata": {"claim": {"attribute": found.attribute, "value": found.value,
                               "negated": found.negated, "span": found.span}},
        "privacy": turn.privacy, "sensitive": turn.sensitive,
    }


def with_slot(entry: MemoryEntry, found: Extracted, turn_id: str) -> MemoryEntry:
    """The prepared entry with its slot and its link to the turn it came from."""
    slot = "/".join(found.slot) if found.slot else None
    return replace(entry, slot=slot, links=entry.links.add(LinkKind.DERIVED_FROM, turn_id))


def corroborated(confidence: float) -> float:
    return round(confidence + (1.0 - confidence) * CORROBORATION_GAIN, 4)


def contradicted(confidence: float) -> float:
    return round(confidence * CONTRADICTION_FACTOR, 4)


def after_feedback(confidence: float, weight: float, rating: str) -> tuple[float, float]:
    """(confidence, training weight) after a rating; confidence stays within [0, 1]."""
    factor = FEEDBACK_FACTORS[rating]
    return round(min(1.0, confidence * factor), 4), round(weight * factor, 4)
