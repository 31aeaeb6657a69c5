"""Filters as SQL conditions on alias `m`, for both backends: the shared conditions once,
the two spellings (placeholders, status lists, tag containment) as a dialect."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engram.model import format_time
from engram.query import Filters

Clause = tuple[str, list[Any]]


@dataclass(frozen=True, slots=True)
class Dialect:
    mark: str  # the placeholder
    true: str
    one_of: Callable[[str, list[str]], Clause]  # column's value among these
    has_tags: Callable[[tuple[str, ...]], Clause]  # the tags column holds all of these


def where(f: Filters, d: Dialect) -> Clause:
    """SQL conditions for a Filters, applied inside every candidate query."""
    clauses: list[str] = [d.true]
    params: list[Any] = []
    equal = {"user_id": f.user_id, "agent_id": f.agent_id, "session_id": f.session_id,
             "memory_type": f.memory_type.value if f.memory_type else None,
             "tier": f.tier.value if f.tier else None}
    for col, value in equal.items():
        if value is not None:
            clauses.append(f"m.{col} = {d.mark}")
            params.append(value)
    for op, bound in ((">=", f.since), ("<", f.until)):
        if bound is not None:
            clauses.append(f"m.occurred_at {op} {d.mark}")
            params.append(format_time(bound))
    if f.min_confidence is not None:
        clauses.append(f"m.confidence >= {d.mark}")
        params.append(f.min_confidence)
    extra: list[Clause] = []
    if f.statuses is not None:
        extra.append(d.one_of("m.status", [s.value for s in f.statuses]))
    if not f.include_sensitive:
        extra.append(("m.sensitive = 0", []))
    if f.tags:
        extra.append(d.has_tags(f.tags))
    for clause, values in extra:
        clauses.append(clause)
        params.extend(values)
    return " AND ".join(clauses), params


SQLITE = Dialect(
    mark="?", true="1",
    one_of=lambda col, values: (f"{col} IN ({', '.join('?' * len(values))})", list(values)),
    has_tags=lambda tags: (" AND ".join(
        ["EXISTS (SELECT 1 FROM json_each(m.tags) WHERE value = ?)"] * len(tags)), list(tags)),
)
POSTGRES = Dialect(
    mark="%s", true="TRUE",
    one_of=lambda col, values: (f"{col} = ANY(%s)", [list(values)]),
    has_tags=lambda tags: ("m.tags::jsonb @> %s::jsonb",
                           [json.dumps(list(tags), ensure_ascii=False)]),
)
