#!/usr/bin/env python3
"""Sync benchmark: how fast bundles apply, how big they are, and how long two stores that never
synced take to converge. Embedded SQLite stores, keyword only (`embedder=None`), synthetic
~60-byte sentences of varied words across 10 users.

  events/s applied from a bundle   import of one bundle of --size memory events (one
                                   transaction), into an empty store
  bundle bytes per 1,000 memories  gzip'd bundle of 1,000 added memories
  re-sync with nothing new         export for a peer that holds everything + import, ms
                                   (median of 20)
  two stores converge              each holds --size events of its own, never synced: a
                                   bundle each way, written and applied, until both checksums
                                   are equal

Prints a markdown table. Not a test: run it by hand.

    .venv/bin/python bench/sync.py                 # --size 100000
    .venv/bin/python bench/sync.py --size 5000     # a quick look
"""

from __future__ import annotations

import argparse
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

WORDS = ("garden tea lisbon berlin sister moved porto jazz python dog cat bicycle bees "
         "concert morning evening coffee train museum river mountain recipe").split()
Row = tuple[str, str, str]


def memories(n: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    return [{"text": " ".join(rng.choices(WORDS, k=9)) + f" #{seed}-{i}",
             "user_id": f"user{i % 10}", "session_id": f"s{i % 50}",
             "metadata": {"dia_id": f"D{i % 40}:{i % 13}"}} for i in range(n)]


def store(root: Path, name: str, n: int, seed: int, hours: int = 0) -> Memory:
    mem = Memory(root / name, embedder=None, device_id=name,
                 clock=ManualClock(datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=hours)))
    items = memories(n, seed)
    for start in range(0, n, 1000):
        mem.add_many(items[start:start + 1000])
    return mem


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_apply(root: Path, size: int) -> Row:
    with store(root, "source", size, 1) as source, Memory(root / "sink", embedder=None) as sink:
        path = root / "all.bundle"
        source.sync_export(path)
        took = timed(lambda: sink.sync_import(path))
    return ("events/s applied from a bundle", f"{size / took:,.0f}",
            f"{size:,} memory events, one transaction, into an empty store ({took:.1f} s)")


def bench_bytes(root: Path) -> Row:
    with store(root, "bytes", 1000, 2) as mem:
        report = mem.sync_export(root / "bytes.bundle")
    return ("bundle bytes per 1,000 memories", f"{report.bytes:,}",
            f"{report.bytes / report.events:.0f} bytes per memory event, gzip'd JSON lines")


def bench_resync(root: Path) -> Row:
    with store(root, "a", 1000, 3) as a, Memory(root / "b", embedder=None, device_id="b") as b:
        b.sync_import(_bundle(a, root / "a.bundle", "b"))
        a.sync_import(_bundle(b, root / "b.bundle", "a"))
        runs = [timed(lambda: b.sync_import(_bundle(a, root / "again.bundle", "b")))
                for _ in range(20)]
    return ("re-sync with nothing new", f"{statistics.median(runs) * 1000:.1f} ms",
            "export for a peer that holds everything, then import it (median of 20)")


def bench_converge(root: Path, size: int) -> Row:
    with store(root, "left", size, 4) as left, store(root, "right", size, 5, hours=1) as right:
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
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="engram-bench-sync-"))
    try:
        rows = [bench_apply(root / "apply", args.size), bench_bytes(root / "bytes"),
                bench_resync(root / "resync"), bench_converge(root / "converge", args.size)]
        # HTTP rows go here (`engram sync peer URL --key` between two `engram serve` on
        # loopback): functions returning a Row, like the ones above.
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"Sync, embedded SQLite, Python {platform.python_version()}, "
          f"--size {args.size:,}\n")
    print("| measure | result | how |\n|---|---|---|")
    for name, value, how in rows:
        print(f"| {name} | {value} | {how} |")


if __name__ == "__main__":
    main()
