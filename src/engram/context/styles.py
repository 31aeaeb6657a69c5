"""How an assembled context reads in each model's format. Pure: strings in, strings out.

Chat styles (`claude`, `openai`, `openai-json`, `ollama`) give a system text (instructions, the
memory block, the summary of older turns) plus the recent turns as chat messages. Document
styles (`markdown`, `json`) give one text that holds the recent turns too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from textwrap import indent
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from engram.context.tokens import TokenCounter
from engram.errors import InvalidInput
from engram.model import Kind, MemoryEntry

STYLES = ("claude", "openai", "openai-json", "ollama", "markdown", "json")
CHAT_STYLES = frozenset({"claude", "openai", "openai-json", "ollama"})
# What a chat API adds around each message (OpenAI documents 3-4 tokens: role and delimiters).
MESSAGE_OVERHEAD = 4

Turn = Mapping[str, str]
Sections = tuple[tuple[str, tuple[MemoryEntry, ...]], ...]

# Sections in the order a model should read them, named as the PMS/PLM seed names them.
SECTIONS: tuple[tuple[str, tuple[Kind, ...]], ...] = (
    ("preferences", (Kind.PREFERENCE,)),
    ("facts", (Kind.FACT, Kind.BELIEF, Kind.SKILL)),
    ("concepts", (Kind.CONCEPT,)),
    ("context", (Kind.CONTEXT,)),
    ("events", (Kind.EVENT,)),
)
SECTION_OF = {kind: name for name, kinds in SECTIONS for kind in kinds}


def check_style(style: str) -> str:
    if style not in STYLES:
        raise InvalidInput("style", f"unknown style {style!r}", f"use one of: {', '.join(STYLES)}")
    return style


def group(memories: Sequence[MemoryEntry]) -> Sections:
    """Memories by section, rank order kept inside each; empty sections left out."""
    groups = [(name, tuple(m for m in memories if m.memory_type in kinds))
              for name, kinds in SECTIONS]
    return tuple((name, items) for name, items in groups if items)


def one_line(text: str) -> str:
    """Whitespace collapsed, so stored text cannot start a heading or a fake turn of its own."""
    return " ".join(text.split())


def line_for(memory: MemoryEntry) -> str:
    day = memory.occurred_at.strftime("%Y-%m-%d")
    return f"[{day}] {one_line(memory.content)}"


def memory_json(memory: MemoryEntry) -> dict[str, str]:
    return {"id": memory.id, "text": memory.content, "when": memory.occurred_at.isoformat()}


def memory_item(style: str, memory: MemoryEntry) -> str:
    """The exact text one memory takes in `style` (budgets are counted on it)."""
    if style == "claude":
        return f"<memory id={quoteattr(memory.id)}>{escape(line_for(memory))}</memory>"
    if style == "openai-json":
        return json.dumps(memory_json(memory), ensure_ascii=False, separators=(",", ":"))
    if style == "json":  # as indented inside the document
        return indent(json.dumps(memory_json(memory), ensure_ascii=False, indent=2), " " * 6)
    return f"- {line_for(memory)}"


def section_header(style: str, name: str) -> str:
    if style == "claude":
        return f"<{name}></{name}>"
    if style in ("openai-json", "json"):
        return f'"{name}": [],'
    if style == "ollama":
        return f"{name.capitalize()}:"
    return f"### {name.capitalize()}"


def turn_item(style: str, turn: Turn) -> str:
    """The exact text one conversation turn takes in `style`."""
    if style == "markdown":
        return f"**{turn['role'].capitalize()}:** {turn['content']}"
    if style == "json":  # as indented inside the document
        return indent(json.dumps({"role": turn["role"], "content": turn["content"]},
                                 ensure_ascii=False, indent=2), " " * 4)
    return turn["content"]


def turn_cost(style: str, turn: Turn, count: TokenCounter) -> int:
    return count(turn_item(style, turn)) + (MESSAGE_OVERHEAD if style in CHAT_STYLES else 1)


@dataclass(frozen=True, slots=True)
class Parts:
    """What goes into a prompt, already chosen: rendering decides nothing."""

    sections: Sections = ()
    summary: str = ""
    window: tuple[Turn, ...] = ()
    instructions: str = ""


@dataclass(frozen=True, slots=True)
class Prompt:
    """A context as one model format writes it.

    `system`: the system text (chat styles) or the whole document (markdown, json).
    `messages`: the recent turns as chat messages (chat styles; empty for documents)."""

    style: str
    system: str
    messages: tuple[dict[str, str], ...] = ()

    def chat(self) -> list[dict[str, str]]:
        """Messages for an OpenAI-style chat API (and Ollama's /api/chat): system first."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + [dict(m) for m in self.messages]

    def payload(self) -> str | list[dict[str, str]] | dict[str, Any]:
        """What the style's API takes: Anthropic `{system, messages}`, OpenAI a message list,
        Ollama `{system, messages}` (messages for /api/chat, system for /api/generate), and
        the document itself for markdown and json."""
        if self.style == "claude":
            return {"system": self.system, "messages": [dict(m) for m in self.messages]}
        if self.style in ("openai", "openai-json"):
            return self.chat()
        if self.style == "ollama":
            return {"system": self.system, "messages": self.chat()}
        return self.system

    def tokens(self, count: TokenCounter) -> int:
        """What this prompt costs: its texts counted, plus each chat message's overhead."""
        if self.style not in CHAT_STYLES:
            return count(self.system) if self.system else 0
        return sum(count(m["content"]) + MESSAGE_OVERHEAD for m in self.chat())


def render_parts(parts: Parts, style: str) -> Prompt:
    """`parts` in the format `style` names."""
    check_style(style)
    messages = tuple({"role": t["role"], "content": t["content"]} for t in parts.window)
    if style == "json":
        return Prompt(style, _json_document(parts))
    if style == "markdown":
        return Prompt(style, _markdown_document(parts))
    blocks = [parts.instructions.strip(), _memory_block(parts.sections, style),
              _summary_block(parts.summary, style)]
    return Prompt(style, "\n\n".join(b for b in blocks if b), messages)


def render(memories: Sequence[MemoryEntry], style: str) -> str:
    """Memories grouped by kind, in the format `style` names: the memory block alone."""
    check_style(style)
    if style == "json":  # the document shape it has always had
        return json.dumps({name: [memory_json(m) for m in items]
                           for name, items in group(memories)}, ensure_ascii=False, indent=2)
    return _memory_block(group(memories), style, always=True)


def _memory_block(sections: Sections, style: str, always: bool = False) -> str:
    if not sections and not always:
        return ""
    if style == "claude":
        parts = ["<user_profile>"]
        for name, items in sections:
            parts += [f"<{name}>", *(memory_item(style, m) for m in items), f"</{name}>"]
        return "\n".join([*parts, "</user_profile>"])
    if style == "openai-json":
        block = {name: [memory_json(m) for m in items] for name, items in sections}
        return "What you remember about the user (JSON):\n" + json.dumps(
            block, ensure_ascii=False, separators=(",", ":"))
    if style == "ollama":
        lines = ["What you know about the user:"]
        for name, items in sections:
            lines += [section_header(style, name), *(memory_item(style, m) for m in items)]
        return "\n".join(lines)
    lines = ["## What you remember about the user"]  # markdown, openai
    for name, items in sections:
        lines += ["", section_header(style, name), *(memory_item(style, m) for m in items)]
    return "\n".join(lines)


def _summary_block(summary: str, style: str) -> str:
    if not summary:
        return ""
    if style == "claude":
        return f"<conversation_summary>\n{escape(summary)}\n</conversation_summary>"
    if style == "openai-json":
        return "Earlier in this conversation (JSON): " + json.dumps(
            {"summary": summary}, ensure_ascii=False)
    if style == "ollama":
        return f"Earlier in this conversation:\n{summary}"
    return f"## Earlier in this conversation\n{summary}"


def _markdown_document(parts: Parts) -> str:
    blocks = [parts.instructions.strip(), _memory_block(parts.sections, "markdown"),
              _summary_block(parts.summary, "markdown")]
    if parts.window:
        blocks.append("\n\n".join(["## Recent conversation",
                                   *(turn_item("markdown", t) for t in parts.window)]))
    return "\n\n".join(b for b in blocks if b)


def _json_document(parts: Parts) -> str:
    if not (parts.instructions or parts.sections or parts.summary or parts.window):
        return ""
    doc: dict[str, Any] = {}
    if parts.instructions:
        doc["instructions"] = parts.instructions.strip()
    doc["memories"] = {name: [memory_json(m) for m in items] for name, items in parts.sections}
    doc["summary"] = parts.summary
    doc["conversation"] = [{"role": t["role"], "content": t["content"]} for t in parts.window]
    return json.dumps(doc, ensure_ascii=False, indent=2)
