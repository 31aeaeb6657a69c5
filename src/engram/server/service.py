"""The operations the REST API, the proxy and the MCP server share, with access checks.

One `Memory` serves every request; it is not thread-safe, so each operation holds the lock
(FastAPI runs plain handlers in a thread pool). The checks live here once, so REST and MCP
cannot drift apart.
"""

from __future__ import annotations

import builtins
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from engram.capture import turns
from engram.context import ContextPlan
from engram.errors import InvalidInput, NotFound
from engram.lifecycle import maintenance
from engram.log.events import Event
from engram.memory import Memory
from engram.model import MemoryEntry, check_id, format_time
from engram.query import Hit
from engram.server.access import (
    ADMIN,
    READ,
    WRITE,
    Forbidden,
    Principal,
    Unauthorized,
    can_read,
    can_write,
)
from engram.server.keys import KeyRing
from engram.server.metrics import MAINTENANCE_DURATION, MAINTENANCE_RUNS
from engram.server.shared import shared_state
from engram.server.usage import ContextUsage, Sample
from engram.store import DEFAULT_DATA

T = TypeVar("T")
INCOMPLETE = "incomplete"  # the tag of an exchange whose answer the upstream cut short
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
DEFAULT_MAX_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What `engram serve` was started with."""

    data: str | Path = DEFAULT_DATA
    host: str = "127.0.0.1"
    port: int = 8765
    upstream: str | None = None  # an OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1
    upstream_key: str | None = None
    upstream_local: bool | None = None  # None: local when its host is a loopback address
    model: str | None = None  # or a provider spec (engram.llm.load_provider)
    require_key: bool = False  # refuse unauthenticated loopback requests even with no key
    max_body_bytes: int = DEFAULT_MAX_BODY
    send_sensitive: bool = False  # allow sensitive memories in contexts for remote upstreams
    proxy_budget_tokens: int = 1500
    readers: int = 2  # extra store connections for reads (engram serve opens them)
    maintenance_check_s: float = 300.0  # how often to see whether maintenance is due
    allowed_hosts: tuple[str, ...] = ()  # names besides the bound one (--allow-host)
    upstream_timeout_s: float = 30.0  # to an upstream's first byte (--upstream-timeout)
    redis: str | None = None  # what workers share (--redis URL)
    rate_limit: int | None = None  # requests per minute per key (--rate-limit)
    workers: int = 1  # processes serving the store (--workers)


class Service:
    """`memory` does every write, one at a time under `lock`; reads go to `readers` (more
    `Memory` objects on the same store, each with its own connection) when there are any,
    so searches run beside each other and beside a write (WAL readers do not block)."""

    def __init__(self, memory: Memory, config: ServerConfig,
                 readers: Sequence[Memory] = ()) -> None:
        self.memory, self.config = memory, config
        self.lock = threading.RLock()
        self.shared = shared_state(config.redis, config.rate_limit)
        self.keys = KeyRing(memory.store)
        self.usage = ContextUsage(memory.store)
        self._readers: queue.LifoQueue[Memory] | None = None
        if readers:
            self._readers = queue.LifoQueue()
            for reader in readers:
                self._readers.put(reader)
        self._all_readers = tuple(readers)

    @contextmanager
    def reading(self) -> Iterator[Memory]:
        """A `Memory` for one read: a free reader, or the writer under the lock."""
        if self._readers is None:
            with self.lock:
                yield self.memory
            return
        reader = self._readers.get()
        try:
            yield reader
        finally:
            self._readers.put(reader)

    def locked(self, fn: Callable[[], T]) -> T:
        with self.lock:
            return fn()

    def maintain_if_due(self) -> bool:
        """Run the tier rules when `maintenance.every_hours` have passed (from a background
        task, so no request pays for it); whether it ran."""
        with self.lock:
            if not maintenance.overdue(self.memory.store, self.memory.policy,
                                       self.memory.clock.now()) or \
                    not self.shared.claim("maintenance", self.config.maintenance_check_s):
                return False
            self._maintain("scheduled")
            return True

    def _maintain(self, trigger: str) -> dict[str, Any]:
        started = time.perf_counter()
        report: dict[str, Any] = self.memory.maintain().to_dict()
        MAINTENANCE_RUNS.labels(trigger).inc()
        MAINTENANCE_DURATION.observe(time.perf_counter() - started)
        return report

    def close(self) -> None:
        for reader in self._all_readers:
            reader.close()  # writes out their batched access counts
        with self.lock:
            self.usage.flush()
            self.memory.close()
        self.shared.close()

    # ------------------------------------------------------------ who is asking

    def authenticate(self, token: str | None, client_host: str | None) -> Principal:
        with self.reading() as mem:
            keys = KeyRing(mem.store)
            if client_host in LOOPBACK and not self.config.require_key \
                    and not keys.exist():
                return Principal.local()  # any token is ignored: OpenAI clients must send one
            if token:
                return keys.authenticate(token)
        raise Unauthorized("no API key was sent", "send `Authorization: Bearer egm_…` "
                           "(create one with `engram keys create --user NAME`)")

    # ------------------------------------------------------------ reads

    def visible(self, who: Principal, memory_id: str) -> MemoryEntry:
        """The memory if `who` may read it; NotFound otherwise (existence is not leaked)."""
        who.require(READ)
        with self.reading() as mem:
            entry = mem.get(memory_id)
        if not can_read(who, entry):
            raise NotFound(memory_id)
        return entry

    def owned(self, who: Principal, memory_id: str) -> MemoryEntry:
        """The memory if `who` may change it."""
        who.require(WRITE)
        with self.lock:
            entry = self.memory.get(memory_id)
        if not can_read(who, entry):
            raise NotFound(memory_id)
        if not can_write(who, entry):
            raise Forbidden("id", f"memory {memory_id} belongs to another user",
                            "only its owner may change or forget it")
        return entry

    def history(self, who: Principal, memory_id: str) -> list[Event]:
        self.visible(who, memory_id)
        with self.reading() as mem:
            return mem.history(memory_id)

    def list(self, who: Principal, user_id: str | None,
             **filters: Any) -> builtins.list[MemoryEntry]:
        """Memories of `user_id` (default: the key's user) that `who` may read."""
        who.require(READ)
        if user_id is None and ADMIN not in who.scopes:
            user_id = who.user_id  # a key lists its own user's memories unless told otherwise
        with self.reading() as mem:
            entries = mem.list(user_id=user_id, **filters)
        return [e for e in entries if can_read(who, e)]

    def window(self, who: Principal, session_id: str,
               user_id: str | None) -> builtins.list[dict[str, str]]:
        """The session's recorded turns, oldest first, from the shared cache when hot."""
        who.require(READ)
        user = who.acting_user(user_id)
        session = check_id(session_id, "session_id", required=True)
        assert session is not None

        def load() -> builtins.list[dict[str, str]]:
            with self.reading() as mem:
                return mem.conversation(session, user_id=user)

        return self.shared.window(user, session, load)

    def search(self, who: Principal, query: str, user_id: str | None,
               **options: Any) -> builtins.list[Hit]:
        who.require(READ)
        user = who.acting_user(user_id)
        with self.reading() as mem:
            return mem.search(query, user_id=user, **options)

    def context(self, who: Principal, *, query: str | None, user_id: str | None,
                conversation: Sequence[Mapping[str, str]] = (), budget_tokens: int = 1500,
                style: str = "claude", limit: int = 50, include_sensitive: bool = True,
                via: str = "context", session_id: str | None = None) -> ContextPlan:
        """What a model should see for the user's next turn; recorded for the dashboard."""
        who.require(READ)
        user = who.acting_user(user_id)
        with self.reading() as mem:
            plan = mem.assemble(query, user_id=user, conversation=conversation,
                                budget_tokens=budget_tokens, style=style, limit=limit,
                                include_sensitive=include_sensitive, session_id=session_id)
        with self.lock:
            self.usage.record(Sample(format_time(self.memory.clock.now()), user,
                                     plan.budget_tokens, plan.tokens_used,
                                     len(plan.memories), via,
                                     len(plan.memories) + plan.left_out_memories))
        return plan

    # ------------------------------------------------------------ writes

    def remember(self, who: Principal, text: str, user_id: str | None,
                 **fields: Any) -> MemoryEntry:
        who.require(WRITE)
        user = who.acting_user(user_id)
        with self.lock:
            try:
                entry = self.memory.add(text, user_id=user, **fields)
            except InvalidInput as exc:  # add() reports fields as items[0].<name>
                raise InvalidInput(exc.field.removeprefix("items[0]."), exc.problem,
                                   exc.fix) from None
        self._touched(entry)
        return entry

    def update(self, who: Principal, memory_id: str, *, add_tags: Sequence[str] = (),
               remove_tags: Sequence[str] = (), **changes: Any) -> MemoryEntry:
        before = self.owned(who, memory_id)
        with self.lock:
            entry = self.memory.get(memory_id)
            if changes:
                entry = self.memory.update(memory_id, **changes)
            if add_tags or remove_tags:
                entry = self.memory.tag(memory_id, add=add_tags, remove=remove_tags)
            if not changes and not add_tags and not remove_tags:
                self.memory.update(memory_id)  # raises: nothing to change
        self._touched(before)
        return entry

    def forget(self, who: Principal, memory_id: str, reason: str | None = None) -> None:
        entry = self.owned(who, memory_id)
        with self.lock:
            self.memory.forget(memory_id, reason=reason)
        self._touched(entry)

    def feedback(self, who: Principal, memory_id: str, rating: str,
                 correction: str | None = None) -> MemoryEntry:
        entry = self.owned(who, memory_id)
        with self.lock:
            changed = self.memory.feedback(memory_id, rating, correction)
        self._touched(entry)
        return changed

    def turn(self, who: Principal, user_msg: str, assistant_msg: str | None, *,
             user_id: str | None, session_id: str, agent_id: str | None = None,
             at: str | None = None, complete: bool = True) -> Any:
        """Record an exchange and extract from it; one whose answer was cut short is kept
        verbatim, tagged `incomplete`, and nothing is extracted from it."""
        who.require(WRITE)
        user = who.acting_user(user_id)
        with self.lock:
            if not complete:
                item = turns.turn_item(user_msg, assistant_msg, user_id=user,
                                       session_id=session_id, agent_id=agent_id, at=at)
                item["tags"] = [*item["tags"], INCOMPLETE]
                done: Any = self.memory.add(**item)
            else:
                done = self.memory.remember_turn(user_msg, assistant_msg, user_id=user,
                                                 session_id=session_id, agent_id=agent_id,
                                                 at=at)
        self.shared.wrote(user, session_id)
        return done

    def _touched(self, entry: MemoryEntry) -> None:
        """Tell the shared cache that `entry`'s session changed, once the write committed."""
        if entry.session_id is not None:
            self.shared.wrote(entry.user_id, entry.session_id)

    def maintain(self, who: Principal) -> dict[str, Any]:
        who.require(ADMIN)
        with self.lock:
            return self._maintain("request")
