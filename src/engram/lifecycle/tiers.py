"""Tier rules: promotion and expiry as pure functions of a memory, its history, the time and
a `Policy`. `maintenance.py` applies what they decide, as events.

Short-term holds what is new and unconfirmed. It is promoted to long-term when the user
validated it, when it was corroborated often enough with enough confidence, or when it has
persisted (stayed alive, neither expired nor contradicted) for `persisted_days`; situational
context ("I'm tired today") is never promoted by persistence alone. It expires when it went
unconfirmed and unused for `ttl_hours`. Long-term becomes persistent when it is an absolute
truth held with high confidence, carries the identity tag long enough, or is a preference
recalled often over a long span. What is never used fades in ranking
(`recall.fading`, half-life `decay.half_life_days`); persistent memories do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from engram.log.events import Event, EventType
from engram.model import Kind, MemoryEntry, Status, Tier, Truth, parse_time


def _setting(key: str, default: Any, doc: str) -> Any:
    return field(default=default, metadata={"key": key, "doc": doc})


@dataclass(frozen=True, slots=True)
class Policy:
    """Every threshold of the tier rules and of maintenance, with the defaults of the seed.
    Each field's `key` is its name in the TOML configuration (`engram config show`)."""

    ttl_hours: float = _setting("short_term.ttl_hours", 72.0,
                                "an unconfirmed, unused short-term memory expires after this")
    min_confidence: float = _setting("long_term.min_confidence", 0.6,
                                     "promote when confidence is at least this …")
    min_corroborations: int = _setting("long_term.min_corroborations", 2,
                                       "… and it was corroborated this many times")
    persisted_days: float = _setting("long_term.persisted_days", 3.0,
                                     "or promote once alive this long without contradiction")
    absolute_confidence: float = _setting("persistent.absolute_confidence", 0.9,
                                          "absolute truths at this confidence become persistent")
    identity_tag: str = _setting("persistent.identity_tag", "identity",
                                 "memories with this tag become persistent …")
    identity_days: float = _setting("persistent.identity_days", 30.0, "… after this many days")
    preference_accesses: int = _setting("persistent.preference_accesses", 10,
                                        "preferences recalled this often …")
    preference_days: float = _setting("persistent.preference_days", 60.0,
                                      "… over this many days become persistent")
    half_life_days: float = _setting("decay.half_life_days", 90.0,
                                     "ranking trusts a memory half as much after this long "
                                     "unused (not persistent ones)")
    every_hours: float = _setting("maintenance.every_hours", 24.0,
                                  "run maintenance lazily when this overdue (0: never)")
    near_duplicate: float = _setting("consolidation.near_duplicate", 0.96,
                                     "cosine above which a new memory corroborates an old one")
    compact_min_new: int = _setting("compact.min_new", 200,
                                    "maintenance compacts a user once this many new memories "
                                    "arrived since the last compaction (0: never)")
    # 0.6 and 60 tokens: chosen on LoCoMo, leave one conversation out (docs/compaction.md).
    compact_distance: float = _setting("compact.distance", 0.6,
                                       "memories closer than this (cosine distance, average "
                                       "linkage) form one concept")
    compact_entity: float = _setting("compact.entity", 0.3,
                                     "how much shared names draw two memories together (0-1)")
    compact_min_size: int = _setting("compact.min_size", 3, "members a concept needs at least")
    compact_ratio: float = _setting("compact.summary_ratio", 0.1,
                                    "a concept summary's length as a share of its members' "
                                    "tokens")
    compact_max_tokens: int = _setting("compact.summary_max_tokens", 60,
                                       "the longest a concept summary may be, in tokens")

    @classmethod
    def keys(cls) -> dict[str, str]:
        """TOML key → field name."""
        return {f.metadata["key"]: f.name for f in fields(cls)}


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of tier (promotion) or of status (expiry), with the reason an event keeps."""

    reason: str
    to_tier: Tier | None = None  # None: the memory expires


def last_seen(entry: MemoryEntry) -> datetime:
    """The latest sign of life: added, changed, corroborated or recalled."""
    return max(entry.updated_at, entry.last_accessed or entry.updated_at)


def review(entry: MemoryEntry, history: Sequence[Event], now: datetime,
           policy: Policy) -> Transition | None:
    """What should happen to `entry`'s tier now, if anything."""
    if entry.status is not Status.ACTIVE:
        return None
    if entry.tier is Tier.SHORT_TERM:
        return _short_term(entry, now, policy)
    if entry.tier is Tier.LONG_TERM:
        return _long_term(entry, history, now, policy)
    return None


