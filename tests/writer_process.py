"""A writer the reliability tests spawn as a separate process.

It adds memories to a store (a seeded mix of `add` and `add_many`) and prints the id of each
memory once the call that wrote it has returned, flushing stdout after every call: a printed id
is an acknowledged write. Lines other than ids start with '#'.

    python tests/writer_process.py DATA --name w1 --count 200 --seed 1 [--go FILE] [--pause-ms 3]

`--count 0` writes until killed. With `--go FILE` the writer opens the store, prints
'# ready', and waits for FILE to exist before writing (so several writers start together).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import TypedDict

from engram import Memory

WORDS = ("oscar puppy hiking paris piano garden sister coffee marathon novel camera "
         "violin beach kitchen chess museum bicycle cousin painting festival").split()


class _Item(TypedDict):
    text: str
    user_id: str
    session_id: str
    tags: list[str]
    metadata: dict[str, str]


def _item(name: str, number: int, rng: random.Random) -> _Item:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10)))
    return {
        "text": f"{name} memory {number}: {words}",
        "user_id": f"user-{number % 3}",
        "session_id": f"{name}-s{number // 10}",
        "tags": [rng.choice(WORDS)],
        "metadata": {"dia_id": f"{name}:{number}"},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data")
    parser.add_argument("--name", default="w")
    parser.add_argument("--count", type=int, default=0, help="memories to add; 0 = forever")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--go", help="wait for this file to exist before writing")
    parser.add_argument("--pause-ms", type=float, default=0.0,
                        help="sleep up to this long (seeded) between calls, as an app would")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    out = sys.stdout
    with Memory(args.data) as mem:
        if args.go:
            print("# ready", file=out, flush=True)
            while not Path(args.go).exists():
                time.sleep(0.005)
        written = 0
        while args.count == 0 or written < args.count:
            size = 1 if rng.random() < 0.6 else rng.randint(2, 25)
            if args.count:
                size = min(size, args.count - written)
            items = [_item(args.name, written + i, rng) for i in range(size)]
            # One memory goes through `add`, several through `add_many` (one transaction).
            entries = [mem.add(**items[0])] if size == 1 else mem.add_many(items)
            out.write("".join(f"{entry.id}\n" for entry in entries))
            out.flush()
            written += size
            if args.pause_ms:
                time.sleep(rng.uniform(0, args.pause_ms) / 1000)
    print("# done", file=out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
