#!/usr/bin/env python3
"""KV-state benchmark: time to first token of a resumed session, restoring the saved state of
its prefix versus prefilling the whole prompt again, on a Llama model deep enough that prefill
costs seconds on a CPU (random weights, built here from a config: 12 layers, hidden 768).

For each prefix length: the prompt is the prefix plus a new turn of --turn tokens.
  re-prefill TTFT   the whole prompt prefilled, then the first token decoded (no saved state)
  restore TTFT      the prefix's state read from disk (checksums checked, chunks decoded and
                    joined), the new turn prefilled, the first token decoded: what
                    `engram state generate` reports as ttft_ms
  bytes/token       saved bytes on disk per prefix token, per storage type
  drift             next-token logits after restoring float16/int8 storage vs the exact
                    state: max |difference| / max |logit|, whether the top token agrees, and
                    how many of 16 greedy tokens agree before the first difference
  merge             two saved prefixes merged (the second's keys re-rotated; unmoved keys
                    for comparison) vs a full prefill of both: the same three measures
Medians of --repeats runs; restores read files the save just wrote (in the page cache).
Prints a markdown table. Not a test: run it by hand.

    .venv/bin/python bench/kv.py                          # 2048 and 8192 tokens
    .venv/bin/python bench/kv.py --lengths 512 --layers 4 # a quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from engram.state.cache import layers_of
from engram.state.engine import Decoding, LocalModel, Resumable
from engram.state.store import Restored, StateStore
from engram.state.tiny import build, sentences

STORAGES = ("native", "float16", "int8")
GREEDY = 16  # greedy tokens compared against the exact state


def prefix_ids(model: LocalModel, n: int) -> list[int]:
    ids: list[int] = []
    words = 0
    while len(ids) < n:
        words += max(64, (n - len(ids)) // 4)
        text = " ".join(sentences(words, seed=5))
        ids = model.encode(text)
    return ids[:n]


def reprefill(model: LocalModel, ids: list[int]) -> float:
    decoding = Decoding(model, ids, Restored(0, None, ""), started=time.perf_counter(),
                        max_new_tokens=1)
    list(decoding)
    assert decoding.generation is not None
    return decoding.generation.ttft_ms


def greedy(model: LocalModel, ids: list[int], restored: Restored, n: int) -> tuple[int, ...]:
    decoding = Decoding(model, ids, restored, started=time.perf_counter(), max_new_tokens=n)
    list(decoding)
    assert decoding.generation is not None
    return decoding.generation.tokens


def agreement(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """How many greedy tokens two runs share before they first differ."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                min(len(a), len(b)))


def drift(model: LocalModel, restored: Restored, ids: list[int],
          exact: torch.Tensor) -> tuple[float, bool]:
    """max |logit difference| / max |logit| of the next token, and whether the top agrees."""
    logits = model.prefill(ids[restored.tokens:], model.cache(restored), restored.tokens)
    error = float((logits - exact).abs().max() / exact.abs().max())
    return error, int(logits.argmax()) == int(exact.argmax())


def run(model: LocalModel, n: int, turn: int, repeats: int, root: Path) -> list[str]:
    prefix = prefix_ids(model, n + turn)
    ids, prompt = prefix[:n], prefix
    baseline = [reprefill(model, prompt) for _ in range(repeats)]
    # the saved state of the prefix alone: prefill it once
    cache = model.cache()
    model.prefill(ids, cache)
    layers = layers_of(cache)
    exact = model.prefill(prompt[n:], model.cache(Restored(n, layers, "")), n)
    reference = greedy(model, prompt, Restored(n, layers, ""), GREEDY)
    rows = []
    for storage in STORAGES:
        states = StateStore(root / f"{n}-{storage}", max_bytes=10**12)
        started = time.perf_counter()
        states.save("bench", model.fingerprint, ids, layers, storage)
        save_s = time.perf_counter() - started
        per_token = states.bytes_used() / n
        restores = []
        for i in range(repeats):  # each run continues a fresh branch of the saved prefix
            states.branch("bench", f"run{i}")
            generation = Resumable(model, states, storage).generate(f"run{i}", prompt,
                                                                    max_new_tokens=1)
            assert generation.restored_tokens == n, generation
            restores.append(generation.ttft_ms)
        back = states.restore("bench", model.fingerprint, prompt, model.dtype, storage)
        error, same_top = drift(model, back, prompt, exact)
        same = agreement(greedy(model, prompt, back, GREEDY), reference)
        base, restored = statistics.median(baseline), statistics.median(restores)
        rows.append(f"| {n:,} | {storage} | {base:,.0f} | {restored:,.0f} | "
                    f"{base / restored:.1f}x | {per_token:,.0f} | {save_s * 1000:,.0f} | "
                    f"{error:.2e} | {'yes' if same_top else 'no'} | {same}/{GREEDY} |")
    return rows


