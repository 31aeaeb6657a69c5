"""Concepts beside the recalled memories: a concept whose members were recalled joins the hits
just above its best-ranked member, so the context builder can choose it instead of them."""

from __future__ import annotations

from collections.abc import Sequence

from engram.compact.run import concepts_of
from engram.model import Kind, MemoryEntry
from engram.query import Hit
from engram.store.base import Store


def with_concepts(store: Store, hits: Sequence[Hit], user_id: str) -> list[Hit]:
    """`hits` with the user's concepts that cover any of them (none when there are none)."""
    present = {h.memory.id for h in hits}
    if not hits or not any(h.memory.memory_type is not Kind.CONCEPT for h in hits):
        return list(hits)
    holding = [c for c in concepts_of(store, user_id) if c.id not in present
               and present.intersection(c.links.derived_from)]
    first: dict[int, list[MemoryEntry]] = {}
    for c in holding:
        rank = min(i for i, h in enumerate(hits) if h.memory.id in c.links.derived_from)
        first.setdefault(rank, []).append(c)
    out: list[Hit] = []
    for i, hit in enumerate(hits):
        out += [Hit(c, hit.score, {"concept": 1.0}) for c in first.get(i, [])]
        out.append(hit)
    return out
