"""A generic JSONL chat log: one message a line, `{"role", "content", "time", "session"}`
(an `id` is used when present). PATH is a .jsonl file or a folder of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from engram.ingest import files
from engram.ingest.chats import Message, turns
from engram.ingest.datapoint import Options, Read, Skipped

KIND = "chat-jsonl"
_ROLES = frozenset({"user", "assistant", "system", "tool"})


def collection(root: Path) -> str:
    return root.name


def read(root: Path, options: Options) -> Iterator[Read]:
    logs = [(root.name, root)] if root.is_file() else \
        list(files.walk(root, frozenset({".jsonl"}), options))
    for relative, path in logs:
        body = files.text(path, relative)
        if isinstance(body, Skipped):
            yield body
            continue
        sessions: dict[str, list[Message]] = {}
        for number, line in enumerate(body.splitlines(), 1):
            if not line.strip():
                continue
            found = _message(line, relative, number)
            if isinstance(found, Skipped):
                yield found
                continue
            session, message = found
            if message is not None:
                sessions.setdefault(session, []).append(message)
        for session, messages in sessions.items():
            yield from turns(KIND, session, messages, {"log": relative})


def _message(line: str, relative: str, number: int) -> tuple[str, Message | None] | Skipped:
    """(session, message) of one line; None for a system or tool message."""
    where = f"line {number}"
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        return Skipped(relative, where, f"not JSON ({exc.msg} at column {exc.colno})")
    if not isinstance(raw, dict):
        return Skipped(relative, where, "not a JSON object")
    role, content = raw.get("role"), raw.get("content")
    if role not in _ROLES or not isinstance(content, str):
        return Skipped(relative, where, "needs role (user or assistant) and content (text)")
    session = str(raw.get("session") or Path(relative).stem)
    if role in ("system", "tool") or not content.strip():
        return session, None
    try:
        time = datetime.fromisoformat(raw["time"]) if raw.get("time") else None
    except (TypeError, ValueError):
        return Skipped(relative, where, f"time {raw.get('time')!r} is not ISO 8601")
    ident = str(raw.get("id") or f"line{number}")
    return session, Message(ident, role, content.strip(), time, f"{relative}:{number}")
