#!/usr/bin/env python3
"""Ingestion benchmark: DataPoints/s and memories/s of `Memory.ingest` on a generated notes
vault and a generated git repository (a real one, made with the git CLI), with and without
embeddings, and a re-run with nothing new. Embedded SQLite stores.

  vault       --notes Obsidian-style notes (front matter, tags, 1-3 sections of a few
              sentences, wiki links; one in six says something in the first person)
  repository  --commits commits of 1-4 touched files each, every 50th a merge, some with
              Co-authored-by trailers; made once in a temp folder with `git fast-import`

`--embedder` picks the embedders of the runs with embeddings (`minilm`, the NumPy fp32
encoder, by default; `minilm-int8` the int8 one on ONNX Runtime; several times for several
rows). Each row gives wall and CPU seconds (this process's, all threads) and the load
average when it ended: the machine may be shared, and CPU seconds show what it took.

Prints a markdown table. Not a test: run it by hand.

    .venv/bin/python bench/ingest.py                          # 20,000 notes, 5,000 commits
    .venv/bin/python bench/ingest.py --notes 2000 --commits 500   # a quick look
    .venv/bin/python bench/ingest.py --commits 0 --skip-plain --embedder minilm-int8
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from engram import Memory
from engram.ingest.pipeline import Summary
from table import print_table

WORDS = ("garden tomato seed water shed roof winter budget basil market bread coffee train "
         "museum river mountain recipe concert bicycle sister meeting project draft review "
         "release bug test deploy server backup photo trip book chapter idea plan").split()
PLACES = ("Lisbon Porto Berlin Vienna Oslo Kyoto Austin Lyon Turin Gdansk").split()
PEOPLE = ("Grace Alan Edsger Barbara Donald Frances Ken Margaret Dennis Radia").split()
# One person's notes: the same few facts about them now and then, events more often.
FACTS = ("I live in Lisbon.", "I work at Acme Labs.", "I'm vegetarian.", "I play the cello.")
EVENT = "I visited {place} with {person} to see the {word}."
Row = tuple[str, str, str, str]


def sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(6, 16))
    return " ".join(words).capitalize() + "."


def write_vault(root: Path, notes: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    for i in range(notes):
        folder = root / f"area-{i % 40:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = ["---", f"title: Note {i}", f"tags: [{rng.choice(WORDS)}, {rng.choice(WORDS)}]",
                 f"date: 20{15 + i % 10}-{1 + i % 12:02d}-{1 + i % 28:02d}", "---"]
        if i % 60 == 0:
            lines.append(rng.choice(FACTS))
        elif i % 6 == 0:
            lines.append(EVENT.format(place=rng.choice(PLACES), person=rng.choice(PEOPLE),
                                      word=rng.choice(WORDS)))
        lines.append(" ".join(sentence(rng) for _ in range(rng.randint(1, 3))))
        for section in range(rng.randint(0, 2)):
            lines += ["", f"## {rng.choice(WORDS).capitalize()} {section}",
                      " ".join(sentence(rng) for _ in range(rng.randint(1, 3)))]
        if i > 0 and i % 3 == 0:
            lines.append(f"See [[Note {rng.randrange(i)}]] #{rng.choice(WORDS)}")
        (folder / f"Note {i}.md").write_text("\n".join(lines) + "\n")


def write_repository(root: Path, commits: int, seed: int = 11) -> None:
    """A history of `commits` commits streamed into `git fast-import` (seconds, not the
    minutes of `git commit` in a loop); merges join a side branch back."""
    rng = random.Random(seed)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    stream: list[str] = []
    stamp, main = 1_600_000_000, 0  # main: the mark of main's last commit
    for i in range(1, commits + 1):
        stamp += rng.randint(600, 20000)
        message = sentence(rng)
        if i % 7 == 0:
            message += "\n\nCo-authored-by: Grace Hopper <grace@example.org>"
        side = i % 50 == 49 and main > 0
        stream += [f"commit refs/heads/{'side' if side else 'main'}", f"mark :{i}",
                   f"author Ada Lovelace <ada@example.org> {stamp} +0000",
                   f"committer Ada Lovelace <ada@example.org> {stamp} +0000",
                   f"data {len(message.encode())}", message]
        if main:
            stream.append(f"from :{main}")
        if i % 50 == 0 and main:
            stream.append(f"merge :{i - 1}")
        if not side:
            main = i
        for _ in range(rng.randint(1, 4)):
            body = f"{sentence(rng)}\n"
            stream += [f"M 644 inline src/{rng.choice(WORDS)}/{rng.choice(WORDS)}.py",
                       f"data {len(body.encode())}", body]
        stream.append("")
    subprocess.run(["git", "-C", str(root), "fast-import", "--quiet"], check=True,
                   input="\n".join(stream).encode())
    subprocess.run(["git", "-C", str(root), "checkout", "-q", "main"], check=True)


def timed(action: Callable[[], Summary]) -> tuple[Summary, float, float]:
    """The summary, wall seconds and CPU seconds of this process (every thread)."""
    wall, cpu = time.perf_counter(), time.process_time()
    summary = action()
    return summary, time.perf_counter() - wall, time.process_time() - cpu


def bench(name: str, kind: str, path: Path, store: Path, embedder: str | None) -> list[Row]:
    with Memory(store, embedder=embedder) as mem:
        if mem.hybrid.embedder is not None:  # load the model before the clock starts
            mem.hybrid.embedder.embed(["warm up"])
        first, took, cpu = timed(lambda: mem.ingest(kind, path, user_id="bench"))
        again, rerun, _ = timed(lambda: mem.ingest(kind, path, user_id="bench"))
    assert again.added == again.updated == 0, again.to_dict()
    label = f"{name}, {f'embedder {embedder}' if embedder else 'without embeddings'}"
    load = os.getloadavg()[0]
    return [(label, f"{first.read / took:,.0f}", f"{first.memories / took:,.0f}",
             f"{first.read:,} DataPoints ({first.added:,} items + {first.extracted:,} facts) "
             f"in {took:.1f} s wall, {cpu:.1f} s CPU, load {load:.1f}; a re-run with nothing "
             f"new {rerun:.2f} s")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=20_000)
    parser.add_argument("--commits", type=int, default=5_000)
    parser.add_argument("--skip-plain", action="store_true",
                        help="only the runs with embeddings")
    parser.add_argument("--embedder", action="append",
                        help="embedder of the runs with embeddings (default minilm)")
    args = parser.parse_args()
    rows: list[Row] = []
    embedders = [None] if not args.skip_plain else []
    embedders += args.embedder or ["minilm"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.notes:
            write_vault(root / "vault", args.notes)
        if args.commits:
            write_repository(root / "repo", args.commits)
        for number, embedder in enumerate(embedders):
            if args.notes:
                rows += bench(f"{args.notes:,}-note vault", "notes", root / "vault",
                              root / f"notes-{number}", embedder)
            if args.commits:
                rows += bench(f"{args.commits:,}-commit repository", "git", root / "repo",
                              root / f"git-{number}", embedder)
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}\n")
    print_table(["source", "DataPoints/s", "memories/s", "detail"], rows)


if __name__ == "__main__":
    main()
