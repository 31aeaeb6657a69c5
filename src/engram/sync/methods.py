"""`Memory`'s sync methods (docs/sync.md), kept beside the package they drive.

Each wing of the house that `Memory` exposes adds its methods as a small mixin like this one,
so the facade stays one readable page; `engram.sync.Host` names what they may use of it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from engram.sync import Host, exchange

if TYPE_CHECKING:
    from engram.sync.http import SyncReport


class SyncMethods:
    """`Memory.sync_export`, `sync_import` and `sync_peer`, mirroring `engram sync`."""

    def sync_export(self: Host, path: str | Path, peer: str | None = None,
                    user: str | None = None) -> exchange.ExportReport:
        """Write a bundle of the events `peer` lacks by what this store knows of it (all
        events when no peer is named or nothing is known); `user` limits it to that user's
        memories (other events travel redacted, so the chains stay whole)."""
        self.flush()
        return exchange.export(self.store, Path(path), self.clock.now(), peer=peer, user=user)

    def sync_import(self: Host, path: str | Path, peer: str | None = None,
                    stage: Callable[[str], None] | None = None) -> exchange.ImportReport:
        """Apply a bundle in one transaction (all or nothing; events already held are
        skipped), and learn what its sender holds (`peer` names it; default: by device).
        `stage` hears what is being done (reading, then applying so many events)."""
        say = stage or _quiet
        say(f"reading {Path(path).name}")
        header, events = exchange.load(Path(path))
        say(f"applying {len(events):,} events in one transaction")
        return exchange.apply(self.store, header, events, self.clock.now(), peer=peer)

    def sync_peer(self: Host, url: str, key: str | None = None, *, push: bool = True,
                  pull: bool = True, batch: int = 1000, user: str | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> SyncReport:
        """Exchange events with the `engram serve` at `url` over HTTP (`sync.http.sync_peer`:
        batches, resumable; needs the `server` extra); `user` limits both directions to that
        user's memories (other events travel redacted)."""
        from engram.sync.http import sync_peer
        return sync_peer(self, url, key, push=push, pull=pull, batch=batch, user=user,
                         progress=progress)


def _quiet(stage: str) -> None:
    """A `stage` listener that hears nothing."""
