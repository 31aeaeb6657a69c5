#!/usr/bin/env python3
"""Sync benchmark: how fast bundles apply, how big they are, and how long two stores that never
synced take to converge. Keyword only (`embedder=None`), synthetic ~60-byte sentences of varied
words across 10 users; embedded SQLite stores, or PostgreSQL databases with `--store`.

  events/s applied from a bundle   import of one bundle of --size memory events (one
                                   transaction), into an empty store: by the wall clock,
                                   and per CPU second of this process (what a shared
                                   machine's load does not change; on PostgreSQL the
                                   server's own work is not in it)
  bundle bytes per 1,000 memories  gzip'd bundle of 1,000 added memories
  re-sync with nothing new         export for a peer that holds everything + import, ms
                                   (median of 20)
  two stores converge              each holds --size events of its own, never synced: a
                                   bundle each way, written and applied, until both checksums
                                   are equal

Prints a markdown table and the machine's load average. Not a test: run it by hand.

    .venv/bin/python bench/sync.py                              # --size 100000
    .venv/bin/python bench/sync.py --size 5000                  # a quick look
    .venv/bin/python bench/sync.py --size 20000 --store pgserver
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engram import ManualClock, Memory
from engram.store.migrate import checksum
from stores import STORE_HELP, Locations

WORDS = ("garden tea lisbon berlin sister moved porto jazz python dog cat bicycle bees "
         "concert morning evening coffee train museum river mountain recipe").split()
Row = tuple[str, str, str]


def memories(n: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    return [{"text": " ".join(rng.choices(WORDS, k=9)) + f" #{seed}-{i}",
             "user_id": f"user{i % 10}", "session_id": f"s{i % 50}",
             "metadata": {"dia_id": f"D{i % 40}:{i % 13}"}} for i in range(n)]


def store(locs: Locations, name: str, n: int, seed: int, hours: int = 0) -> Memory:
    mem = Memory(locs.new(name), embedder=None, device_id=name,
                 clock=ManualClock(datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=hours)))
    items = memories(n, seed)
    for start in range(0, n, 1000):
        mem.add_many(items[start:start + 1000])
    return mem


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_apply(locs: Locations, size: int) -> list[Row]:
    with store(locs, "source", size, 1) as source, \
            Memory(locs.new("sink"), embedder=None) as sink:
        path = locs.root / "all.bundle"
        source.sync_export(path)
        cpu = time.process_time()
        took = timed(lambda: sink.sync_import(path))
        cpu = time.process_time() - cpu
    return [("events/s applied from a bundle", f"{size / took:,.0f}",
             f"{size:,} memory events, one transaction, into an empty store ({took:.1f} s)"),
            ("events/s applied, per CPU second", f"{size / cpu:,.0f}",
             f"the same import: {cpu:.1f} s of this process's CPU time")]


def bench_bytes(locs: Locations) -> Row:
    with store(locs, "bytes", 1000, 2) as mem:
        report = mem.sync_export(locs.root / "bytes.bundle")
    return ("bundle bytes per 1,000 memories", f"{report.bytes:,}",
            f"{report.bytes / report.events:.0f} bytes per memory event, gzip'd JSON lines")


def bench_resync(locs: Locations) -> Row:
    root = locs.root
    with store(locs, "a", 1000, 3) as a, \
            Memory(locs.new("b"), embedder=None, device_id="b") as b:
        b.sync_import(_bundle(a, root / "a.bundle", "b"))
        a.sync_import(_bundle(b, root / "b.bundle", "a"))
        runs = [timed(lambda: b.sync_import(_bundle(a, root / "again.bundle", "b")))
                for _ in range(20)]
    return ("re-sync with nothing new", f"{statistics.median(runs) * 1000:.1f} ms",
            "export for a peer that holds everything, then import it (median of 20)")


def bench_converge(locs: Locations, size: int) -> Row:
    root = locs.root
    with store(locs, "left", size, 4) as left, \
            store(locs, "right", size, 5, hours=1) as right:
        def converge() -> None:
            to_right, to_left = _bundle(left, root / "l.bundle", "right"), \
                _bundle(right, root / "r.bundle", "left")
            right.sync_import(to_right)
            left.sync_import(to_left)
        took = timed(converge)
        assert checksum(left.store) == checksum(right.store)
    return ("two stores converge", f"{took:.1f} s",
            f"{size:,} events each, never synced: a bundle each way, equal checksums")


def _bundle(mem: Memory, path: Path, peer: str) -> Path:
    mem.sync_export(path, peer=peer)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000,
                        help="events per store for the apply and converge rows")
    parser.add_argument("--store", default="sqlite", help=STORE_HELP)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="engram-bench-sync-"))
    locs = Locations(root, args.store)
    try:
        kind = locs.describe()
        rows = [*bench_apply(locs, args.size), bench_bytes(locs), bench_resync(locs),
                bench_converge(locs, args.size)]
        # Over HTTP: bench/sync_http.py (two `engram serve` processes on loopback).
    finally:
        locs.close()
        shutil.rmtree(root, ignore_errors=True)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"Sync, {kind}, Python {platform.python_version()}, --size {args.size:,}, "
          f"{os.cpu_count()} CPUs, load average at the end {load}\n")
    print("| measure | result | how |\n|---|---|---|")
    for name, value, how in rows:
        print(f"| {name} | {value} | {how} |")


if __name__ == "__main__":
    main()
