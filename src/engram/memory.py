"""The `Memory` facade: the one object a user needs. Validates, then writes events."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from engram import context as ctx
from engram import validate
from engram.capture import turns
from engram.capture.writer import TURN_TAG, Limits, Writer, require
from engram.clock import Clock, SystemClock
from engram.compact.methods import CompactMethods
from engram.embed.embedders import Embedder
from engram.errors import InvalidInput, NotFound
from engram.extract.llm import LLMExtractor
from engram.ingest.methods import IngestMethods
from engram.lifecycle import config, maintenance
from engram.lifecycle.consolidate import FEEDBACK_FACTORS
from engram.lifecycle.tiers import Policy
from engram.log.chain import ChainReport
from engram.log.events import Event, EventType
from engram.model import (
    DEFAULT_MAX_CONTENT_BYTES,
    Kind,
    LinkKind,
    MemoryEntry,
    Privacy,
    Source,
    Status,
    Tier,
    Truth,
    check_id,
    format_time,
    normalize_labels,
    parse_enum,
)
from engram.query import Hit
from engram.recall.hybrid import AUTO, Hybrid
from engram.recall.ranking import DEFAULT_WEIGHTS, Weights
from engram.recall.usage import AccessLog
from engram.store import DEFAULT_DATA, open_store
from engram.store.base import Store
from engram.sync.methods import SyncMethods
from engram.validate import DEFAULT_USER


class Memory(SyncMethods, CompactMethods, IngestMethods):
    """Long-term memory over an event-sourced store.

    >>> mem = Memory("./engram-data")
    >>> entry = mem.add("Caroline adopted a puppy named Oscar", user_id="u1")
    >>> mem.search("pets", user_id="u1")[0].memory.text
    'Caroline adopted a puppy named Oscar'
    """

    def __init__(self, path: str | Path = DEFAULT_DATA, *, clock: Clock | None = None,
                 device_id: str | None = None,
                 max_content_bytes: int = DEFAULT_MAX_CONTENT_BYTES,
                 access_batch: int = 256, access_flush_s: float = 60.0,
                 actor: str = "user", synchronous: str = "NORMAL",
                 embedder: Embedder | str | None = AUTO,
                 weights: Weights = DEFAULT_WEIGHTS, policy: Policy | None = None,
                 extractor: LLMExtractor | None = None) -> None:
        """`policy` (tier thresholds) defaults to the store's engram.toml (`engram config`),
        or to ENGRAM_CONFIG's file for a PostgreSQL store. `extractor` replaces the offline
        rule-based extraction of `remember_turn` by an LLM's."""
        self.clock: Clock = clock or SystemClock()
        self.extractor = extractor
        self.policy = policy or config.load(config.path_for(path))
        self.store: Store = open_store(path, clock=self.clock, device_id=device_id,
                                       synchronous=synchronous)
        self.hybrid = Hybrid(self.store, embedder)
        self._count: ctx.TokenCounter | None = None  # the prompt's token counter, loaded lazily
        self.weights = replace(weights, unused_half_life_days=self.policy.half_life_days)
        self.writer = Writer(self.store, self.hybrid, self.clock,
                             limits=Limits(max_content_bytes), actor=actor)
        self._access = AccessLog(self.store, self.clock, batch=access_batch,
                                 flush_s=access_flush_s)

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Write out batched access statistics and release the store."""
        self.flush()
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------ writes

    def add(self, text: str, *, user_id: str = DEFAULT_USER, agent_id: str | None = None,
            session_id: str | None = None, at: datetime | str | None = None,
            tags: Iterable[str] | None = None, memory_type: Kind | str = Kind.FACT,
            tier: Tier | str = Tier.SHORT_TERM,
            truth_category: Truth | str = Truth.CONTEXTUAL,
            metadata: Mapping[str, Any] | None = None,
            confidence: float | Mapping[str, Any] | None = None,
            source: Source | Mapping[str, Any] | None = None,
            privacy: Privacy | str = Privacy.PRIVATE, entities: Iterable[str] | None = None,
            domains: Iterable[str] | None = None, summary: str | None = None,
            shared_with: Iterable[str] | None = None, sensitive: bool = False,
            dedupe: bool = True, infer: bool = False) -> MemoryEntry:
        """Remember `text`. `at` is when it happened; the time it was recorded is now.

        An exact duplicate (same user, same normalised text) corroborates the existing memory
        instead of adding a copy, unless `dedupe=False`. With `infer=True` the facts,
        preferences and events the text states are extracted and consolidated too
        (see `remember_turn`); they link to the returned memory.
        """
        item = {k: v for k, v in locals().items() if k not in ("self", "infer")}
        if infer:
            return self._remember({**item, "dedupe": False}).turn
        return self.add_many([item])[0]

    def remember_turn(self, user_msg: str, assistant_msg: str | None = None, *,
                      user_id: str = DEFAULT_USER, session_id: str,
                      at: datetime | str | None = None, agent_id: str | None = None,
                      speaker: str = "user",
                      metadata: Mapping[str, Any] | None = None) -> turns.Remembered:
        """Record a chat exchange verbatim (short-term context of the session) and consolidate
        what the user stated in it: new facts are added, repeated ones corroborated, changed
        ones supersede the old value. One transaction. `speaker` names the user in what is
        extracted ("Ada lives in Lisbon"; default "User lives in Lisbon"); `metadata` is kept
        with the turn (say, the attention a local model gave each memory)."""
        item = turns.turn_item(user_msg, assistant_msg, user_id=user_id,
                                  session_id=session_id, agent_id=agent_id, at=at)
        item["metadata"] = {**(metadata or {}), **item["metadata"]}
        if not isinstance(speaker, str) or not speaker.strip():
            raise InvalidInput("speaker", f"{speaker!r} is not a name",
                               "pass the user's name or leave the default 'user'")
        if maintenance.overdue(self.store, self.policy, self.clock.now()):
            self.maintain()
        return self._remember(item, text=user_msg, speaker=speaker.strip())

    def _remember(self, item: Mapping[str, Any], *, text: str | None = None,
                  speaker: str = "user") -> turns.Remembered:
        return turns.remember(self.writer, item, text=text, speaker=speaker,
                              extractor=self.extractor, weights=self.weights,
                              near_duplicate=self.policy.near_duplicate)

    def conversation(self, session_id: str, *,
                     user_id: str = DEFAULT_USER) -> builtins.list[dict[str, str]]:
        """The session's recorded turns as chat messages (role, content), oldest first."""
        session = check_id(session_id, "session_id", required=True)
        owner = check_id(user_id, "user_id", required=True)
        assert session is not None and owner is not None
        return turns.conversation(self.store, session, owner)

    def feedback(self, memory_id: str, rating: str,
                 correction: str | None = None) -> MemoryEntry:
        """Rate a memory: "good" (confidence and training weight times 1.5), "bad" (0.5) or
        "correction" (3.0, and `correction` becomes its content). Good and corrected
        memories count as validated by the user."""
        if rating not in FEEDBACK_FACTORS:
            raise InvalidInput("rating", f"{rating!r} is not a rating",
                               f"use one of: {', '.join(FEEDBACK_FACTORS)}")
        if (rating == "correction") != (correction is not None):
            raise InvalidInput("correction", "goes with rating='correction', and only with it",
                               "pass the corrected text with rating='correction'")
        return self.writer.feedback(memory_id, rating, correction)

    def maintain(self) -> maintenance.MaintenanceReport:
        """Apply the tier rules now: promotions and expiries (also run lazily by
        `remember_turn` when `maintenance.every_hours` have passed)."""
        self.flush()
        return maintenance.maintain(self.store, self.policy, self.clock.now(), "engram",
                                    compact=self._compact_due)

    def add_many(self, items: Iterable[Mapping[str, Any]]) -> list[MemoryEntry]:
        """Add several memories (each with `add`'s fields) in one transaction: all or none."""
        return self.writer.add_many(items)

    def update(self, memory_id: str, *, text: str | None = None,
               metadata: Mapping[str, Any] | None = None,
               memory_type: Kind | str | None = None,
               truth_category: Truth | str | None = None,
               privacy: Privacy | str | None = None, summary: str | None = None,
               confidence: float | None = None, at: datetime | str | None = None,
               shared_with: Iterable[str] | None = None,
               sensitive: bool | None = None) -> MemoryEntry:
        """Change a memory's content or attributes; its history keeps the old values."""
        fields = {k: v for k, v in locals().items()
                  if k not in ("self", "memory_id", "confidence") and v is not None}
        return self.writer.update(memory_id, fields, confidence)

    def tag(self, memory_id: str, add: Iterable[str] = (),
            remove: Iterable[str] = ()) -> MemoryEntry:
        """Add and remove tags."""
        added, removed = normalize_labels(add, "tags"), normalize_labels(remove, "tags")
        if not added and not removed:
            raise InvalidInput("tags", "nothing to add or remove", "give at least one tag")
        payload = {"add": list(added), "remove": list(removed),
                   "at": format_time(self.clock.now())}
        return self._change(memory_id, EventType.TAGGED, payload)

    def link(self, memory_id: str, kind: LinkKind | str, target_id: str) -> MemoryEntry:
        """Record that `memory_id` relates to, contradicts, supports or supersedes another."""
        link_kind = parse_enum(LinkKind, kind, "kind")
        if target_id == memory_id:
            raise InvalidInput("target_id", "is the memory itself", "link two different memories")
        payload = {"kind": link_kind.value, "target": target_id,
                   "at": format_time(self.clock.now())}
        return self._change(memory_id, EventType.LINKED, payload, also_exists=target_id)

    def set_tier(self, memory_id: str, tier: Tier | str, reason: str) -> MemoryEntry:
        """Move a memory to another tier; the event keeps the reason."""
        new_tier = parse_enum(Tier, tier, "tier")
        reason = validate.optional_text(reason, "reason") or ""
        if not reason:
            raise InvalidInput("reason", "is empty", "say why the memory changes tier")
        with self.store.transaction() as tx:
            current = require(tx.get(memory_id), memory_id)
            payload = {"from": current.tier.value, "to": new_tier.value, "reason": reason,
                       "at": format_time(self.clock.now())}
            self.writer.append(tx, EventType.TIER_CHANGED, memory_id, payload)
            return require(tx.get(memory_id), memory_id)

    def _change(self, memory_id: str, kind: EventType, payload: dict[str, Any],
                also_exists: str | None = None) -> MemoryEntry:
        return self.writer.change(memory_id, kind, payload, also_exists=also_exists)

    def forget(self, memory_id: str, reason: str | None = None) -> None:
        """Forget for real: drop the memory from every projection, redact its text from earlier
        events (their hashes stay, so the chain verifies), and purge index and WAL residue."""
        payload: dict[str, Any] = {"at": format_time(self.clock.now())}
        if reason:
            payload["reason"] = reason
        with self.store.transaction() as tx:
            require(tx.get(memory_id), memory_id)
            concepts = self._forget_concepts(tx, memory_id)  # summaries that hold its text
            self.writer.append(tx, EventType.FORGOTTEN, memory_id, payload)
        self._access.drop(memory_id)
        self.store.redact_residue()
        self._recompose(concepts, memory_id)

    # ------------------------------------------------------------ reads

    def get(self, memory_id: str) -> MemoryEntry:
        return require(self.store.get(memory_id), memory_id)

    def history(self, memory_id: str) -> list[Event]:
        """Every event that touched the memory, oldest first (redacted if it was forgotten)."""
        events = self.store.history(memory_id)
        if not events:
            raise NotFound(memory_id)
        return events

    def list(self, *, user_id: str | None = None, agent_id: str | None = None,
             session_id: str | None = None, tags: Iterable[str] | None = None,
             memory_type: Kind | str | None = None, tier: Tier | str | None = None,
             since: datetime | str | None = None, until: datetime | str | None = None,
             status: Status | str = Status.ACTIVE, limit: int | None = 100, offset: int = 0,
             newest_first: bool = True) -> builtins.list[MemoryEntry]:
        """Memories matching every filter, newest first. `user_id=None` lists all users;
        `status="all"` includes superseded and expired ones."""
        filters = validate.filters(user_id, agent_id, session_id, tags, memory_type, tier,
                                since, until, statuses=validate.statuses(status))
        if limit is not None:
            validate.check_limit(limit)
        return self.store.select(filters, limit=limit, offset=offset, newest_first=newest_first)

    def count(self, *, user_id: str | None = None, status: Status | str = Status.ACTIVE,
              **filters: Any) -> int:
        """How many memories `list` would give without a limit."""
        return self.store.count(validate.filters(user_id, statuses=validate.statuses(status),
                                                 **filters))

    def search(self, query: str, *, user_id: str = DEFAULT_USER, limit: int = 10,
               agent_id: str | None = None, session_id: str | None = None,
               tags: Iterable[str] | None = None, memory_type: Kind | str | None = None,
               tier: Tier | str | None = None, since: datetime | str | None = None,
               until: datetime | str | None = None, include_superseded: bool = False,
               include_sensitive: bool = True) -> builtins.list[Hit]:
        """The user's memories that best match `query`, best first, each with its score.
        Superseded memories (an old value of something that changed) only on request."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query", "is empty", "say what to search for")
        validate.check_limit(limit)
        statuses = (Status.ACTIVE, Status.SUPERSEDED) if include_superseded else (Status.ACTIVE,)
        filters = validate.filters(check_id(user_id, "user_id", required=True), agent_id,
                                session_id, tags, memory_type, tier, since, until,
                                statuses=statuses, include_sensitive=include_sensitive)
        hits = self.hybrid.search(query, filters, limit, self.clock.now(), self.weights)
        self._access.note([h.memory.id for h in hits])
        return hits

    def assemble(self, query: str | None = None, *, user_id: str = DEFAULT_USER,
                 conversation: Sequence[Mapping[str, str]] = (), budget_tokens: int = 4000,
                 style: str = "openai", instructions: str = "",
                 limits: ctx.Limits = ctx.DEFAULT_LIMITS,
                 summarize: ctx.Summarizer | None = None, limit: int = 50,
                 include_sensitive: bool = True,
                 session_id: str | None = None) -> ctx.ContextPlan:
        """Everything a model needs for the next turn, within `budget_tokens`: recalled
        memories grouped by kind, the latest exchanges verbatim and a summary of older ones.
        `query` defaults to the conversation's last user turn. Only memories that made it
        into the prompt count as accessed; `plan.memory_ids` says which. Pass
        `include_sensitive=False` for a model that runs elsewhere, and the conversation's
        `session_id` so its own recorded turns (already in `conversation`) are not recalled
        a second time."""
        if style not in ctx.STYLES:
            raise InvalidInput("style", f"unknown style {style!r}",
                               f"use one of: {', '.join(ctx.STYLES)}")
        if query is None:
            users = [t.get("content", "") for t in conversation if t.get("role") == "user"]
            query = users[-1] if users else None
        if not isinstance(query, str) or not query.strip():
            raise InvalidInput("query", "is empty", "pass a query or a conversation that ends "
                               "with a user turn")
        validate.check_limit(limit)
        filters = validate.filters(check_id(user_id, "user_id", required=True),
                                include_sensitive=include_sensitive)
        hits = self.hybrid.search(query, filters, limit, self.clock.now(), self.weights)
        hits = self._with_concepts(hits, filters.user_id or DEFAULT_USER)
        if session_id is not None:
            hits = [h for h in hits if h.memory.session_id != session_id
                    or TURN_TAG not in h.memory.tags]
        if self._count is None:
            self._count = ctx.load_counter()
        plan = ctx.build_context(hits, conversation, budget_tokens=budget_tokens, style=style,
                                 count=self._count, limits=limits, summarize=summarize,
                                 instructions=instructions, query=query)
        self._access.note(list(plan.memory_ids))
        return plan

    def context(self, query: str, *, user_id: str = DEFAULT_USER, budget_tokens: int = 1500,
                style: str = "claude", limit: int = 50,
                include_sensitive: bool = True) -> str:
        """The memories relevant to `query`, rendered for a model within `budget_tokens`."""
        plan = self.assemble(query, user_id=user_id, budget_tokens=budget_tokens, style=style,
                             limit=limit, include_sensitive=include_sensitive)
        return plan.text

    def flush(self) -> None:
        """Write batched access statistics now (done on close and every batch)."""
        self._access.flush()

    # ------------------------------------------------------------ the log

    def events(self) -> Iterator[Event]:
        return self.store.events()

    def import_events(self, events: builtins.list[Event]) -> int:
        return self.store.import_events(events)

    def rebuild(self) -> int:
        """Drop every projection and replay the log; returns the number of live memories."""
        self.flush()
        return self.store.rebuild()

    def reembed(self, spec: str, progress: Callable[[int], None] | None = None) -> int:
        """Switch to another embedding model (see `Hybrid.reembed`); returns texts embedded."""
        return self.hybrid.reembed(spec, progress=progress)

    def verify(self) -> ChainReport:
        return self.store.verify()

    def stats(self) -> dict[str, object]:
        return self.store.stats()

