"""ChatGPT: `conversations.json` of a data export. Each conversation's `mapping` is a tree of
messages; the branch that was kept ends at `current_node`. System, tool and hidden messages
are skipped; each user message with its reply becomes a turn."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from engram.ingest import chats
from engram.ingest.datapoint import DataPoint

KIND = "chatgpt"


def _is_conversation(value: Any) -> bool:
    return isinstance(value, dict) and "mapping" in value


def conversation_turns(conversation: dict[str, Any]) -> Iterator[DataPoint]:
    mapping: dict[str, Any] = conversation["mapping"]
    session = str(conversation.get("conversation_id") or conversation["id"])
    node = conversation.get("current_node") or _last_leaf(mapping)
    branch = []
    while node is not None and node in mapping:
        branch.append(mapping[node])
        node = mapping[node].get("parent")
    messages = [m for m in (_message(n, session) for n in reversed(branch)) if m is not None]
    title = conversation.get("title") or "untitled"
    return chats.turns(KIND, session, messages, {"conversation": title})


def _message(node: dict[str, Any], session: str) -> chats.Message | None:
    message = node.get("message")
    if not message:
        return None
    role = message["author"]["role"]
    content = message.get("content") or {}
    hidden = (message.get("metadata") or {}).get("is_visually_hidden_from_conversation")
    if role not in ("user", "assistant") or hidden:
        return None
    if content.get("content_type", "text") not in ("text", "multimodal_text"):
        return None
    text = "\n".join(p for p in content.get("parts") or () if isinstance(p, str)).strip()
    if not text:
        return None
    stamp = message.get("create_time")
    time = datetime.fromtimestamp(float(stamp), tz=UTC) if stamp else None
    return chats.Message(str(message.get("id") or node["id"]), role, text, time,
                         f"{chats.EXPORT_FILE}#{session}/{node['id']}")


def _last_leaf(mapping: dict[str, Any]) -> str | None:
    leaves = [key for key, node in mapping.items() if not node.get("children")]
    return leaves[-1] if leaves else None


EXPORT = chats.Export("ChatGPT", _is_conversation, conversation_turns)
collection, read = EXPORT.collection, EXPORT.read
