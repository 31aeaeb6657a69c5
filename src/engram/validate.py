"""Turning what a caller passes to `add` into a validated MemoryEntry. Pure: time and the
device come in as arguments; every error names the field and the fix."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from engram.errors import InvalidInput
from engram.log.events import next_id
from engram.model import (
    Confidence,
    Kind,
    MemoryEntry,
    Privacy,
    Source,
    Status,
    Tier,
    Truth,
    check_id,
    check_metadata,
    check_unit,
    content_hash,
    format_time,
    normalize_content,
    normalize_labels,
    parse_enum,
    parse_time,
)
from engram.query import Filters

DEFAULT_USER = "default"
MAX_DEPTH = 32  # nesting of a JSON value (metadata, a request body)
MAX_OFFSET = 1_000_000_000  # a list's offset: far past any store, well inside SQLite's int64
_SURROGATE = re.compile("[\ud800-\udfff]")
ADD_FIELDS = frozenset({
    "text", "user_id", "agent_id", "session_id", "at", "tags", "memory_type", "tier",
    "truth_category", "metadata", "confidence", "source", "privacy", "entities", "domains",
    "summary", "dedupe", "shared_with", "sensitive",
})


def prepare(item: Mapping[str, Any], *, now: datetime, device_id: str,
            max_content_bytes: int) -> tuple[MemoryEntry, bool]:
    """The entry `item` describes, and whether it may corroborate an exact duplicate."""
    if not isinstance(item, Mapping):
        raise InvalidInput("item", f"expected a mapping, got {type(item).__name__}",
                           "pass dicts with add()'s fields")
    unknown = sorted(set(item) - ADD_FIELDS)
    if unknown:
        raise InvalidInput(unknown[0], "is not a field of a memory",
                           f"use only: {', '.join(sorted(ADD_FIELDS))}")
    if "text" not in item:
        raise InvalidInput("text", "is missing", "give each memory a text")
    check_json(item, "")
    text = normalize_content(item["text"], max_content_bytes)
    at = item.get("at")
    user_id = check_id(item.get("user_id", DEFAULT_USER), "user_id", required=True)
    assert user_id is not None
    entry = MemoryEntry(
        id=next_id(int(now.timestamp() * 1000)),
        content=text,
        content_hash=content_hash(text),
        created_at=now,
        updated_at=now,
        occurred_at=parse_time(at, "at") if at is not None else now,
        user_id=user_id,
        agent_id=check_id(item.get("agent_id"), "agent_id"),
        session_id=check_id(item.get("session_id"), "session_id"),
        summary=optional_text(item.get("summary"), "summary"),
        tier=parse_enum(Tier, item.get("tier", Tier.SHORT_TERM), "tier"),
        truth_category=parse_enum(Truth, item.get("truth_category", Truth.CONTEXTUAL),
                                  "truth_category"),
        memory_type=parse_enum(Kind, item.get("memory_type", Kind.FACT), "memory_type"),
        confidence=_confidence(item.get("confidence")),
        tags=normalize_labels(item.get("tags"), "tags"),
        domains=normalize_labels(item.get("domains"), "domains"),
        entities=normalize_labels(item.get("entities"), "entities"),
        sources=(_source(item.get("source"), device_id),),
        device_id=device_id,
        privacy=parse_enum(Privacy, item.get("privacy", Privacy.PRIVATE), "privacy"),
        shared_with=normalize_labels(item.get("shared_with"), "shared_with"),
        sensitive=_flag(item.get("sensitive", False), "sensitive"),
        metadata=check_metadata(item.get("metadata")),
    )
    return entry, _flag(item.get("dedupe", True), "dedupe")


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(name, f"{value!r} is not a bool", "pass True or False")
    return value


def changes(fields: Mapping[str, Any], max_content_bytes: int) -> dict[str, Any]:
    """The validated `memory.updated` changes that update()'s arguments ask for."""
    check_json(fields, "")
    out: dict[str, Any] = {}
    if "text" in fields:
        content = normalize_content(fields["text"], max_content_bytes)
        out |= {"content": content, "content_hash": content_hash(content)}
    if "metadata" in fields:
        out["metadata"] = check_metadata(fields["metadata"])
    for name, enum in (("memory_type", Kind), ("truth_category", Truth), ("privacy", Privacy)):
        if name in fields:
            out[name] = parse_enum(enum, fields[name], name).value
    if "summary" in fields:
        out["summary"] = optional_text(fields["summary"], "summary")
    if "at" in fields:
        out["occurred_at"] = format_time(parse_time(fields["at"], "at"))
    if "shared_with" in fields:
        out["shared_with"] = list(normalize_labels(fields["shared_with"], "shared_with"))
    if "sensitive" in fields:
        out["sensitive"] = _flag(fields["sensitive"], "sensitive")
    return out


