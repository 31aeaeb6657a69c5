"""The hash chains' rules that every backend applies the same way: one chain per device.

Each event's prev_hash is the hash of the same device's previous event (GENESIS_HASH for its
first), its seq that event's + 1, and its hybrid logical time later than that event's. Events
of all devices merge in (hlc, device_id, seq) order. Pure: backends read heads and write rows;
these decide what is sealed, admitted and intact."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from engram.clock import Clock
from engram.errors import StoreError
from engram.log.events import GENESIS_HASH, HLC, Draft, Event, chain_problem, next_id, seal

# The merge order of a log: by hybrid logical time, ties broken by device then sequence.
MergeKey = tuple[HLC, str, int]


def merge_key(event: Event) -> MergeKey:
    return (event.hlc, event.device_id, event.seq)


@dataclass(frozen=True, slots=True)
class Head:
    """A device's last event in a store: what the device's next event must continue."""

    seq: int
    hash: str
    hlc: HLC

    @classmethod
    def of(cls, event: Event) -> Head:
        return cls(event.seq, event.hash, event.hlc)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What `verify` found: the number of events checked and the first broken link, if any
    (`broken_at` is the event's position in the store, `device_id` the chain it broke)."""

    checked: int
    broken_at: int | None = None
    event_id: str | None = None
    problem: str | None = None
    device_id: str | None = None
    devices: int = 0

    @property
    def ok(self) -> bool:
        return self.broken_at is None


class Sealer:
    """Seals this device's drafts: onto the device's head, at a hybrid logical time after
    both this process's clock and the latest time in the log (so an event is later than
    every event its writer could have seen, from any device)."""

    def __init__(self, device_id: str, clock: Clock) -> None:
        self.device_id, self.clock, self.last = device_id, clock, HLC(0)

    def seal(self, draft: Draft, *, head: Head | None, log_hlc: HLC | None) -> Event:
        now_ms = int(self.clock.now().timestamp() * 1000)
        last = max(self.last, log_hlc) if log_hlc is not None else self.last
        event = seal(draft, event_id=next_id(now_ms), device_id=self.device_id,
                     seq=head.seq + 1 if head else 1, hlc=last.tick(now_ms),
                     prev_hash=head.hash if head else GENESIS_HASH)
        self.last = event.hlc
        return event


def link_problem(event: Event, head: Head | None) -> str | None:
    """Why `event` does not continue its device's chain, whose last event is `head` (None: the
    device has no event yet), or None."""
    problem = chain_problem(event, head.hash if head else GENESIS_HASH)
    if problem:
        return problem
    expected = head.seq + 1 if head else 1
    if event.seq != expected:
        return f"seq {event.seq} does not follow the device's seq {expected - 1}"
    if head is not None and event.hlc <= head.hlc:
        return "hlc is not after the device's previous event"
    return None


def admit(events: Sequence[Event], *, known: Mapping[str, str],
          heads: Mapping[str, Head]) -> list[Event]:
    """The new events of an import batch, in (device_id, seq) order (the order of the lines
    does not matter). `known` maps the ids of batch events already stored to their hashes,
    `heads` each device's last stored event. An event already stored with the same hash is
    skipped; one whose id is stored with another hash, or that does not continue its device's
    chain, refuses the whole batch (errors name the event's line, counted from 1)."""
    seen, tips, new = dict(known), dict(heads), []
    numbered = sorted(enumerate(events, start=1),
                      key=lambda pair: (pair[1].device_id, pair[1].seq, pair[0]))
    for number, event in numbered:
        stored = seen.get(event.id)
        if stored is not None and (damage := chain_problem(event, event.prev_hash)):
            raise StoreError(f"line {number}: event {event.id} is damaged ({damage}); export "
                             "the events again with `engram export`")
        if stored is not None:
            if stored != event.hash:
                raise StoreError(f"line {number}: event {event.id} differs from the stored "
                                 "event with the same id; the file is not from this log")
            continue
        problem = link_problem(event, tips.get(event.device_id))
        if problem:
            raise StoreError(
                f"line {number}: event {event.id} does not continue the chain of device "
                f"{event.device_id} ({problem}); {_fix(problem)}")
        seen[event.id], tips[event.device_id] = event.hash, Head.of(event)
        new.append(event)
    return new


def _fix(problem: str) -> str:
    """What to do about an event that does not continue its chain."""
    if problem.startswith("seq"):  # a gap: events before it are missing
        return ("import that device's earlier events first (an export of a whole log "
                "always continues)")
    return ("it was altered, forged or damaged after it was written: export the events again "
            "from the store that holds them (re-export a file written by Engram 0.1 from its "
            "store opened by this version)")


def in_merge_order(new: Iterable[Event], last: MergeKey | None) -> bool:
    """Whether every new event merges after the log's last event (`last`; None: an empty
    log), so folding them onto the projection in merge order equals a replay."""
    return last is None or all(merge_key(event) > last for event in new)


def verify(events: Iterable[tuple[int, Event]]) -> ChainReport:
    """Walk every device's chain: `events` are (position, event) in (device_id, seq) order.
    Each event must hash correctly, link to its device's previous one, follow its seq and be
    later by hybrid logical time."""
    head: Head | None = None
    device: str | None = None
    checked = devices = 0
    for pos, event in events:
        if event.device_id != device:
            device, head, devices = event.device_id, None, devices + 1
        problem = link_problem(event, head)
        if problem:
            return ChainReport(checked, broken_at=pos, event_id=event.id,
                               problem=f"{problem} (device {device}, seq {event.seq})",
                               device_id=device, devices=devices)
        head, checked = Head.of(event), checked + 1
    return ChainReport(checked, devices=devices)
