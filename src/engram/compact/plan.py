"""What a compaction run writes: each new group matched to the concept already written for
(mostly) the same members, so a rerun over unchanged memories writes nothing and a changed
group redoes its concept in place. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from engram.model import MemoryEntry

SAME_CONCEPT = 0.5  # Jaccard overlap of members at which a group continues a concept


@dataclass(frozen=True, slots=True)
class Written:
    """A concept as the store holds it: its id, members and the digest of what it summarised."""

    id: str
    members: frozenset[str]
    digest: str


@dataclass(frozen=True, slots=True)
class Plan:
    add: list[list[str]] = field(default_factory=list)  # members of each new concept
    redo: list[tuple[str, list[str]]] = field(default_factory=list)  # concept id, members
    keep: list[str] = field(default_factory=list)  # concepts whose members did not change
    drop: list[str] = field(default_factory=list)  # concepts whose group is gone


def digest(members: Iterable[MemoryEntry]) -> str:
    """What a summary depends on: which members, and their texts."""
    parts = sorted(f"{m.id}:{m.content_hash}" for m in members)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def plan(groups: Sequence[Sequence[str]], written: Sequence[Written],
         digests: Mapping[str, str]) -> Plan:
    """Match `groups` (member ids) to `written` concepts, best overlap first. `digests` holds
    the current digest of each group, keyed by `key(group)`."""
    pairs = sorted(((_jaccard(set(g), w.members), gi, wi)
                    for gi, g in enumerate(groups) for wi, w in enumerate(written)
                    if w.members & set(g)), reverse=True)
    matched: dict[int, int] = {}
    used: set[int] = set()
    for overlap, gi, wi in pairs:
        if overlap < SAME_CONCEPT:
            break
        if gi not in matched and wi not in used:
            matched[gi] = wi
            used.add(wi)
    out = Plan()
    for gi, group in enumerate(groups):
        members = sorted(group)
        if gi not in matched:
            out.add.append(members)
            continue
        concept = written[matched[gi]]
        if concept.digest == digests[key(group)]:
            out.keep.append(concept.id)
        else:
            out.redo.append((concept.id, members))
    out.drop.extend(w.id for wi, w in enumerate(written) if wi not in used)
    return out


def key(group: Iterable[str]) -> str:
    return ",".join(sorted(group))


def _jaccard(a: set[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0
