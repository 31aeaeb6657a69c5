"""Version vectors: for each device, how far into that device's chain a store holds (the seq
of its last event there). Chains are gap-free, so a vector says exactly which events a store
has, and what it lacks from another is every event past its entry. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from engram.log.chain import Head

Vector = Mapping[str, int]


def of_heads(heads: Mapping[str, Head]) -> dict[str, int]:
    """The vector of a store whose devices' last events are `heads` (`Store.heads()`)."""
    return {device: head.seq for device, head in sorted(heads.items())}


def lacking(mine: Vector, theirs: Vector) -> dict[str, int]:
    """For each device where `mine` is ahead of `theirs`, the seq `theirs` holds up to (0: none):
    what to ask `Store.events_after` for."""
    return {device: theirs.get(device, 0) for device, seq in sorted(mine.items())
            if seq > theirs.get(device, 0)}


def ahead(mine: Vector, theirs: Vector) -> int:
    """How many events `mine` holds that `theirs` does not."""
    return sum(max(0, seq - theirs.get(device, 0)) for device, seq in mine.items())


def merged(a: Vector, b: Vector) -> dict[str, int]:
    """What a store holds after it has everything of both."""
    return {device: max(a.get(device, 0), b.get(device, 0)) for device in sorted({*a, *b})}