def merged_drift(model: LocalModel, each: int, turn: int, root: Path) -> list[str]:
    """Two saved prefixes of `each` tokens merged (the second re-rotated, or left unmoved
    for comparison) against a full prefill of both: next-token drift, greedy agreement."""
    from engram.state.merge import merge

    ids = prefix_ids(model, 2 * each + turn)
    first, second, prompt = ids[:each], ids[each:2 * each], ids
    states = StateStore(root / "merge", max_bytes=10**12)
    for name, part in (("first", first), ("second", second)):
        cache = model.cache()
        model.prefill(part, cache)
        states.save(name, model.fingerprint, part, layers_of(cache))
    merge(states, "first", "second", "both")
    exact = model.prefill(prompt, model.cache())
    reference = greedy(model, prompt, Restored(0, None, ""), GREEDY)
    merged = states.restore("both", model.fingerprint, prompt, model.dtype)
    second_layers = states.load("second", model.fingerprint, second, model.dtype)
    first_layers = states.load("first", model.fingerprint, first, model.dtype)
    rows = []
    for label, tail in (("re-rotated (merge)", merged.layers),
                        ("unmoved keys", [(torch.cat([a[0], b[0]], 1), torch.cat([a[1], b[1]], 1))
                                          for a, b in zip(first_layers, second_layers,
                                                          strict=True)])):
        restored = Restored(2 * each, tail, "")
        error, same_top = drift(model, restored, prompt, exact)
        same = agreement(greedy(model, prompt, restored, GREEDY), reference)
        rows.append(f"| {each:,} + {each:,} | {label} | {error:.2e} | "
                    f"{'yes' if same_top else 'no'} | {same}/{GREEDY} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lengths", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--turn", type=int, default=16, help="tokens of the new turn")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--merge-tokens", type=int, default=512,
                        help="tokens of each of the two merged states (0: skip)")
    parser.add_argument("--model", help="a model folder to use instead of building one")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch threads, for both paths (default: torch's own choice)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="engram-kv-") as tmp:
        root = Path(tmp)
        folder = Path(args.model) if args.model else build(
            root / "model", layers=args.layers, hidden=args.hidden, heads=args.heads,
            kv_heads=args.heads, vocab=1024, max_positions=max(args.lengths) + args.turn + 64)
        model = LocalModel.load(folder)
        reprefill(model, list(range(8)))  # warm up: the first forward pass pays for setup
        config = model.model.config
        load = os.getloadavg()
        print(f"model: {config.num_hidden_layers} layers, hidden {config.hidden_size}, "
              f"{config.num_attention_heads} heads ({config.num_key_value_heads} KV), "
              f"{sum(p.numel() for p in model.model.parameters()) / 1e6:.0f}M parameters, "
              f"float32, random weights; {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores, {args.threads} torch threads, torch {torch.__version__}, "
              f"load average {load[0]:.1f} at start")
        print()
        print("| prefix tokens | storage | re-prefill TTFT ms | restore TTFT ms | speed-up | "
              "bytes/token | save ms | logit drift | same top token | greedy agreement |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---|---:|")
        for n in args.lengths:
            for row in run(model, n, args.turn, args.repeats, root / "states"):
                print(row, flush=True)
        if args.merge_tokens:
            print("\n| merged prefixes | second state's keys | logit drift vs full prefill | "
                  "same top token | greedy agreement |")
            print("|---|---|---:|---|---:|")
            for row in merged_drift(model, args.merge_tokens, args.turn, root / "states"):
                print(row, flush=True)
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
