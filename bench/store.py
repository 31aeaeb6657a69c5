#!/usr/bin/env python3
"""Store benchmark: how fast the embedded SQLite store writes, rebuilds and searches.

Measures, on synthetic conversation memories (~120-byte sentences of varied words, 10 users,
tags, metadata {"dia_id": ...}):

  add, one at a time          memories/s, one transaction each (median of --repeats stores)
  add_many, batches of 1000   memories/s for the first 10k (median of --repeats stores) and
                              from 0 to --max on one store, plus the last 10k batches alone
  bytes on disk per memory    the store directory's files after close(), at 10k and --max
  rebuild()                   drop projections and replay the log, at --max
  search (keyword)            p50 / p95 latency of 200 user-scoped queries at --max

Keyword only (`embedder=None`): what vectors cost is measured by bench/recall_scale.py.
`--store` runs the same measurements on PostgreSQL (see bench/stores.py).

Prints a markdown table. Not a test: run it by hand (`make bench-store`):

    .venv/bin/python bench/store.py                       # --max 100000 --one-at-a-time 5000
    .venv/bin/python bench/store.py --max 20000 --one-at-a-time 1000   # a quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from engram import Memory, MemoryEntry
from stores import STORE_HELP, Locations

BATCH = 1000
FIRST = 10_000
USERS = [f"user-{n:02d}" for n in range(10)]
NAMES = """Caroline Melanie Oscar Jon Gina Maria Audrey Andrew James Deborah Evan Sam Calvin Dave
Joanna Nate Tim John Jolene Priya Ravi Lena Tomas Yuki Amara Diego Hana Felix Nora Omar""".split()
VERBS = """adopted visited painted cooked finished started borrowed repaired planned bought sold
watched read wrote joined left booked cancelled learned taught photographed collected planted
ran hiked baked recorded sketched organised rescued celebrated""".split()
ADJECTIVES = """tiny old bright quiet red wooden noisy gentle spicy rare local handmade vintage
crowded sunny rainy secret favourite broken shiny""".split()
NOUNS = """puppy kitten guitar painting garden bicycle novel recipe marathon violin camera
museum festival workshop kayak telescope quilt pottery sculpture concert podcast notebook
lantern orchard greenhouse aquarium bakery library canoe hammock piano sourdough mural
fountain vineyard observatory bookshop tandem sailboat""".split()
PLACES = ["Paris", "Lisbon", "Kyoto", "Boston", "Denver", "Oslo", "Nairobi", "Austin",
          "Seattle", "Porto", "Dublin", "Hanoi", "Valencia", "Toronto", "Melbourne", "the lake",
          "the mountains", "the coast", "the city centre", "the old town"]
WHEN = ["last weekend", "yesterday", "in May", "after work", "on her birthday",
        "with friends", "for the first time", "during the holidays", "on Sunday morning",
        "before the trip", "with her sister", "at the community centre"]
TAGS = """pets music art travel food family health work hobbies sports books friends home
outdoors learning events""".split()


def _sentence(rng: random.Random) -> str:
    """One memory of about 120 bytes: a few clauses about people, things, places and times."""
    parts: list[str] = []
    while sum(len(p) + 2 for p in parts) < 105:
        parts.append(f"{rng.choice(NAMES)} {rng.choice(VERBS)} a {rng.choice(ADJECTIVES)} "
                     f"{rng.choice(NOUNS)} in {rng.choice(PLACES)} {rng.choice(WHEN)}")
    return "; ".join(parts)[:130].rstrip(" ;") + "."


def memories(seed: int) -> Iterator[dict[str, Any]]:
    """An endless, seeded stream of `add` items as a conversation importer would send them."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    number = 0
    while True:
        session, turn = divmod(number, 20)
        yield {
            "text": _sentence(rng),
            "user_id": rng.choice(USERS),
            "session_id": f"s{session}",
            "tags": rng.sample(TAGS, rng.randint(1, 3)),
            "metadata": {"dia_id": f"D{session}:{turn}"},
            "at": start + timedelta(minutes=7 * number),
        }
        number += 1


