#!/usr/bin/env python3
"""Batch embedding, side by side: Engram's NumPy all-MiniLM-L6-v2 against sentence-transformers
on torch with the same weights, on the same texts in one run. Each engine runs in a child
process of its own (so its peak resident memory is its own), in alternating rounds; the
table gives the median texts/s (wall clock and per CPU-second) and the peak RSS, and the
smallest cosine between the two engines' vectors of the same text.

  short   note sections: a heading and 1-3 sentences (about 35 tokens)
  long    a page of prose: 8-12 sentences (about 200 tokens)

`--engine engram@PATH` adds an older bert.py (e.g. `git show HEAD~3:src/engram/embed/bert.py
> /tmp/bert_before.py`) as a third engine, to compare against what it replaced.

Prints a markdown table. Not a test: run it by hand.

    .venv/bin/python bench/embed.py                      # 2,000 short and 300 long texts
    .venv/bin/python bench/embed.py --rounds 5 --engine engram@/tmp/bert_before.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ingest import sentence  # bench/ingest.py: the vault's sentences
from table import print_table

ENGINES = ("engram", "sentence-transformers")


def texts(kind: str, n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    if kind == "short":
        return [f"Note {i} > {sentence(rng)[:-1]}\n\n"
                + " ".join(sentence(rng) for _ in range(rng.randint(1, 3))) for i in range(n)]
    return [" ".join(sentence(rng) for _ in range(rng.randint(8, 12))) for _ in range(n)]


def child(engine: str, kind: str, n: int, out: Path) -> None:
    """Load one engine, embed once to warm up, then time one pass; report as JSON."""
    from engram.embed.embedders import LocalEmbedder, minilm_path

    batch = texts(kind, n)
    embed: Callable[[list[str]], Any]
    if engine == "sentence-transformers":
        os.environ["HF_HUB_OFFLINE"] = "1"
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(minilm_path()), device="cpu")

        def embed(items: list[str]) -> Any:
            return model.encode(items, batch_size=32, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
    else:
        embedder = LocalEmbedder(minilm_path())
        if "@" in engine:  # an older bert.py, loaded in place of the current one
            spec = importlib.util.spec_from_file_location("bert_before", engine.split("@")[1])
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            embedder._bert = module.BertEncoder(minilm_path())
        embed = embedder.embed
    embed(batch[:16])
    wall, cpu = time.perf_counter(), time.process_time()
    vectors = np.asarray(embed(batch), dtype=np.float32)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    np.save(out.with_suffix(".npy"), vectors)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    out.write_text(json.dumps({"wall": wall, "cpu": cpu, "rss": peak}))


def run(engine: str, kind: str, n: int, folder: Path) -> dict[str, float]:
    out = folder / f"{engine.replace('/', '_')}-{kind}.json"
    subprocess.run([sys.executable, __file__, "--child", engine, "--kind", kind, "--n", str(n),
                    "--out", str(out)], check=True)
    return dict(json.loads(out.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=2000, help="short texts")
    parser.add_argument("--long", type=int, default=300, help="long texts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", action="append", default=[],
                        help="another engine: engram@PATH/TO/bert.py")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.kind, args.n, args.out)
        return
    engines = [*ENGINES, *args.engine]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for kind, n in (("short", args.short), ("long", args.long)):
            seen: dict[str, list[dict[str, float]]] = {e: [] for e in engines}
            for _ in range(args.rounds):
                for engine in engines:
                    seen[engine].append(run(engine, kind, n, folder))
            reference = np.load(folder / f"engram-{kind}.npy")
            for engine in engines:
                vectors = np.load(folder / f"{engine.replace('/', '_')}-{kind}.npy")
                agree = float((vectors * reference).sum(axis=1).min())
                wall = statistics.median(n / r["wall"] for r in seen[engine])
                cpu = statistics.median(n / r["cpu"] for r in seen[engine])
                rss = max(r["rss"] for r in seen[engine])
                rows.append((f"{kind} ({n:,} texts)", engine, f"{wall:,.0f}", f"{cpu:,.0f}",
                             f"{rss:,.0f}", f"{agree:.6f}"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
          f"average {load:.1f} at the end, Python {platform.python_version()}, "
          f"{args.rounds} rounds\n")
    print_table(["texts", "engine", "texts/s", "texts per CPU-s", "peak RSS MiB",
                 "min cosine to Engram"], rows)


if __name__ == "__main__":
    main()
