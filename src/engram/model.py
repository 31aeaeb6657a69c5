"""The memory model: plain, immutable data and its validation. No I/O."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Self, TypeVar

from engram.errors import InvalidInput

DEFAULT_MAX_CONTENT_BYTES = 64 * 1024


class Tier(StrEnum):
    SHORT_TERM = "short_term"
    LONG_TERM = "long_term"
    PERSISTENT = "persistent"


class Truth(StrEnum):
    ABSOLUTE = "absolute"
    CONTEXTUAL = "contextual"
    OPINION = "opinion"
    INFERRED = "inferred"


class Kind(StrEnum):
    FACT = "fact"
    BELIEF = "belief"
    PREFERENCE = "preference"
    SKILL = "skill"
    EVENT = "event"
    CONTEXT = "context"
    CONCEPT = "concept"  # a summary of related memories (`compact`), derived_from them


class Privacy(StrEnum):
    PRIVATE = "private"
    SHARED = "shared"
    PUBLIC = "public"


class Status(StrEnum):
    """Whether a memory takes part in default recall. Inactive memories stay inspectable
    (get, history, list with a status filter) until forgotten."""

    ACTIVE = "active"
    SUPERSEDED = "superseded"  # a newer memory replaced its value (contradiction)
    EXPIRED = "expired"  # short-term, and its TTL ran out before anything promoted it


class LinkKind(StrEnum):
    RELATED = "related"
    CONTRADICTS = "contradicts"
    SUPPORTS = "supports"
    SUPERSEDES = "supersedes"
    SUPERSEDED_BY = "superseded_by"
    DERIVED_FROM = "derived_from"  # an extracted memory → the turn it came from; a concept
    # → its members


E = TypeVar("E", bound=StrEnum)


def parse_enum(enum: type[E], value: object, name: str) -> E:
    """`value` as a member of `enum`, or an error listing the allowed values."""
    try:
        return enum(value)  # type: ignore[arg-type]
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise InvalidInput(name, f"unknown value {value!r}", f"use one of: {allowed}") from None


@dataclass(frozen=True, slots=True)
class Confidence:
    """How much Engram trusts a memory, and the evidence behind it."""

    overall: float = 0.5
    source_reliability: float = 0.5
    recency: float = 1.0
    corroboration_count: int = 0
    contradiction_count: int = 0

    def __post_init__(self) -> None:
        for name in ("overall", "source_reliability", "recency"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= float(value) <= 1.0:
                raise InvalidInput(f"confidence.{name}", f"{value!r} is out of range",
                                   "give a number from 0.0 to 1.0")
        for name in ("corroboration_count", "contradiction_count"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise InvalidInput(f"confidence.{name}", f"{value!r} is not a count",
                                   "give a whole number >= 0")


@dataclass(frozen=True, slots=True)
class Source:
    """Provenance: where a memory came from (a conversation turn, a file, a model...)."""

    kind: str = "api"
    ref: str | None = None
    device_id: str | None = None
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Links:
    """Typed edges to other memories, by id."""

    related: tuple[str, ...] = ()
    contradicts: tuple[str, ...] = ()
    supports: tuple[str, ...] = ()
    supersedes: tuple[str, ...] = ()
    superseded_by: tuple[str, ...] = ()
    derived_from: tuple[str, ...] = ()

    def add(self, kind: LinkKind, target: str) -> Links:
        current: tuple[str, ...] = getattr(self, kind.value)
        if target in current:
            return self
        return replace(self, **{kind.value: (*current, target)})


@dataclass(frozen=True, slots=True)
class MemoryEntry:
    """One memory, as the projection of its events."""

    id: str
    content: str
    content_hash: str
    created_at: datetime
    updated_at: datetime
    occurred_at: datetime
    user_id: str
    summary: str | None = None
    tier: Tier = Tier.SHORT_TERM
    truth_category: Truth = Truth.CONTEXTUAL
    memory_type: Kind = Kind.FACT
    confidence: Confidence = field(default_factory=Confidence)
    tags: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    links: Links = field(default_factory=Links)
    sources: tuple[Source, ...] = ()
    last_accessed: datetime | None = None
    access_count: int = 0
    agent_id: str | None = None
    session_id: str | None = None
    device_id: str | None = None
    privacy: Privacy = Privacy.PRIVATE
    shared_with: tuple[str, ...] = ()
    sensitive: bool = False
    status: Status = Status.ACTIVE
    validated: bool = False  # the user confirmed it (feedback good or a correction)
    training_weight: float = 1.0
    slot: str | None = None  # "subject/attribute" of a single-valued claim: contradictions
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The content; the name the DESIGN contract reads."""
        return self.content

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; empty and default-valued optional fields are left out."""
        out: dict[str, Any] = {}
        for name, default in _entry_defaults():
            value = getattr(self, name)
            if default is _MISSING or value != default:
                out[name] = to_json(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Inverse of `to_dict`."""
        return cls(
            id=data["id"],
            content=data["content"],
            content_hash=data["content_hash"],
            created_at=parse_time(data["created_at"], "created_at"),
            updated_at=parse_time(data["updated_at"], "updated_at"),
            occurred_at=parse_time(data["occurred_at"], "occurred_at"),
            user_id=data["user_id"],
            summary=data.get("summary"),
            tier=parse_enum(Tier, data.get("tier", Tier.SHORT_TERM), "tier"),
            truth_category=parse_enum(Truth, data.get("truth_category", Truth.CONTEXTUAL),
                                      "truth_category"),
            memory_type=parse_enum(Kind, data.get("memory_type", Kind.FACT), "memory_type"),
            # Most memories keep the default confidence and no links: one shared instance.
            confidence=Confidence(**data["confidence"]) if data.get("confidence") else
            _DEFAULTS["confidence"],
            tags=tuple(data.get("tags", ())),
            domains=tuple(data.get("domains", ())),
            entities=tuple(data.get("entities", ())),
            links=Links(**{k: tuple(v) for k, v in data["links"].items()}) if data.get("links")
            else _DEFAULTS["links"],
            sources=tuple(Source(**s) for s in data.get("sources", ())),
            last_accessed=(parse_time(data["last_accessed"], "last_accessed")
                           if data.get("last_accessed") else None),
            access_count=data.get("access_count", 0),
            agent_id=data.get("agent_id"),
            session_id=data.get("session_id"),
            device_id=data.get("device_id"),
            privacy=parse_enum(Privacy, data.get("privacy", Privacy.PRIVATE), "privacy"),
            shared_with=tuple(data.get("shared_with", ())),
            sensitive=bool(data.get("sensitive", False)),
            status=parse_enum(Status, data.get("status", Status.ACTIVE), "status"),
            validated=bool(data.get("validated", False)),
            training_weight=float(data.get("training_weight", 1.0)),
            slot=data.get("slot"),
            metadata=dict(data.get("metadata", {})),
        )


