"""Dynamic adapter selection: the adapter whose memories name what the query names (its
entities, its domains), or none, so a question about something no adapter learnt is answered
by the base model with retrieval alone.

The candidates are one adapter per scope (all memories, or a set of domains): the active one,
else the newest, passing over any that carries a forgotten memory. Profiles are read
from the store when asked, so nothing of a memory's text is kept beside the adapters."""

from __future__ import annotations

import re

from engram.extract.text import entities
from engram.recall.entities import query_entities
from engram.train import Host
from engram.train.pipeline import tainted
from engram.train.registry import Adapter, Registry, number

_WORD = re.compile(r"[^\W_]+")


def options(host: Host, registry: Registry, user: str) -> list[Adapter]:
    """The adapters selection chooses among, one per scope: the active one, else the newest
    that carries no forgotten memory. The active one comes first."""
    active = registry.active(user)
    ranked = sorted(registry.adapters(user), reverse=True,
                    key=lambda a: (a == active, number(a.version)))
    chosen: dict[tuple[str, ...], Adapter] = {}
    for adapter in ranked:
        scope = tuple(sorted(d.casefold() for d in adapter.domains))
        if scope not in chosen and not tainted(host, adapter):
            chosen[scope] = adapter
    return list(chosen.values())


def profile(host: Host, adapter: Adapter) -> set[str]:
    """The names and domains of the memories the adapter learnt, case-folded."""
    names: set[str] = set()
    for entry in host.store.get_many(adapter.memory_ids).values():
        for name in (*entry.entities, *entities(entry.content), *entry.domains):
            names.add(name.casefold())
            names.update(w.casefold() for w in _WORD.findall(name))
    return names


def choose(host: Host, registry: Registry, user: str, query: str) -> Adapter | None:
    """The adapter whose memories share the most names and domains with `query` (ties: the
    active one, then the newest), or None when none shares any."""
    asked = set(query_entities(query)) | {w.casefold() for w in _WORD.findall(query)}
    best: tuple[int, Adapter] | None = None
    for adapter in options(host, registry, user):
        overlap = len(asked & profile(host, adapter))
        if overlap and (best is None or overlap > best[0]):
            best = (overlap, adapter)
    return best[1] if best else None