def _short_term(entry: MemoryEntry, now: datetime, policy: Policy) -> Transition | None:
    conf = entry.confidence
    if entry.validated:
        return Transition("validated by the user", Tier.LONG_TERM)
    if conf.overall >= policy.min_confidence and \
            conf.corroboration_count >= policy.min_corroborations:
        return Transition(f"confidence {conf.overall:.2f} ≥ {policy.min_confidence} and "
                          f"corroborated {conf.corroboration_count} times", Tier.LONG_TERM)
    ttl = timedelta(hours=policy.ttl_hours)
    mark = entry.created_at + timedelta(days=policy.persisted_days)
    survived = now >= mark and mark - last_seen(entry) <= ttl  # not expired at the mark
    if survived and entry.memory_type is not Kind.CONTEXT and \
            conf.contradiction_count <= conf.corroboration_count:
        return Transition(f"persisted {_span(now - entry.created_at)} without contradiction",
                          Tier.LONG_TERM)
    idle = now - last_seen(entry)
    if idle >= ttl:
        return Transition(f"unconfirmed and unused for {_span(idle)} "
                          f"(short-term TTL {policy.ttl_hours:g} h)")
    return None


def _long_term(entry: MemoryEntry, history: Sequence[Event], now: datetime,
               policy: Policy) -> Transition | None:
    conf = entry.confidence
    if entry.truth_category is Truth.ABSOLUTE and conf.overall >= policy.absolute_confidence:
        return Transition(f"absolute truth held with confidence {conf.overall:.2f} ≥ "
                          f"{policy.absolute_confidence}", Tier.PERSISTENT)
    tagged = tagged_since(history, policy.identity_tag)
    if tagged is not None and now - tagged >= timedelta(days=policy.identity_days):
        return Transition(f"tagged {policy.identity_tag!r} for {_span(now - tagged)}",
                          Tier.PERSISTENT)
    if entry.memory_type is Kind.PREFERENCE and entry.last_accessed is not None and \
            entry.access_count >= policy.preference_accesses and \
            entry.last_accessed - entry.created_at >= timedelta(days=policy.preference_days):
        return Transition(f"preference recalled {entry.access_count} times over "
                          f"{_span(entry.last_accessed - entry.created_at)}", Tier.PERSISTENT)
    return None


def tagged_since(history: Sequence[Event], tag: str) -> datetime | None:
    """When `tag` was last put on the memory and has stayed since; None if it is not on."""
    since: datetime | None = None
    for event in history:
        p = event.payload or {}
        if event.type is EventType.ADDED and tag in p.get("memory", {}).get("tags", ()):
            since = parse_time(p["memory"]["created_at"], "created_at")
        elif event.type is EventType.TAGGED:
            if tag in p.get("remove", ()):
                since = None
            if tag in p.get("add", ()) and since is None:
                since = parse_time(p["at"], "at")
    return since


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"


def why(entry: MemoryEntry, history: Sequence[Event], policy: Policy) -> str:
    """Why the memory sits where it is, in a sentence (for `engram show`)."""
    for event in reversed(history):
        p = event.payload or {}
        if entry.status is Status.SUPERSEDED and event.type is EventType.SUPERSEDED:
            return f"superseded on {p['at'][:10]} by {p['by']} ({p.get('reason', '')})"
        if entry.status is Status.EXPIRED and event.type is EventType.EXPIRED:
            return f"expired on {p['at'][:10]}: {p['reason']}"
        if event.type is EventType.TIER_CHANGED:
            return f"{entry.tier.value} since {p['at'][:10]}: {p['reason']}"
    return (f"{entry.tier.value} since it was added; short-term memories are promoted when "
            f"validated, corroborated or persisting {policy.persisted_days:g} days, and expire "
            f"after {policy.ttl_hours:g} h unconfirmed and unused"
            if entry.tier is Tier.SHORT_TERM else f"{entry.tier.value} since it was added")