_MISSING = object()
_ALWAYS = {"id", "content", "content_hash", "created_at", "updated_at", "occurred_at", "user_id"}
_DEFAULTS: dict[str, Any] = {
    "summary": None, "tier": Tier.SHORT_TERM, "truth_category": Truth.CONTEXTUAL,
    "memory_type": Kind.FACT, "confidence": Confidence(), "tags": (), "domains": (),
    "entities": (), "links": Links(), "sources": (), "last_accessed": None, "access_count": 0,
    "agent_id": None, "session_id": None, "device_id": None, "privacy": Privacy.PRIVATE,
    "shared_with": (), "sensitive": False, "status": Status.ACTIVE, "validated": False,
    "training_weight": 1.0, "slot": None,
    "metadata": {},
}


@functools.cache
def _entry_defaults() -> tuple[tuple[str, Any], ...]:
    """Each field of MemoryEntry with the value `to_dict` leaves out (_MISSING: none)."""
    return tuple((name, _MISSING if name in _ALWAYS else _DEFAULTS.get(name, _MISSING))
                 for name in _names(MemoryEntry))


@functools.cache
def _names(cls: type) -> tuple[str, ...]:
    """A dataclass's field names, in order (read once: `fields` is slow on a hot path)."""
    return tuple(f.name for f in fields(cls))


_PLAIN = frozenset({str, int, float, bool})


