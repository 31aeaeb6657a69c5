"""What earlier runs ingested from a collection, read back from the memories themselves (their
`metadata["ingest"]`), so the log stays the only truth: a rebuilt or synced store knows what
it holds without a side table. Comparing a run's DataPoints with it is pure.

Reading it back costs a parse of every ingested memory (seconds for tens of thousands), so
the last run leaves a copy in the store's meta table with the log's heads at that moment;
while no event was written since, the copy is exact and is used instead. Beside it go the
stamps of the files that run read, so unchanged files are not read again."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engram.ingest.datapoint import DataPoint
from engram.model import MemoryEntry
from engram.query import Filters
from engram.store.base import Store
from engram.store.settings import Scope, Setting

KEY = "ingest"  # the metadata key of an ingested memory's bookkeeping
CACHE = Setting("ingest.cache", Scope.DEVICE,
                "per user, kind and collection: what the last complete ingest held, with the "
                "log's heads then, and the stamps of the files it read (a cache)")


def marker(kind: str) -> str:
    """The tag every memory ingested from `kind` carries (`engram list --tag ingest:notes`)."""
    return f"ingest:{kind}"


@dataclass(frozen=True, slots=True)
class Known:
    """An item an earlier run wrote: its memory, what it held, and whom it links to."""

    memory_id: str
    digest: str
    related: tuple[str, ...] = ()
    document: str | None = None
    first: bool = False  # the first item of its document (what a wiki link points at)


def bookkeeping(point: DataPoint, collection: str) -> dict[str, Any]:
    """What an ingested memory records of where it came from, in `metadata["ingest"]`."""
    out: dict[str, Any] = {"collection": collection, "id": point.external_id,
                           "digest": point.digest}
    if point.document is not None:
        out["document"] = point.document
    return out


def known_of(entry: MemoryEntry, collection: str) -> tuple[str, Known] | None:
    """(external id, Known) of a memory ingested from `collection`; None for any other."""
    book = entry.metadata.get(KEY)
    if not isinstance(book, Mapping) or book.get("collection") != collection:
        return None
    document = book.get("document")
    return str(book["id"]), Known(entry.id, str(book.get("digest", "")), entry.links.related,
                                  str(document) if document is not None else None,
                                  entry.metadata.get("first") is True)


def load(store: Store, user_id: str, kind: str, collection: str) -> dict[str, Known]:
    """Every item of `collection` the user's memories hold, by external id (any status)."""
    entries = store.select(Filters(user_id=user_id, tags=(marker(kind),), statuses=None))
    return dict(found for e in entries if (found := known_of(e, collection)) is not None)


def documents(known: Mapping[str, Known]) -> dict[str, list[str]]:
    """External ids by the document they came from."""
    out: dict[str, list[str]] = {}
    for external, k in known.items():
        if k.document is not None:
            out.setdefault(k.document, []).append(external)
    return out


def recall(store: Store, user_id: str, kind: str,
           collection: str) -> tuple[dict[str, Known], dict[str, str]]:
    """What the user holds of the collection (the last run's copy while the log has not
    moved since, else read from the memories), and the stamps of the files it read."""
    raw = store.get_setting(CACHE, _qualifier(user_id, kind, collection))
    cached = json.loads(raw) if raw else {}
    stamps = dict(cached.get("stamps", {}))
    if cached.get("heads") == _heads(store):
        return {external: Known(memory_id, digest, tuple(related), document, first)
                for external, (memory_id, digest, related, document, first)
                in cached["known"].items()}, stamps
    return load(store, user_id, kind, collection), stamps


def remember(store: Store, user_id: str, kind: str, collection: str,
             known: Mapping[str, Known], stamps: Mapping[str, str]) -> None:
    """Keep a copy of `known` (as the store holds it now) and the stamps for the next run."""
    copy = {external: [k.memory_id, k.digest, list(k.related), k.document, k.first]
            for external, k in known.items()}
    store.set_setting(CACHE, json.dumps({"heads": _heads(store), "known": copy,
                                         "stamps": stamps}, sort_keys=True),
                      _qualifier(user_id, kind, collection))


def _heads(store: Store) -> dict[str, str]:
    return {device: head.hash for device, head in store.heads().items()}


def _qualifier(user_id: str, kind: str, collection: str) -> str:
    return json.dumps([user_id, kind, collection])


@dataclass(slots=True)
class Plan:
    """A batch sorted by what it asks for: new items, changed ones (with what they replace),
    and how many are as they were."""

    new: list[DataPoint] = field(default_factory=list)
    changed: list[tuple[DataPoint, Known]] = field(default_factory=list)
    unchanged: int = 0


def plan(points: list[DataPoint], known: Mapping[str, Known]) -> Plan:
    """Which of `points` to add, which to update, which are already held as they are."""
    out = Plan()
    for point in points:
        before = known.get(point.external_id)
        if before is None:
            out.new.append(point)
        elif before.digest != point.digest:
            out.changed.append((point, before))
        else:
            out.unchanged += 1
    return out
