"""Recall statistics: counted in memory, written as one `memory.accessed` event per batch
(not one per search). What is still pending when the process dies is lost, by design: the
count is a ranking signal, not a record anyone acknowledged."""

from __future__ import annotations

import threading
import time
from typing import Any

from engram.clock import Clock
from engram.log.events import Draft, EventType
from engram.model import format_time
from engram.store.base import Store


class AccessLog:
    def __init__(self, store: Store, clock: Clock, *, batch: int, flush_s: float) -> None:
        self.store, self.clock = store, clock
        self.batch, self.flush_s = batch, flush_s
        self._pending: dict[str, list[Any]] = {}  # memory id -> [count, last access]
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def note(self, ids: list[str]) -> None:
        """Count one recall of each memory; write the batch when it is full or old."""
        if not ids:
            return
        stamp = format_time(self.clock.now())
        with self._lock:
            if not self._pending:
                self._since = time.monotonic()
            for memory_id in ids:
                count, _ = self._pending.get(memory_id, (0, stamp))
                self._pending[memory_id] = [count + 1, stamp]
            due = len(self._pending) >= self.batch or \
                time.monotonic() - self._since >= self.flush_s
        if due:
            self.flush()

    def drop(self, memory_id: str) -> None:
        """A forgotten memory's pending count must not outlive it."""
        with self._lock:
            self._pending.pop(memory_id, None)

    def flush(self) -> None:
        """Write pending statistics now (done on close and every batch)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        with self.store.transaction() as tx:  # a memory forgotten since is skipped by apply
            tx.append(Draft(EventType.ACCESSED, None, {"accesses": pending}, "engram"))
