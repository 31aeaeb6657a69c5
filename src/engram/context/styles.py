"""Context assembly: recalled memories rendered for a model, within a token budget. Pure."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from xml.sax.saxutils import escape

from engram.errors import InvalidInput
from engram.model import Kind, MemoryEntry
from engram.recall import Hit

STYLES = ("claude", "markdown", "json")

# Sections in the order a model should read them, named as the PMS/PLM seed names them.
_SECTIONS: tuple[tuple[str, tuple[Kind, ...]], ...] = (
    ("preferences", (Kind.PREFERENCE,)),
    ("facts", (Kind.FACT, Kind.BELIEF, Kind.SKILL)),
    ("context", (Kind.CONTEXT,)),
    ("events", (Kind.EVENT,)),
)


def estimate_tokens(text: str) -> int:
    """About four characters a token for English; a real tokenizer can be passed instead."""
    return max(1, (len(text) + 3) // 4)


def line_for(memory: MemoryEntry) -> str:
    day = memory.occurred_at.strftime("%Y-%m-%d")
    return f"[{day}] {memory.content}"


def select_within_budget(hits: Sequence[Hit], budget_tokens: int,
                         count: Callable[[str], int] = estimate_tokens) -> list[MemoryEntry]:
    """The best hits, in rank order, whose lines fit in `budget_tokens` together."""
    if budget_tokens <= 0:
        raise InvalidInput("budget_tokens", f"{budget_tokens} is not positive",
                           "give a token budget of at least 1")
    chosen, used = [], 0
    for hit in hits:
        cost = count(line_for(hit.memory)) + 2
        if used + cost > budget_tokens:
            continue
        chosen.append(hit.memory)
        used += cost
    return chosen


def render(memories: Sequence[MemoryEntry], style: str) -> str:
    """Memories grouped by kind, in the format `style` names."""
    groups = [(name, [m for m in memories if m.memory_type in kinds]) for name, kinds in _SECTIONS]
    groups = [(name, items) for name, items in groups if items]
    if style == "claude":
        parts = ["<user_profile>"]
        for name, items in groups:
            parts.append(f"<{name}>")
            parts += [f'<memory id="{m.id}">{escape(line_for(m))}</memory>' for m in items]
            parts.append(f"</{name}>")
        parts.append("</user_profile>")
        return "\n".join(parts)
    if style == "markdown":
        lines = ["## What you remember about the user"]
        for name, items in groups:
            lines += ["", f"### {name.capitalize()}"] + [f"- {line_for(m)}" for m in items]
        return "\n".join(lines)
    if style == "json":
        return json.dumps({name: [{"id": m.id, "text": m.content,
                                   "when": m.occurred_at.isoformat()} for m in items]
                           for name, items in groups}, ensure_ascii=False, indent=2)
    raise InvalidInput("style", f"unknown style {style!r}", f"use one of: {', '.join(STYLES)}")