def _take(stream: Iterator[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return [next(stream) for _ in range(n)]


def _timed(action: Callable[[], object]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _add_each(mem: Memory, items: list[dict[str, Any]]) -> list[MemoryEntry]:
    return [mem.add(**i) for i in items]


def bench_one_at_a_time(locs: Locations, n: int, repeats: int) -> float:
    rates = []
    for repeat in range(repeats):
        items = _take(memories(100 + repeat), n)
        with Memory(locs.new(f"single-{repeat}"), embedder=None) as mem:
            rates.append(n / _timed(partial(_add_each, mem, items)))
    return statistics.median(rates)


def _add_batches(mem: Memory, stream: Iterator[dict[str, Any]], n: int) -> float:
    """Add n memories in batches of BATCH; the seconds spent inside add_many."""
    spent = 0.0
    for done in range(0, n, BATCH):
        batch = _take(stream, min(BATCH, n - done))
        spent += _timed(partial(mem.add_many, batch))
    return spent


def bench_batches(locs: Locations, n_max: int, repeats: int) -> dict[str, float]:
    first = min(FIRST, n_max)
    first_rates = []
    for repeat in range(1, repeats):  # extra fresh stores, only for the first 10k
        with Memory(locs.new(f"batch-{repeat}"), embedder=None) as mem:
            first_rates.append(first / _add_batches(mem, memories(200 + repeat), first))

    main = locs.new("batch-0")
    stream = memories(200)
    mem = Memory(main, embedder=None)
    spent = _add_batches(mem, stream, first)
    first_rates.append(first / spent)
    mem.close()
    out = {"first_rate": statistics.median(first_rates), "first_bytes": locs.bytes_on_disk(main),
           "first_count": first}

    mem = Memory(main, embedder=None)
    rest = n_max - first
    last = min(FIRST, rest)
    spent += _add_batches(mem, stream, rest - last)
    last_spent = _add_batches(mem, stream, last)
    spent += last_spent
    out |= {"max_rate": n_max / spent, "last_rate": last / last_spent if last else 0.0,
            "count": mem.count()}
    mem.close()
    out["max_bytes"] = locs.bytes_on_disk(main)
    return out


def bench_rebuild(store: str | Path, repeats: int) -> tuple[float, int]:
    times = []
    with Memory(store, embedder=None) as mem:
        for _ in range(repeats):
            times.append(_timed(mem.rebuild))
            if times[0] > 30:  # not cheap: one run is enough
                break
    return statistics.median(times), len(times)


def bench_search(store: str | Path, queries: int, repeats: int) -> tuple[float, float, int]:
    rng = random.Random(7)
    vocabulary = NAMES + VERBS + NOUNS + ADJECTIVES + TAGS
    asked = [(" ".join(rng.sample(vocabulary, rng.randint(2, 5))), rng.choice(USERS))
             for _ in range(queries)]
    p50s, p95s = [], []
    with Memory(store, embedder=None) as mem:
        for query, user in asked[:20]:  # warm the page cache
            mem.search(query, user_id=user, limit=10)
        for _ in range(repeats):
            latencies = []
            for query, user in asked:
                began = time.perf_counter()
                mem.search(query, user_id=user, limit=10)
                latencies.append(time.perf_counter() - began)
            p50s.append(_percentile(latencies, 0.50))
            p95s.append(_percentile(latencies, 0.95))
    return statistics.median(p50s), statistics.median(p95s), repeats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max", type=int, default=100_000,
                        help="memories to add with add_many (default 100000)")
    parser.add_argument("--one-at-a-time", type=int, default=5_000,
                        help="memories to add with add, one call each (default 5000)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="repeats of the cheap measurements; the median is reported")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="write the stores here and keep them")
    parser.add_argument("--store", default="sqlite", help=STORE_HELP)
    args = parser.parse_args()
    if args.max < BATCH or args.one_at_a_time < 1 or args.repeats < 1:
        parser.error("--max must be >= 1000, --one-at-a-time and --repeats >= 1")

    root = args.keep or Path(tempfile.mkdtemp(prefix="engram-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    locs = Locations(root, args.store)
    try:
        single = bench_one_at_a_time(locs, args.one_at_a_time, args.repeats)
        batches = bench_batches(locs, args.max, args.repeats)
        rebuild_s, rebuild_runs = bench_rebuild(locs.at("batch-0"), args.repeats)
        p50, p95, search_runs = bench_search(locs.at("batch-0"), args.queries, args.repeats)
        engine = locs.describe()
    finally:
        if args.keep is None:
            locs.close()
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)

    first, top, r = batches["first_count"], args.max, args.repeats
    rows = [
        (f"add, one at a time ({args.one_at_a_time:,})", f"{single:,.0f} memories/s",
         f"median of {r} stores"),
        (f"add_many x{BATCH}, 0 -> {first:,}", f"{batches['first_rate']:,.0f} memories/s",
         f"median of {r} stores"),
        (f"add_many x{BATCH}, 0 -> {top:,}", f"{batches['max_rate']:,.0f} memories/s", "1 store"),
    ]
    if top > first:
        rows.append((f"add_many x{BATCH}, last {min(FIRST, top - first):,} "
                     f"(-> {top:,})", f"{batches['last_rate']:,.0f} memories/s", "1 store"))
    rows += [
        (f"bytes on disk per memory at {first:,}",
         f"{batches['first_bytes'] / first:,.0f} B", "store files after close()"),
        (f"bytes on disk per memory at {top:,}",
         f"{batches['max_bytes'] / top:,.0f} B",
         f"{batches['max_bytes'] / 2**20:,.1f} MiB in all"),
        (f"rebuild() at {top:,}", f"{rebuild_s:,.2f} s",
         f"{batches['count'] / rebuild_s:,.0f} memories/s; median of {rebuild_runs}"),
        (f"keyword search p50 at {top:,}", f"{p50 * 1000:,.2f} ms",
         f"{args.queries} queries, limit 10, one user; median of {search_runs}"),
        (f"keyword search p95 at {top:,}", f"{p95 * 1000:,.2f} ms", "same runs"),
    ]
    print(f"Command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.processor() or 'cpu'}, "
          f"{os.cpu_count()} cores; Python {platform.python_version()}, "
          f"{engine}; {platform.system()} {platform.release()}")
    print()
    print("| Measurement | Result | Notes |")
    print("|---|---:|---|")
    for row in rows:
        print(f"| {' | '.join(row)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
