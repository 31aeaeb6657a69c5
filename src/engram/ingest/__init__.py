"""Ingestion: a person's existing data (notes, git history, chat exports, social archives,
mail, photos) read by one small adapter per source into DataPoints, which one pipeline turns
into memories (docs/ingest.md). Adapters import lazily: `engram ingest --list` costs nothing."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, cast

from engram.errors import InvalidInput
from engram.ingest.datapoint import Options, Read

ADAPTERS = {  # kind -> module under engram.ingest, and what PATH it reads
    "notes": ("notes", "a folder of Markdown or text notes (an Obsidian vault)"),
    "git": ("git", "a git repository's history"),
    "chatgpt": ("chatgpt", "conversations.json of a ChatGPT data export"),
    "claude": ("claude", "conversations.json of a Claude data export"),
    "chat-jsonl": ("chat_jsonl", "a JSONL chat log (role, content, time, session)"),
    "twitter": ("twitter", "an X/Twitter archive folder (data/tweets.js)"),
    "mastodon": ("mastodon", "a Mastodon archive (outbox.json)"),
    "mbox": ("mbox", "a mailbox file (mbox)"),
    "photos": ("photos", "a folder of photos (EXIF time, place, camera)"),
}


class Adapter(Protocol):
    """What each adapter module offers."""

    def collection(self, root: Path) -> str:
        """Names what `root` holds, stable across runs and moves (a vault's name, a
        repository's first commit, an account): the scope in which a missing item counts
        as deleted. Raises InvalidInput when `root` is not this kind of source."""
        ...

    def read(self, root: Path, options: Options) -> Iterator[Read]:
        """The source's items, in a stable order, never reading outside `root`."""
        ...


def adapter(kind: str) -> Adapter:
    """The adapter of `kind`."""
    if kind not in ADAPTERS:
        raise InvalidInput("kind", f"unknown source kind {kind!r}",
                           f"use one of: {', '.join(ADAPTERS)} (engram ingest --list)")
    try:
        return cast(Adapter, importlib.import_module(f"engram.ingest.{ADAPTERS[kind][0]}"))
    except ImportError as exc:
        raise InvalidInput("kind", f"reading {kind} needs {exc.name}, which is not installed",
                           "pip install 'engram-memory[ingest]'") from None
