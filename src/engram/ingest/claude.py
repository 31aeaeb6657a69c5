"""Claude: `conversations.json` of a data export: conversations with `chat_messages`, each
with a `sender` (human or assistant). Each human message with its reply becomes a turn."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from engram.ingest import chats
from engram.ingest.datapoint import DataPoint

KIND = "claude"
_ROLES = {"human": "user", "assistant": "assistant"}


def _is_conversation(value: Any) -> bool:
    return isinstance(value, dict) and "chat_messages" in value


def conversation_turns(conversation: dict[str, Any]) -> Iterator[DataPoint]:
    session = str(conversation["uuid"])
    messages = [m for m in (_message(raw, session) for raw in conversation["chat_messages"])
                if m is not None]
    title = conversation.get("name") or "untitled"
    return chats.turns(KIND, session, messages, {"conversation": title})


def _message(raw: dict[str, Any], session: str) -> chats.Message | None:
    role = _ROLES.get(raw["sender"])
    parts = [c.get("text", "") for c in raw.get("content") or () if c.get("type") == "text"]
    text = ("\n".join(p for p in parts if p) or raw.get("text") or "").strip()
    if role is None or not text:
        return None
    stamp = raw.get("created_at")
    time = datetime.fromisoformat(stamp) if stamp else None
    return chats.Message(str(raw["uuid"]), role, text, time,
                         f"{chats.EXPORT_FILE}#{session}/{raw['uuid']}")


EXPORT = chats.Export("Claude", _is_conversation, conversation_turns)
collection, read = EXPORT.collection, EXPORT.read
