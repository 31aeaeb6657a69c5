"""Sync: replication of the event log between stores, offline-first and peer to peer."""

from __future__ import annotations

from typing import Protocol

from engram.clock import Clock
from engram.store.base import Store


class Host(Protocol):
    """What a mixin of `Memory` (and an exchange) may use of it: its store, its clock, and
    writing out batched access statistics. Kept here so no wing imports `engram.memory`."""

    @property
    def store(self) -> Store: ...

    @property
    def clock(self) -> Clock: ...

    def flush(self) -> None: ...