def filters(user_id: str | None, agent_id: str | None = None,
             session_id: str | None = None, tags: Iterable[str] | None = None,
             memory_type: Kind | str | None = None, tier: Tier | str | None = None,
             since: datetime | str | None = None,
             until: datetime | str | None = None,
             statuses: tuple[Status, ...] | None = (Status.ACTIVE,),
             include_sensitive: bool = True) -> Filters:
    """Validated read filters (every scope id checked; times parsed)."""
    for name, value in (("user_id", user_id), ("agent_id", agent_id),
                        ("session_id", session_id), ("memory_type", memory_type),
                        ("tier", tier), ("since", since), ("until", until)):
        check_json(value, name)
    check_json(list(tags or ()), "tags")
    return Filters(
        user_id=check_id(user_id, "user_id"), agent_id=check_id(agent_id, "agent_id"),
        session_id=check_id(session_id, "session_id"),
        tags=normalize_labels(tags, "tags"),
        memory_type=parse_enum(Kind, memory_type, "memory_type") if memory_type else None,
        tier=parse_enum(Tier, tier, "tier") if tier else None,
        since=parse_time(since, "since") if since is not None else None,
        until=parse_time(until, "until") if until is not None else None,
        statuses=statuses, include_sensitive=include_sensitive,
    )


def optional_text(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(name, f"expected a string, got {type(value).__name__}",
                           f"pass {name} as text")
    return value.strip() or None


def _known_fields(value: Mapping[str, Any], fields: Iterable[str],
                  name: str) -> Mapping[str, Any]:
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise InvalidInput(f"{name}.{unknown[0]}", f"is not a {name} field",
                           f"use: {', '.join(fields)}")
    return value


def _confidence(value: object) -> Confidence:
    if value is None:
        return Confidence()
    if isinstance(value, Confidence):
        return value
    if isinstance(value, Mapping):
        return Confidence(**_known_fields(value, Confidence.__slots__, "confidence"))
    return Confidence(overall=check_unit(value, "confidence"))


def _source(value: object, device_id: str) -> Source:
    if value is None:
        return Source(kind="api", device_id=device_id)
    if isinstance(value, Source):
        return value
    if isinstance(value, Mapping):
        return Source(**{"device_id": device_id,
                         **_known_fields(value, Source.__slots__, "source")})
    raise InvalidInput("source", f"expected a mapping, got {type(value).__name__}",
                       "pass {'kind': ..., 'ref': ...}")


def statuses(status: Status | str) -> tuple[Status, ...] | None:
    """A status choice: one status, or "all" for any."""
    return None if status == "all" else (parse_enum(Status, status, "status"),)


def check_limit(limit: object) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise InvalidInput("limit", f"{limit!r} is out of range", "give a whole number 1-10000")


def check_offset(offset: object) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or \
            not 0 <= offset <= MAX_OFFSET:
        raise InvalidInput("offset", f"{offset!r} is out of range",
                           f"give a whole number 0-{MAX_OFFSET}")
    return offset


def check_text(value: str, name: str) -> str:
    """`value` if it is valid Unicode; lone surrogates (what invalid UTF-8 decodes to with
    `surrogateescape`, or a JSON "\\ud800") cannot be hashed, indexed or stored."""
    if _SURROGATE.search(value):
        raise InvalidInput(name or "text", "is not valid Unicode (it holds a lone surrogate "
                           "such as \\ud800)", "send text encoded as UTF-8")
    return value


def check_json(value: object, name: str = "body", max_depth: int = MAX_DEPTH,
               too_deep: type[InvalidInput] = InvalidInput) -> None:
    """Every string in `value` (keys too, through dicts, lists and tuples) valid Unicode, and
    nesting at most `max_depth` deep: what input must be before anything hashes, tokenizes or
    stores it. The field in an error is the path (`metadata.note`, `messages[0].content`)."""
    stack: list[tuple[object, str, int]] = [(value, name, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, where)
            continue
        if not isinstance(item, dict | list | tuple):
            continue
        if depth >= max_depth:
            top = where.split(".")[0].split("[")[0] if where != "body" else ""
            raise too_deep(top or "body", f"is nested deeper than {max_depth} levels",
                           "flatten it")
        if isinstance(item, dict):
            for key, child in item.items():
                shown = _shown(key) if isinstance(key, str) else repr(key)
                path = f"{where}.{shown}" if where and where != "body" else shown
                if isinstance(key, str):
                    check_text(key, path)
                stack.append((child, path, depth + 1))
        else:
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))


def _shown(text: str) -> str:
    """`text` printable in an error message even when it is not valid Unicode."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
