"""Copying a store to another backend (a directory or a `postgresql://` URL) by replaying its
event log, then proving the copy identical: both stores' projection checksums must match."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engram.clock import SystemClock
from engram.errors import InvalidInput, StoreError
from engram.log.events import canonical_json
from engram.query import Filters
from engram.recall.hybrid import Hybrid
from engram.store import check_location, is_url, open_store
from engram.store.base import Store
from engram.store.settings import EMBEDDER, TRAVELLING
from engram.store.sqlite.files import DB_FILE

BATCH = 5000  # events per transaction: an interrupted copy resumes after its last batch


@dataclass(frozen=True, slots=True)
class Migration:
    events_copied: int
    events_total: int
    memories: int
    vectors_embedded: int
    checksum: str


def checksum(store: Store) -> str:
    """A digest of the projection (every memory of any status, in id order) and of the log's
    head: equal for two stores exactly when they hold the same memories and the same chain."""
    digest = hashlib.sha256()
    for entry in sorted(store.select(Filters(statuses=None), limit=None), key=lambda e: e.id):
        digest.update(canonical_json(entry.to_dict()).encode())
        digest.update(b"\n")
    count, head = 0, ""
    for event in store.events():
        count, head = count + 1, event.hash
    digest.update(f"events:{count}:{head}".encode())
    return digest.hexdigest()


def copy_store(source: str | Path, target: str | Path, *, vectors: bool = True,
               progress: Callable[[str], None] | None = None) -> Migration:
    """Replay `source`'s events into `target` (empty, or an earlier partial copy), copy the
    embedder settings, embed the copy's memories with that model, and compare checksums."""
    if str(source) == str(target):
        raise InvalidInput("to", "is the source store itself", "name another store")
    check_location(source, "from")
    check_location(target, "to")
    if not is_url(source) and not (Path(source) / DB_FILE).is_file():
        raise InvalidInput("from", f"there is no store at {source}",
                           "name the directory of an existing store (or a postgresql:// URL)")
    say = progress or (lambda _: None)
    src = open_store(source, clock=SystemClock())
    try:
        dst = open_store(target, clock=SystemClock())
        try:
            _refuse_another_log(src, dst)
            copied = total = 0
            batch = []
            for event in src.events():
                batch.append(event)
                if len(batch) == BATCH:
                    copied += dst.import_events(batch)
                    total += len(batch)
                    batch = []
                    say(f"{total} events")
            copied += dst.import_events(batch)
            total += len(batch)
            for setting in TRAVELLING:  # what belongs with the log; never device state
                for qualifier, value in src.settings_of(setting).items():
                    if dst.get_setting(setting, qualifier) is None:
                        dst.set_setting(setting, value, qualifier)
            embedded = 0
            spec = src.get_setting(EMBEDDER)
            if vectors and spec:
                say(f"embedding with {spec}")
                embedded = Hybrid(dst, spec).reembed(spec)
            expected, got = checksum(src), checksum(dst)
            if expected != got:
                raise StoreError(f"migrate: the copy differs from the source (checksum {got[:12]}"
                                  f" != {expected[:12]}); the target was not empty or changed "
                                  "during the copy: copy into an empty store")
            return Migration(copied, total, dst.count(Filters(statuses=None)), embedded, got)
        finally:
            dst.close()
    finally:
        src.close()


def _refuse_another_log(src: Store, dst: Store) -> None:
    """The target must be empty or a partial copy: no device's chain in it may reach past
    the source's (imports merge other devices' logs; a copy must not)."""
    ours = src.heads()
    for device, head in dst.heads().items():
        mine = ours.get(device)
        if mine is None or head.seq > mine.seq:
            raise StoreError(f"migrate: the target's log does not continue the chain of the "
                             f"source (it holds events of device {device} that the source "
                             "lacks); copy into an empty store or a partial copy of this one")
