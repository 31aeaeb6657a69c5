"""What the workers of one `engram serve` share: per-key rate limits (`--rate-limit`, requests
per minute) and the cache of hot session windows (a session's recorded turns, which a chat UI
asks for before every turn). In Redis (`--redis URL`) when several workers serve one store;
in this process otherwise.

The cache is keyed by a generation that every write to a session bumps, after its
transaction committed, so no worker reads a window older than the last acknowledged write:
a reader that raced a write at worst fills an entry under the old generation, which nobody
asks for again. Redis may go away: then every call falls back at once (a miss, an allowed
request) for `RETRY_S`, and the server keeps answering from the store, without its cache.
An entry lives `TTL_S` at most, which bounds what a write made while Redis was unreachable
could leave stale.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

TTL_S = 60
RETRY_S = 1.0
WINDOW_S = 60  # --rate-limit counts requests per key in fixed one-minute windows
log = logging.getLogger("engram.server")
Turns = list[dict[str, str]]


class Shared(Protocol):
    remote: bool

    def allow(self, who: str) -> float | None:
        """None when `who` may make another request now; else seconds until it may."""
        ...

    def window(self, user: str, session: str, load: Callable[[], Turns]) -> Turns: ...

    def wrote(self, user: str | None = None, session: str | None = None) -> None:
        """A write touched this session (no session: any session) has committed."""
        ...

    def claim(self, name: str, seconds: float) -> bool:
        """Whether this worker is the one to do `name` now (the others skip it)."""
        ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


class Local:
    """One worker: counters and the cache in this process."""

    remote = False

    def __init__(self, rate_limit: int | None) -> None:
        self.rate_limit = rate_limit
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}
        self._cache: dict[tuple[str, str], tuple[int, float, Turns]] = {}
        self._gens: dict[tuple[str, str], int] = {}
        self._all = 0

    def allow(self, who: str) -> float | None:
        if self.rate_limit is None:
            return None
        now = time.time()
        window = int(now // WINDOW_S)
        with self._lock:
            self._counts = {k: v for k, v in self._counts.items() if k[1] == window}
            count = self._counts[(who, window)] = self._counts.get((who, window), 0) + 1
        return None if count <= self.rate_limit else WINDOW_S - now % WINDOW_S

    def window(self, user: str, session: str, load: Callable[[], Turns]) -> Turns:
        key = (user, session)
        with self._lock:
            gen = self._gens.get(key, 0) + self._all
            hit = self._cache.get(key)
        if hit is not None and hit[0] == gen and hit[1] > time.monotonic():
            return hit[2]
        turns = load()
        with self._lock:
            self._cache[key] = (gen, time.monotonic() + TTL_S, turns)
        return turns

    def wrote(self, user: str | None = None, session: str | None = None) -> None:
        with self._lock:
            if user is None or session is None:
                self._all += 1
            else:
                self._gens[(user, session)] = self._gens.get((user, session), 0) + 1

    def claim(self, name: str, seconds: float) -> bool:
        return True

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None


class Redis:
    """Several workers: the counters and the cache in Redis, shared by all of them."""

    remote = True

    def __init__(self, url: str, rate_limit: int | None, prefix: str = "engram") -> None:
        import redis

        self.rate_limit, self.prefix = rate_limit, prefix
        self.client = redis.Redis.from_url(url, socket_timeout=0.5,
                                           socket_connect_timeout=0.5, decode_responses=True)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._down_until = 0.0

    def allow(self, who: str) -> float | None:
        if self.rate_limit is None:
            return None
        now = time.time()
        key = f"{self.prefix}:rate:{who}:{int(now // WINDOW_S)}"

        def count() -> int:
            pipe = self.client.pipeline()
            pipe.incr(key)
            pipe.expire(key, WINDOW_S + 1)
            return int(pipe.execute()[0])

        seen = self._call(count)
        if seen is None or seen <= self.rate_limit:
            return None  # without Redis, every request is let through
        return WINDOW_S - now % WINDOW_S

    def window(self, user: str, session: str, load: Callable[[], Turns]) -> Turns:
        gen_key = self._gen_key(user, session)

        def cached() -> tuple[str, str | None]:
            gens = [str(g or 0) for g in self.client.mget(gen_key, f"{self.prefix}:gen:all")]
            gen = ".".join(gens)
            value = self.client.get(f"{gen_key}:{gen}")
            return gen, None if value is None else str(value)

        found = self._call(cached)
        if found is not None and found[1] is not None:
            turns: Turns = json.loads(found[1])
            return turns
        turns = load()
        if found is not None:
            self._call(lambda: self.client.set(f"{gen_key}:{found[0]}", json.dumps(turns),
                                               ex=TTL_S))
        return turns

    def wrote(self, user: str | None = None, session: str | None = None) -> None:
        key = f"{self.prefix}:gen:all" if user is None or session is None \
            else self._gen_key(user, session)
        self._call(lambda: self.client.incr(key))

    def claim(self, name: str, seconds: float) -> bool:
        won = self._call(lambda: self.client.set(f"{self.prefix}:claim:{name}", "1",
                                                 nx=True, px=int(seconds * 1000)))
        return bool(won)

    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self.client.close()

    def _gen_key(self, user: str, session: str) -> str:
        return f"{self.prefix}:window:{json.dumps([user, session])}"

    def _call(self, operation: Callable[[], Any]) -> Any:
        """`operation`'s result, or None while Redis cannot be reached (tried again after
        RETRY_S, so a dead Redis costs each request nothing)."""
        if time.monotonic() < self._down_until:
            return None
        try:
            return operation()
        except self._errors as exc:
            self._down_until = time.monotonic() + RETRY_S
            log.warning("redis: %s; serving without it for %.0f s", exc, RETRY_S)
            return None


def shared_state(redis_url: str | None, rate_limit: int | None) -> Shared:
    return Redis(redis_url, rate_limit) if redis_url else Local(rate_limit)
