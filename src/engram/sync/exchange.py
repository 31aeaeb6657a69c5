"""Exchanging bundles: write the events a peer lacks, apply a peer's bundle, and remember what
each side holds. The thin I/O around `bundle` (bytes), `scope` (per-user redaction), `peers`
(what we know) and `vector` (what is lacking); transports other than files go beside this
module and reuse `outgoing` and `apply`."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from engram.errors import InvalidInput, StoreError
from engram.log.events import Event
from engram.model import check_id
from engram.store.base import Store
from engram.sync import bundle, peers, scope
from engram.sync import vector as vectors
from engram.sync.bundle import Header


@dataclass(frozen=True, slots=True)
class ExportReport:
    path: str
    events: int
    bytes: int
    peer: str | None
    user: str | None
    devices: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "events": self.events, "bytes": self.bytes,
                "peer": self.peer, "user": self.user, "devices": list(self.devices)}


@dataclass(frozen=True, slots=True)
class ImportReport:
    new: int
    skipped: int
    devices: tuple[str, ...]
    peer: str | None  # the peer the bundle came from, whose vector we now know
    user: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"new": self.new, "skipped": self.skipped, "devices": list(self.devices),
                "peer": self.peer, "user": self.user}


def outgoing(store: Store, since: Mapping[str, int],
             user: str | None = None) -> tuple[Header, list[Event]]:
    """The events past `since` (what a peer holding `since` lacks), redacted outside `user`'s
    memories when a user is given, and the header that describes them."""
    mine = vectors.of_heads(store.heads())
    start = {device: min(since.get(device, 0), seq) for device, seq in mine.items()}
    events: Iterator[Event] = (e for e in store.events_after(start)
                               if e.seq <= mine.get(e.device_id, 0))  # a write since heads()
    if user is not None:
        events = scope.scoped(events, scope.owned(store, user))
    batch = list(events)
    return Header(device_id=store.device_id, vector=mine, since=start, count=len(batch),
                  user=user), batch


def export(store: Store, path: Path, now: datetime, *, peer: str | None = None,
           user: str | None = None) -> ExportReport:
    """Write a bundle of what `peer` lacks by what we know (everything for no peer or one we
    know nothing of) to `path`, atomically. A named peer we did not know is remembered."""
    if user is not None:
        user = check_id(user, "user", required=True)
    known = None
    if peer is not None:
        known = peers.get(store, peer) or peers.Peer(name=peer)
        peers.save(store, replace(known, last_sent=now))
    header, events = outgoing(store, known.vector if known else {}, user)
    data = bundle.encode(header, events)
    _write_atomically(path, data)
    return ExportReport(str(path), len(events), len(data), peer, user,
                        tuple(sorted({e.device_id for e in events})))


def load(path: Path) -> tuple[Header, list[Event]]:
    """Read and check a bundle file (nothing is applied)."""
    if not path.is_file():
        raise InvalidInput("FILE", f"{path} does not exist",
                           "give the path of a bundle written by `engram sync export`")
    return bundle.decode(path.read_bytes())


def apply(store: Store, header: Header, events: list[Event], now: datetime, *,
          peer: str | None = None) -> ImportReport:
    """Admit a bundle's events in one transaction (all or none; known ones skipped), then
    remember that its sender holds the header's vector."""
    _refuse_gaps(store, header, events)
    try:
        added = store.import_events(events)
    except StoreError as exc:
        raise StoreError(f"bundle from device {header.device_id} refused, nothing applied "
                         f"(lines counted after the header): {exc}") from None
    learned = None
    if header.device_id != store.device_id:
        sender = (peers.get(store, peer) or peers.Peer(name=peer)) if peer else \
            peers.of_device(store, header.device_id)
        peers.save(store, sender.learned(header.vector, now, header.device_id))
        learned = sender.name
    return ImportReport(added, len(events) - added, tuple(sorted({e.device_id for e in events})),
                        learned, header.user)


def _refuse_gaps(store: Store, header: Header, events: list[Event]) -> None:
    """A bundle that starts past what this store holds of a device cannot be admitted; say
    which bundle to bring instead of naming the first event that does not link."""
    holds = vectors.of_heads(store.heads())
    first: dict[str, int] = {}
    for event in events:
        first[event.device_id] = min(first.get(event.device_id, event.seq), event.seq)
    for device, seq in sorted(first.items()):
        if seq > holds.get(device, 0) + 1:
            raise StoreError(
                f"bundle: starts at event {seq} of device {device}, and this store holds that "
                f"device's events up to {holds.get(device, 0)}; import the earlier bundles "
                f"from {header.device_id} first, or ask it for everything "
                "(`engram sync export OUT` without --peer); nothing was applied")


def _write_atomically(path: Path, data: bytes) -> None:
    """Write next to the target, then rename: a reader never sees half a bundle."""
    if path.is_dir():
        raise InvalidInput("OUT", f"{path} is a directory", "name the bundle file to write")
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, path)
