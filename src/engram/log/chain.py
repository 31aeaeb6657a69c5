"""The hash chain's rules that every backend applies the same way: sealing the next event,
accepting an imported one, and walking the log to verify it. Pure: backends read the head
and write the row; these decide."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engram.errors import StoreError
from engram.log.events import GENESIS_HASH, HLC, Draft, Event, chain_problem, next_id, seal


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What `verify` found: the number of events checked and the first broken link, if any."""

    checked: int
    broken_at: int | None = None
    event_id: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None



def next_event(draft: Draft, *, device_id: str, seq: int, now_ms: int, clock: HLC,
               head_hlc: str | None, head_hash: bytes | None) -> Event:
    """`draft` sealed onto the chain whose last event has `head_hash` (None: an empty log),
    with a hybrid logical time after both this process's `clock` and the head's."""
    last = max(clock, HLC.parse(head_hlc)) if head_hlc else clock
    return seal(draft, event_id=next_id(now_ms), device_id=device_id, seq=seq,
                hlc=last.tick(now_ms),
                prev_hash=bytes(head_hash).hex() if head_hash is not None else GENESIS_HASH)


def admit(number: int, event: Event, *, stored_hash: bytes | None,
          head_hash: bytes | None) -> bool:
    """Whether an imported event is new (True) or already stored (False); an event that
    contradicts the stored one or does not continue the chain is refused."""
    if stored_hash is not None:
        if bytes(stored_hash).hex() != event.hash:
            raise StoreError(f"line {number}: event {event.id} differs from the stored event "
                             "with the same id; the file is not from this log")
        return False
    problem = chain_problem(event, bytes(head_hash).hex() if head_hash is not None
                            else GENESIS_HASH)
    if problem:
        raise StoreError(f"line {number}: event {event.id} does not continue the chain "
                         f"({problem}); import into an empty store or the store it was "
                         "exported from")
    return True


def verify(events: Iterable[tuple[int, Event]]) -> ChainReport:
    """Walk the log in order: every event must hash correctly and link to the one before."""
    expected, checked = GENESIS_HASH, 0
    for pos, event in events:
        problem = chain_problem(event, expected)
        if problem:
            return ChainReport(checked, broken_at=pos, event_id=event.id, problem=problem)
        expected, checked = event.hash, checked + 1
    return ChainReport(checked)
