"""The universal record every adapter produces, and what it reports instead of one."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engram.model import Kind


@dataclass(frozen=True, slots=True)
class DataPoint:
    """One item of a source, ready to become a memory.

    `external_id` is stable across runs (a path and heading, a commit sha, a message id), so
    a re-run recognises what it already holds; `ref` points back at the raw item (file and
    line, sha, message id, URL). `said` is the part its owner wrote, which facts are extracted
    from as from a chat turn (None: nothing to extract). `document` groups the points of one
    file and `links` names the documents it links to (wiki links)."""

    kind: str
    external_id: str
    text: str
    ref: str
    time: datetime | None = None
    author: str | None = None
    said: str | None = None
    session: str | None = None
    memory_type: Kind = Kind.FACT
    tags: tuple[str, ...] = ()
    attachments: tuple[str, ...] = ()
    document: str | None = None
    links: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    stamp: str | None = None  # the document's `files.stamp`: unchanged files skip next time

    @property
    def digest(self) -> str:
        """Changes when what the memory holds changes. The reference and the time are left
        out: a section that only moved down its file, or a file touched without a change
        (its mtime is a note's time), is not rewritten; an edit brings both up to date.
        Links are left out too: every run writes the links it finds missing."""
        body = json.dumps([self.text, self.author, self.session, self.memory_type.value,
                           self.tags, self.attachments, self.metadata],
                          sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(body.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Skipped:
    """An item left out: malformed (`error`: reported with its file and position) or kept
    out on purpose (private, excluded, empty)."""

    file: str
    position: str
    reason: str
    error: bool = True

    def __str__(self) -> str:
        where = f"{self.file}:{self.position}" if self.position else self.file
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Kept:
    """A document whose stamp is the one the last complete run saw: every item it gave then
    is still held as it was, so it is not read again."""

    document: str
    stamp: str


@dataclass(frozen=True, slots=True)
class Options:
    """What the user said about reading (globs to leave out, tags that keep a note out, the
    captioning model for photos: none by default), and the stamps of the documents the last
    complete run read (document -> `files.stamp`)."""

    exclude: tuple[str, ...] = ()
    private_tags: tuple[str, ...] = ("private",)
    caption_model: str | None = None
    stamps: Mapping[str, str] = field(default_factory=dict)


Read = DataPoint | Skipped | Kept
