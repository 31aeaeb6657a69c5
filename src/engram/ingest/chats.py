"""Chat messages (from any export) paired into turns, as `remember_turn` records them: a user
message with the assistant's replies; facts are extracted from what the user said. And the
shape two exports share: a `conversations.json` array read one conversation at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engram.capture.turns import turn_text
from engram.capture.writer import TURN_TAG
from engram.ingest import files, jsonarray
from engram.ingest.datapoint import DataPoint, Options, Read, Skipped
from engram.model import Kind

EXPORT_FILE = "conversations.json"
EXPORT_COLLECTION = "conversations"  # one account's export: a later export replaces it


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    role: str  # "user" or "assistant"
    text: str
    time: datetime | None
    ref: str


@dataclass(frozen=True, slots=True)
class Export:
    """An adapter for a service's `conversations.json` (ChatGPT's, Claude's): how to tell one
    of its conversations, and how to read one into turns."""

    service: str
    is_conversation: Callable[[Any], bool]
    turns_of: Callable[[dict[str, Any]], Iterator[DataPoint]]

    def collection(self, root: Path) -> str:
        export_file(root, self.service)
        return EXPORT_COLLECTION

    def read(self, root: Path, options: Options) -> Iterator[Read]:
        return conversations(root, self.service, self.is_conversation, self.turns_of)


def export_file(root: Path, service: str) -> Path:
    """The export's conversations.json (PATH may be the file or the unzipped folder)."""
    return files.file(root, f"the {EXPORT_FILE} of a {service} export", EXPORT_FILE)


def conversations(root: Path, service: str, is_conversation: Callable[[Any], bool],
                  turns_of: Callable[[dict[str, Any]], Iterator[DataPoint]]
                  ) -> Iterator[Read]:
    """The turns of every conversation in the export; a malformed conversation is reported
    with its position and skipped."""
    path = export_file(root, service)
    body = files.text(path, path.name)
    if isinstance(body, Skipped):
        yield body
        return
    for found in jsonarray.records(body, path.name, is_conversation,
                                   f"a {service} export's conversations"):
        if isinstance(found, Skipped):
            yield found
            continue
        where, conversation = found
        try:
            yield from list(turns_of(conversation))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            yield Skipped(path.name, where, f"unexpected shape ({exc!r})")


def turns(kind: str, session: str, messages: Sequence[Message],
          metadata: dict[str, Any]) -> Iterator[DataPoint]:
    """One DataPoint per user message and the assistant replies that follow it (an opening
    assistant message stands alone)."""
    i = 0
    while i < len(messages):
        first = messages[i]
        replies: list[Message] = []
        i += 1
        if first.role == "user":
            while i < len(messages) and messages[i].role == "assistant":
                replies.append(messages[i])
                i += 1
        reply = "\n\n".join(m.text for m in replies) or None
        if first.role == "user":
            text, said = turn_text(first.text, reply), first.text
            turn = {"user": first.text, **({"assistant": reply} if reply else {})}
        else:
            text, said, turn = f"Assistant: {first.text}", None, {"assistant": first.text}
        yield DataPoint(kind=kind, external_id=f"{session}/{first.id}", text=text,
                        ref=first.ref, time=first.time, author=first.role, said=said,
                        session=session, memory_type=Kind.CONTEXT, tags=(TURN_TAG,),
                        metadata={**metadata, "turn": turn,
                                  "messages": [first.id, *(m.id for m in replies)]})
