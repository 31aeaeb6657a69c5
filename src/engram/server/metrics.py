"""What an operator watches, in Prometheus' text format through the official client library:
requests and their latency per route, the proxy's upstream (latency, errors), maintenance
runs, and, read from the store at each scrape, memories per tier and type, events, and the
sync lag of each peer.

With several workers (`engram serve --workers N`) every process counts its own; the parent
points PROMETHEUS_MULTIPROC_DIR at one folder and a scrape of any worker sums them all.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engram.memory import Memory
from engram.sync import peers
from engram.sync import vector as vectors

MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REQUESTS = Counter("engram_http_requests", "HTTP requests answered", ["method", "route",
                                                                      "status"])
LATENCY = Histogram("engram_http_request_duration_seconds", "Time to answer, per route",
                    ["method", "route"])
UPSTREAM_LATENCY = Histogram("engram_upstream_duration_seconds",
                             "The proxy's upstream: time to the start of its answer")
UPSTREAM_ERRORS = Counter("engram_upstream_errors", "The proxy's upstream failing, by kind",
                          ["kind"])
MAINTENANCE_RUNS = Counter("engram_maintenance_runs", "Tier maintenance runs", ["trigger"])
MAINTENANCE_DURATION = Histogram("engram_maintenance_duration_seconds",
                                 "How long a maintenance run took")


class Instrument:
    """ASGI middleware: count and time every request under its route's template (an unknown
    path counts as `unmatched`, so probing cannot grow the label set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or (
                "/mcp" if scope["path"].startswith("/mcp") else "unmatched")
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


class StoreCollector(Collector):
    """Gauges read from the store when Prometheus scrapes: its counts and each peer's lag."""

    def __init__(self, reading: Callable[[], AbstractContextManager[Memory]]) -> None:
        self.reading = reading

    def collect(self) -> Iterator[Metric]:
        with self.reading() as mem:
            stats = mem.store.stats()
            known = peers.load(mem.store)
            held = vectors.of_heads(mem.store.heads())
        tiers = GaugeMetricFamily("engram_memories", "Memories in the store, per tier",
                                  labels=["tier"])
        by_tier: dict[str, int] = stats.get("by_tier", {})  # type: ignore[assignment]
        by_type: dict[str, int] = stats.get("by_type", {})  # type: ignore[assignment]
        for tier, count in sorted(by_tier.items()):
            tiers.add_metric([str(tier)], float(count))
        yield tiers
        kinds = GaugeMetricFamily("engram_memories_by_type", "Memories in the store, per type",
                                  labels=["type"])
        for kind, count in sorted(by_type.items()):
            kinds.add_metric([str(kind)], float(count))
        yield kinds
        yield GaugeMetricFamily("engram_events", "Events in the log",
                                value=float(str(stats.get("events", 0))))
        lag = GaugeMetricFamily("engram_sync_lag_events", "Events this store holds that a "
                                "peer is not known to hold", labels=["peer"])
        age = GaugeMetricFamily("engram_sync_last_exchange_age_seconds", "Seconds since the "
                                "last exchange with a peer", labels=["peer"])
        now = datetime.now(UTC)
        for name, peer in sorted(known.items()):
            lag.add_metric([name], float(vectors.ahead(held, dict(peer.vector))))
            if peer.last_exchange is not None:
                age.add_metric([name], (now - peer.last_exchange).total_seconds())
        yield lag
        yield age


def exposition(reading: Callable[[], AbstractContextManager[Memory]]) -> bytes:
    """The text a scrape gets: this process's counters (every worker's, when there are
    several) and the store's gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        counted = CollectorRegistry()
        multiprocess.MultiProcessCollector(counted)  # type: ignore[no-untyped-call]
        counters = generate_latest(counted)
    else:
        from prometheus_client import REGISTRY

        counters = generate_latest(REGISTRY)
    store = CollectorRegistry(auto_describe=False)
    store.register(StoreCollector(reading))
    return counters + generate_latest(store)
