"""Bundles: the events a peer lacks, in one file that travels by git, a USB stick or a shared
folder. gzip (mtime 0, so the same events give the same bytes) of JSON lines: a header, then
the events in (device_id, seq) order as canonical JSON. Pure: bytes in, bytes out."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engram.errors import InvalidInput
from engram.log.events import SCHEMA_VERSION, Event, canonical_json
from engram.log.export import read_events

FORMAT = "engram-sync-bundle"
VERSION = 1  # of the bundle format: the header's fields and the file's layout
_REEXPORT = "export the bundle again on the sending device (`engram sync export`)"


@dataclass(frozen=True, slots=True)
class Header:
    """What a bundle says about itself. `vector` is the sender's whole vector when it wrote the
    bundle (so the receiver learns what the sender holds), `since` the vector the bundle starts
    from (it carries every event past it), `user` the user filter (None: every user's events
    in full; with a user, other users' events travel redacted)."""

    device_id: str
    vector: Mapping[str, int]
    since: Mapping[str, int]
    count: int
    user: str | None = None
    format: str = FORMAT
    version: int = VERSION
    schema: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "version": self.version, "schema": self.schema,
                "device_id": self.device_id, "vector": dict(self.vector),
                "since": dict(self.since), "user": self.user, "count": self.count}


def encode(header: Header, events: Iterable[Event]) -> bytes:
    """The bundle's bytes: header line, one event a line, gzip without a timestamp."""
    lines = [canonical_json(header.to_dict())]
    lines += (canonical_json(event.to_dict()) for event in events)
    return gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=9, mtime=0)


def decode(data: bytes) -> tuple[Header, list[Event]]:
    """The header and events of a bundle; a damaged, truncated or too new bundle is refused
    with the field at fault and the fix (before anything is applied)."""
    try:
        text = gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        raise InvalidInput("bundle", "is truncated or not a gzip file", _REEXPORT) from None
    first, _, rest = text.partition(b"\n")
    header = _header(first)
    if not text.endswith(b"\n"):
        raise InvalidInput("bundle", "ends in the middle of a line (truncated)", _REEXPORT)
    try:
        events = read_events(rest)
    except InvalidInput as exc:
        raise InvalidInput(f"bundle {exc.field} after the header", exc.problem,
                           _REEXPORT) from None
    if len(events) != header.count:
        raise InvalidInput("bundle", f"holds {len(events)} events where its header says "
                           f"{header.count} (truncated or edited)", _REEXPORT)
    return header, events


def _header(line: bytes) -> Header:
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        obj = None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise InvalidInput("bundle header", f"is not an {FORMAT} header",
                           "pass a file written by `engram sync export` (a JSONL export "
                           "goes to `engram import`)")
    version, schema = obj.get("version"), obj.get("schema")
    if not isinstance(version, int) or version > VERSION:
        raise InvalidInput("bundle version", f"is {version!r}, and this Engram reads bundle "
                           f"versions up to {VERSION}", "upgrade engram-memory to read it")
    if not isinstance(schema, int) or schema > SCHEMA_VERSION:
        raise InvalidInput("bundle schema", f"events are in schema {schema!r}, and this "
                           f"Engram reads schemas up to {SCHEMA_VERSION}",
                           "upgrade engram-memory to read it")
    try:
        return Header(device_id=str(obj["device_id"]), vector=_vector(obj["vector"]),
                      since=_vector(obj["since"]), count=int(obj["count"]),
                      user=None if obj.get("user") is None else str(obj["user"]),
                      version=version, schema=schema)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput("bundle header", f"is malformed ({exc!r})", _REEXPORT) from None


def _vector(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise TypeError("a vector is an object of device id -> seq")
    return {str(device): int(seq) for device, seq in value.items()}