def to_json(value: Any) -> Any:
    """A model value (entry part, enum, time) as plain JSON data."""
    if value is None or type(value) in _PLAIN:  # most values: a hot path on every write
        return value
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, (Confidence, Links)):
        kind: type = type(value)
        return {k: to_json(v) for k in _names(kind) if (v := getattr(value, k)) not in ((), None)}
    if isinstance(value, Source):
        return {k: v for k in _names(Source) if (v := getattr(value, k)) is not None}
    if isinstance(value, (tuple, list)):
        return [to_json(v) for v in value]
    if isinstance(value, Mapping):
        return dict(value)
    return value


# ---------------------------------------------------------------- time


def format_time(moment: datetime) -> str:
    """UTC ISO-8601 with microseconds and a Z: sortable as text (the year always has four
    digits: isoformat pads years before 1000, where strftime's %Y would not)."""
    # isoformat: the same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ"), in half the time.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_time(value: object, name: str) -> datetime:
    """A timezone-aware UTC datetime from a datetime or ISO-8601 text (naive means UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(name, f"{value!r} is not a date-time",
                               "use ISO 8601, e.g. 2026-05-08T13:56:00Z") from None
    else:
        raise InvalidInput(name, f"{value!r} is not a date-time",
                           "pass a datetime or an ISO 8601 string")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+05:00 falls before year 1 in UTC
        raise InvalidInput(name, f"{value!r} is out of range",
                           "give a date-time between the years 1 and 9999 in UTC") from None


# ---------------------------------------------------------------- validation


def normalize_content(text: object, max_bytes: int = DEFAULT_MAX_CONTENT_BYTES) -> str:
    """Validated content: a non-blank str of at most `max_bytes` UTF-8 bytes."""
    if not isinstance(text, str):
        raise InvalidInput("text", f"expected a string, got {type(text).__name__}",
                           "pass the memory's text as a str")
    text = unicodedata.normalize("NFC", text.strip())
    if not text:
        raise InvalidInput("text", "is empty or only whitespace", "give the memory some text")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput("text", "is not valid Unicode (lone surrogates)",
                           "decode the input as UTF-8 before adding it") from None
    if size > max_bytes:
        raise InvalidInput("text", f"is {size} bytes, over the limit of {max_bytes}",
                           "split it into smaller memories or raise max_content_bytes")
    return text


def content_hash(text: str) -> str:
    """Dedupe key: sha256 of the whitespace- and case-normalised content."""
    canonical = " ".join(text.casefold().split())
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def normalize_labels(values: Iterable[object] | None, name: str) -> tuple[str, ...]:
    """Tags, domains or entities: stripped, non-empty, unique, order kept."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(name, f"{value!r} is not a non-empty string",
                               f"give {name} as a list of non-empty strings")
        label = value.strip()
        if label not in out:
            out.append(label)
    return tuple(out)


def check_id(value: object, name: str, *, required: bool = False) -> str | None:
    """An optional scoping id (user_id, agent_id, session_id): a short non-blank string."""
    if value is None:
        if required:
            raise InvalidInput(name, "is missing", f"pass {name}=... (it scopes every memory)")
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise InvalidInput(name, f"{value!r} is not a valid id",
                           "use a non-blank string of at most 256 characters")
    return value.strip()


def check_metadata(metadata: object) -> dict[str, Any]:
    """Free-form metadata that must survive a JSON round trip unchanged."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInput("metadata", f"expected a mapping, got {type(metadata).__name__}",
                           "pass a dict of JSON values")
    try:
        encoded = json.dumps(metadata, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("metadata", f"is not JSON-serialisable ({exc})",
                           "use only str, int, float, bool, None, lists and dicts with str keys"
                           ) from None
    decoded: dict[str, Any] = json.loads(encoded)
    if decoded != metadata or any(not isinstance(k, str) for k in metadata):
        raise InvalidInput("metadata", "does not survive a JSON round trip",
                           "use str keys and JSON values (no tuples, no int keys)")
    return decoded


def check_unit(value: object, name: str) -> float:
    """A float in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) \
            or not 0.0 <= value <= 1.0:
        raise InvalidInput(name, f"{value!r} is out of range", "give a number from 0.0 to 1.0")
    return float(value)
