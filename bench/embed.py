#!/usr/bin/env python3
"""Batch embedding, side by side: Engram's NumPy all-MiniLM-L6-v2 against sentence-transformers
on torch with the same weights, and against the same graph on ONNX Runtime in fp32 and int8
(`embed.onnx_bert`, when the `onnx` extra is installed), on the same texts in one run. Each
engine runs in a child process of its own (so its peak resident memory is its own), in
alternating rounds; the table gives the median texts/s (wall clock and per CPU-second) and
the peak RSS, and the smallest and median cosine between each engine's vector of a text and
the NumPy encoder's. The ONNX graphs are built (cached) before the children start, so
their peak RSS is that of running, not of building.

  short   note sections: a heading and 1-3 sentences (about 35 tokens)
  long    a page of prose: 8-12 sentences (about 200 tokens)

`--engine engram@PATH` adds an older bert.py (e.g. `git show HEAD~3:src/engram/embed/bert.py
> /tmp/bert_before.py`) as a third engine, to compare against what it replaced.

Prints a markdown table. Not a test: run it by hand.

    .venv/bin/python bench/embed.py                      # 2,000 short and 300 long texts
    .venv/bin/python bench/embed.py --rounds 5 --engine engram@/tmp/bert_before.py
    .venv/bin/python bench/embed.py --locomo /work/shared/data/locomo   # + retrieval quality

`--locomo DIR` adds what quantization costs in retrieval: LoCoMo's plain dense evidence
recall@k (bench/locomo.py's dense baseline: every turn embedded, exact cosine) with
`minilm` and with `minilm-int8`, vectors kept in the disk cache (bench/embed_cache.py).
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

from engram.embed.embedders import minilm_path
from ingest import sentence  # bench/ingest.py: the vault's sentences
from table import print_table

ENGINES = ("engram", "sentence-transformers", "onnx-fp32", "onnx-int8")


def texts(kind: str, n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    if kind == "short":
        return [f"Note {i} > {sentence(rng)[:-1]}\n\n"
                + " ".join(sentence(rng) for _ in range(rng.randint(1, 3))) for i in range(n)]
    return [" ".join(sentence(rng) for _ in range(rng.randint(8, 12))) for _ in range(n)]


def child(engine: str, kind: str, n: int, out: Path) -> None:
    """Load one engine, embed once to warm up, then time one pass; report as JSON."""
    from engram.embed.embedders import LocalEmbedder

    batch = texts(kind, n)
    embed: Callable[[list[str]], Any]
    if engine == "sentence-transformers":
        os.environ["HF_HUB_OFFLINE"] = "1"
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(minilm_path()), device="cpu")

        def embed(items: list[str]) -> Any:
            return model.encode(items, batch_size=32, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
    elif engine.startswith("onnx-"):
        from engram.embed.onnx_bert import OnnxBertEncoder

        encoder = OnnxBertEncoder(minilm_path(), int8=engine == "onnx-int8")

        def embed(items: list[str]) -> Any:
            return encoder.encode(items)
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
    out.write_text(json.dumps({"wall": wall, "cpu": cpu, "rss": peak_rss_mib()}))


def peak_rss_mib() -> float:
    """This process's peak resident memory: VmHWM, which exec resets (ru_maxrss keeps the
    parent's peak from before the fork, and the parent builds the ONNX graphs)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def locomo_recall(folder: Path) -> None:
    """Dense evidence recall@k on LoCoMo, fp32 against int8 vectors of the same model."""
    from cv import KS, recalls
    from embed_cache import DiskCachedEmbedder
    from engram.embed.embedders import load_embedder
    from locomo import each_question, load, run_dense

    conversations = load(folder)
    evidence = [conv.questions[i][1] for conv, i in each_question(conversations)]
    rows = []
    for spec in ("minilm", "minilm-int8"):
        embedder = DiskCachedEmbedder(load_embedder(spec))
        found = np.array([recalls(r, e) for r, e in
                          zip(run_dense(conversations, embedder), evidence, strict=True)])
        rows.append((spec, embedder.name, *(f"{100 * v:.1f}" for v in found.mean(axis=0))))
    print(f"\nLoCoMo dense evidence recall, {len(evidence):,} questions\n")
    print_table(["embedder", "model name", *(f"R@{k}" for k in KS)], rows)


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
    parser.add_argument("--locomo", type=Path, help="LoCoMo folder: also dense recall@k")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.kind, args.n, args.out)
        return
    engines = [*ENGINES, *args.engine]
    from engram.embed import onnx_bert

    if onnx_bert.available():
        for int8 in (False, True):  # build the cached graphs once, here
            onnx_bert.OnnxBertEncoder(minilm_path(), int8=int8)
    else:
        engines = [e for e in engines if not e.startswith("onnx-")]
    rows = []
    if args.rounds:
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
                    cosines = (vectors * reference).sum(axis=1)
                    wall = statistics.median(n / r["wall"] for r in seen[engine])
                    cpu = statistics.median(n / r["cpu"] for r in seen[engine])
                    rss = max(r["rss"] for r in seen[engine])
                    rows.append((f"{kind} ({n:,} texts)", engine, f"{wall:,.0f}",
                                 f"{cpu:,.0f}", f"{rss:,.0f}",
                                 f"{cosines.min():.4f} / {np.median(cosines):.4f}"))
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load "
              f"average {load:.1f} at the end, Python {platform.python_version()}, "
              f"{args.rounds} rounds\n")
        print_table(["texts", "engine", "texts/s", "texts per CPU-s", "peak RSS MiB",
                     "cosine to Engram NumPy: min / median"], rows)
    if args.locomo:
        locomo_recall(args.locomo)


if __name__ == "__main__":
    main()
