"""A session's saved state, as one small JSON file: which model computed it (the fingerprint),
the prefix's token ids and their hash, the chunks that hold its keys and values, when it was
last used (for eviction) and what its prefix holds (memories, turns). The file carries its own
checksum, so a changed manifest is refused like a changed chunk.

A chunk's address is a hash of what determines its contents: the fingerprint, the storage type
and every token of the prefix up to the chunk's end. Two sessions that share a prefix therefore
share its chunks, and a chunk is found again from the tokens alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from engram.state.fingerprint import Fingerprint, tokens_hash

VERSION = 1


@dataclass(frozen=True, slots=True)
class Chunk:
    """Positions [start, end) of a prefix, stored in one file."""

    start: int
    end: int
    address: str
    bytes: int


@dataclass(frozen=True, slots=True)
class Manifest:
    session: str
    fingerprint: Fingerprint
    storage: str
    tokens: tuple[int, ...]
    chunks: tuple[Chunk, ...]
    created_at: str
    used_at: str
    parent: str | None = None
    memories: dict[str, list[int]] = field(default_factory=dict)  # memory id → [start, end)
    turns: int = 0
    merged_at: int | None = None  # a merged state: positions from here were not prefilled

    @property
    def prefix(self) -> str:
        return tokens_hash(self.tokens)

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.chunks)

    def used(self, at: str) -> Manifest:
        return replace(self, used_at=at)

    def to_json(self) -> str:
        body = self._body()
        return json.dumps({**body, "checksum": _checksum(body)}, sort_keys=True)

    def _body(self) -> dict[str, Any]:
        return {"version": VERSION, "session": self.session,
                "fingerprint": self.fingerprint.to_dict(), "storage": self.storage,
                "tokens": list(self.tokens), "prefix": self.prefix,
                "chunks": [[c.start, c.end, c.address, c.bytes] for c in self.chunks],
                "created_at": self.created_at, "used_at": self.used_at, "parent": self.parent,
                "memories": self.memories, "turns": self.turns, "merged_at": self.merged_at}

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """The manifest in `text`; ValueError says what is wrong with it."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("is not a JSON object")
        checksum = data.pop("checksum", None)
        if checksum != _checksum(data):
            raise ValueError("does not match its checksum (changed since it was saved)")
        if data.get("version") != VERSION:
            raise ValueError(f"has version {data.get('version')}, this Engram reads {VERSION}")
        tokens = tuple(int(t) for t in data["tokens"])
        if tokens_hash(tokens) != data["prefix"]:
            raise ValueError("holds tokens that do not match its prefix hash")
        return cls(session=str(data["session"]),
                   fingerprint=Fingerprint.from_dict(data["fingerprint"]),
                   storage=str(data["storage"]), tokens=tokens,
                   chunks=tuple(Chunk(int(s), int(e), str(a), int(b))
                                for s, e, a, b in data["chunks"]),
                   created_at=str(data["created_at"]), used_at=str(data["used_at"]),
                   parent=data.get("parent"), memories=dict(data.get("memories") or {}),
                   turns=int(data.get("turns") or 0), merged_at=data.get("merged_at"))


def address(fingerprint: Fingerprint, storage: str, prefix: Sequence[int],
            merged_at: int | None = None) -> str:
    """The address of the chunk that ends where `prefix` ends. A chunk of a merged state
    past its merge point is not what prefilling its tokens gives, so it has addresses of
    its own: a lookup by tokens never finds it."""
    exact = merged_at is None or len(prefix) <= merged_at
    kind = storage if exact else f"{storage}~merged@{merged_at}"
    text = f"{fingerprint.key()}|{kind}|{len(prefix)}|{tokens_hash(prefix)}"
    return hashlib.sha256(text.encode()).hexdigest()


def spans(length: int, chunk_tokens: int) -> list[tuple[int, int]]:
    """[start, end) of the chunks of a prefix: aligned to `chunk_tokens`, so prefixes that
    share their beginning share chunks, and a last partial chunk."""
    return [(start, min(start + chunk_tokens, length)) for start in range(0, length, chunk_tokens)]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens `a` and `b` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
