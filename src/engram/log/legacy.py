"""Migrating a log written before schema 2: one hash chain per store becomes one per device.

Until schema 2 every event linked to the store's previous event, whatever its device. In a
store whose events all come from one device that already is a per-device chain and nothing
changes. Where several devices' events share the one chain (a store that imported another's
export), the migration first verifies the legacy chain as it was written, end to end, and
then re-seals, in place, the events whose prev_hash is not their device's previous event:
prev_hash becomes that event's (new) hash, schema becomes 2, and the hash is recomputed. The
payload and its hash are untouched (redacted payloads stay redacted). Re-sealing is a pure
function of a device's events, so every store holding the same legacy events re-seals them
to the same hashes. A legacy chain that does not verify is left as it is, for `verify` to
report. Pure: the store feeds the events in position order and writes what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from engram.log.chain import Head, MergeKey, merge_key
from engram.log.events import GENESIS_HASH, Event, chain_problem, event_hash

PER_DEVICE_SCHEMA = 2  # the first schema whose prev_hash links within a device


@dataclass(slots=True)
class LegacyWalk:
    """Feed the legacy log in position order; then `resealed` holds the events to rewrite."""

    events: int = 0
    head: str = GENESIS_HASH  # the legacy chain's last hash, as written
    problem: str | None = None
    out_of_order: bool = False  # position order differs from merge order: rebuild
    _resealed: list[Event] = field(default_factory=list)
    _heads: dict[str, Head] = field(default_factory=dict)
    _last: MergeKey | None = None

    def feed(self, pos: int, event: Event) -> None:
        if self.problem is not None:
            return
        problem = chain_problem(event, self.head)
        if problem:
            self.problem = f"event #{pos} ({event.id}): {problem}"
            return
        self.events, self.head = self.events + 1, event.hash
        key = merge_key(event)
        if self._last is not None and key <= self._last:
            self.out_of_order = True
        self._last = key if self._last is None else max(key, self._last)
        before = self._heads.get(event.device_id)
        wanted = before.hash if before else GENESIS_HASH
        if event.prev_hash != wanted:
            event = reseal(event, wanted)
            self._resealed.append(event)
        self._heads[event.device_id] = Head.of(event)

    @property
    def resealed(self) -> list[Event]:
        """Events to rewrite (none when the legacy chain did not verify)."""
        return [] if self.problem is not None else list(self._resealed)


def reseal(event: Event, prev_hash: str) -> Event:
    """`event` linked to `prev_hash` under schema 2: same id, payload and payload hash."""
    linked = replace(event, schema=max(event.schema, PER_DEVICE_SCHEMA), prev_hash=prev_hash)
    return replace(linked, hash=event_hash(linked))
