"""Extraction by an LLM: a JSON-schema prompt that proposes memories from a turn and decides,
against the nearest memories the user already has, whether each is new (ADD), refines one
(UPDATE), replaces one (SUPERSEDE) or adds nothing (NOOP).

Parsing is strict and pure: a proposal that breaks the schema is dropped with the reason
kept in `Proposals.rejected`, never half-applied.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engram.llm.base import Message, Provider
from engram.model import Kind, MemoryEntry, Truth, format_time

ACTIONS = ("ADD", "UPDATE", "SUPERSEDE", "NOOP")
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["memories"],
    "properties": {"memories": {"type": "array", "items": {
        "type": "object",
        "required": ["action", "content"],
        "properties": {
            "action": {"enum": list(ACTIONS)},
            "content": {"type": "string", "description": "one self-contained sentence"},
            "memory_type": {"enum": [k.value for k in Kind]},
            "truth_category": {"enum": [t.value for t in Truth]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "entities": {"type": "array", "items": {"type": "string"}},
            "attribute": {"type": ["string", "null"],
                          "description": "the slot, when it holds one value at a time"},
            "target_id": {"type": ["string", "null"],
                          "description": "the existing memory for UPDATE, SUPERSEDE, NOOP"},
        }}}},
}
INSTRUCTIONS = """You maintain a long-term memory about a user. From the user's message, \
propose the facts, preferences, beliefs, skills, events and context worth remembering, each \
as one self-contained sentence about "User". Compare each with the existing memories listed \
(id: text) and choose an action: ADD (new), UPDATE (refines an existing one: give target_id \
and the merged sentence), SUPERSEDE (replaces an existing one whose value changed: give \
target_id), NOOP (already known: give target_id). Give "attribute" (e.g. residence, employer, \
diet) when the fact holds one value at a time. Answer with JSON only, matching this schema:
"""


@dataclass(frozen=True, slots=True)
class Proposal:
    action: str
    content: str
    memory_type: Kind = Kind.FACT
    truth_category: Truth = Truth.CONTEXTUAL
    confidence: float = 0.8
    entities: tuple[str, ...] = ()
    attribute: str | None = None
    target_id: str | None = None


@dataclass(frozen=True, slots=True)
class Proposals:
    accepted: list[Proposal] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # why each dropped proposal was dropped


def prompt(text: str, at: datetime, existing: Sequence[MemoryEntry]) -> list[Message]:
    known = "\n".join(f"{m.id}: {m.content}" for m in existing) or "(none)"
    return [
        {"role": "system", "content": INSTRUCTIONS + json.dumps(SCHEMA)},
        {"role": "user", "content": f"Existing memories:\n{known}\n\nMessage "
                                    f"({format_time(at)}):\n{text}"},
    ]


def parse(answer: str, existing: Sequence[MemoryEntry]) -> Proposals:
    """The valid proposals of a model's answer (JSON, possibly in a ``` fence)."""
    body = answer.strip().removeprefix("```json").removeprefix("```").removesuffix("```")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        return Proposals(rejected=[f"the answer is not JSON ({exc.msg})"])
    items = data.get("memories") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return Proposals(rejected=["the answer has no 'memories' list"])
    known = {m.id for m in existing}
    out = Proposals()
    for n, item in enumerate(items):
        try:
            out.accepted.append(_proposal(item, known))
        except (KeyError, TypeError, ValueError) as exc:
            out.rejected.append(f"memories[{n}]: {exc}")
    return out


def _proposal(item: dict[str, Any], known: set[str]) -> Proposal:
    action = str(item["action"]).upper()
    if action not in ACTIONS:
        raise ValueError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    content = item["content"]
    if not isinstance(content, str) or not content.strip():
        raise ValueError("content is empty")
    target = item.get("target_id")
    if action != "ADD" and target not in known:
        raise ValueError(f"{action} needs a target_id among the existing memories, "
                         f"got {target!r}")
    confidence = float(item.get("confidence", 0.8))
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence {confidence} is outside 0..1")
    return Proposal(action, content.strip(), Kind(item.get("memory_type", "fact")),
                    Truth(item.get("truth_category", "contextual")), confidence,
                    tuple(str(e) for e in item.get("entities") or ()),
                    item.get("attribute") or None, target if action != "ADD" else None)


class LLMExtractor:
    """Asks `provider` for proposals; `Memory(extractor=LLMExtractor(load_provider(...)))`."""

    def __init__(self, provider: Provider, *, neighbours: int = 8) -> None:
        self.provider, self.neighbours = provider, neighbours

    def propose(self, text: str, at: datetime, existing: Sequence[MemoryEntry]) -> Proposals:
        answer = self.provider.complete(prompt(text, at, existing), temperature=0)
        return parse(answer, existing)
