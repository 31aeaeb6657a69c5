#!/usr/bin/env python3
"""LoRA benchmark: what an adapter learnt from 50 memories of a synthetic persona knows, and
what it costs, on a small Llama model built and pre-trained here (no weights can be
downloaded). The whole product path: memories in a store → candidates accepted → dataset →
`pipeline.run` (PEFT LoRA) → registry → evaluation.

  trained questions    closed-book fact recall (greedy, the value contained in the answer)
                       on the questions trained on (3 per memory)
  paraphrases          the other 2 templated questions of the same memories, never trained on
  held-out memories    the validation split (10 % of the memories, never trained on at all)
  perplexity           on general text of the model's world (200 lines drawn with a seed the
                       pre-training never used; the grammar is finite, so mostly sentences
                       it has seen; none about the persona): what the adapter costs
  training time, adapter size on this CPU

Two adapters are trained on the same store in one run: without replay and with it
(`train/replay.py`, the KL to the base on text the base writes itself).

The persona ("Marta") is a name the pre-training corpus holds only as a value (someone's
sister), never as the subject of a statement, so the general text says nothing about her; she
has one fact per attribute of the corpus's grammar, so no two memories answer one question.
Base and adapters are measured in the same run. Prints a markdown table. Not a test: run it
by hand (about 15 minutes on one core; the base model is built once into .cache/).

    .venv/bin/python bench/lora.py                     # 4 layers x 256, 50 facts
    .venv/bin/python bench/lora.py --epochs 5 --facts 10   # a quick look
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from engram import Memory
from engram.train import candidates as cands
from engram.train import pipeline, tiny
from engram.train.lora import Hyper
from engram.train.registry import Registry

PERSONA = tiny.KIN[0]  # a name the corpus holds only as a value, never as a subject


def persona(n: int, seed: int = 0) -> list[str]:
    """`n` facts about the persona, one per shape and attribute, values drawn at random."""
    rng = random.Random(seed)
    facts = [fact.format(who=PERSONA, v=rng.choice(values)) for fact, _, values in tiny.SHAPES
             if "Bank" not in fact]  # "works at" and "bank" would answer one question twice
    facts += [f"{PERSONA}'s {a} is {rng.choice(v)}." for a, v in tiny.ATTRIBUTES.items()]
    if n > len(facts):
        raise SystemExit(f"--facts: at most {len(facts)}")
    return facts[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--facts", type=int, default=50)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--pretrain-steps", type=int, default=800)
    parser.add_argument("--pretrain-lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--accumulation", type=int, default=1)
    parser.add_argument("--replay", type=float, default=1.0,
                        help="replay weight of the second run (the first runs without)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--cache", type=Path, default=Path(".cache/bench-lora"),
                        help="where the built base model is kept between runs")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    facts = persona(args.facts)
    folder = args.cache / (f"llama-{args.layers}x{args.hidden}-{args.pretrain_steps}"
                           f"-{args.pretrain_lr:g}")
    built = "cached"
    if not (folder / "config.json").is_file():
        started = time.perf_counter()
        tiny.build(folder, layers=args.layers, hidden=args.hidden,
                   pretrain_steps=args.pretrain_steps, lr=args.pretrain_lr)
        built = f"{time.perf_counter() - started:.0f} s"
    texts = tiny.corpus(200, seed=99)
    hyper = Hyper(epochs=args.epochs, lr=args.lr, rank=args.rank, alpha=2 * args.rank,
                  batch=args.batch, accumulation=args.accumulation, replay=args.replay)
    with tempfile.TemporaryDirectory() as tmp, Memory(Path(tmp) / "store",
                                                       embedder=None) as mem:
        ids = [mem.add(f, user_id="marta", tier="persistent").id for f in facts]
        cands.curate(mem, ids, accept=True)  # one store: both runs split it the same way
        runs = {"no replay": _run(mem, Path(tmp) / "a", folder, replace(hyper, replay=0.0),
                                  texts),
                f"replay {args.replay:g}": _run(mem, Path(tmp) / "b", folder, hyper, texts)}
    report = {"facts": len(facts), "base_model": {
                  "layers": args.layers, "hidden": args.hidden,
                  "parameters": _parameters(folder), "pretrain_steps": args.pretrain_steps,
                  "pretrain_lr": args.pretrain_lr, "built": built},
              "hyper": {"epochs": args.epochs, "lr": args.lr, "rank": args.rank,
                        "batch": args.batch, "accumulation": args.accumulation},
              "threads": args.threads, "cpu": platform.processor() or platform.machine(),
              "runs": runs}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    _table(report)


def _run(mem: Memory, adapters: Path, folder: Path, hyper: Hyper,
         texts: list[str]) -> dict[str, Any]:
    """One adapter trained on the accepted facts through the product path, and its numbers."""
    started = time.perf_counter()
    outcome = pipeline.run(mem, Registry(adapters), "marta", folder, hyper=hyper, texts=texts)
    wall = time.perf_counter() - started
    assert outcome.adapter is not None and outcome.result is not None
    return {"examples": outcome.metrics["examples"], "steps": outcome.result.steps,
            "train_seconds": outcome.result.seconds, "run_seconds": round(wall, 1),
            "adapter_bytes": outcome.adapter.size_bytes, "base": outcome.metrics["base"],
            "adapter": outcome.metrics["adapter"]}


def _parameters(folder: Path) -> int:
    from transformers import AutoModelForCausalLM

    return int(sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(folder).parameters()))


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _table(r: dict[str, Any]) -> None:
    runs: dict[str, dict[str, Any]] = r["runs"]
    first = next(iter(runs.values()))
    base = first["base"]
    print(f"LoRA on a {r['base_model']} Llama, {r['facts']} persona facts, "
          f"{first['examples']} training examples, {r['hyper']}, {r['threads']} thread(s)\n")
    print("| | base | " + " | ".join(f"adapter, {name}" for name in runs) + " |")
    print("|---|---|" + "---|" * len(runs))
    for key, name in (("fact_recall", "recall, trained questions"),
                      ("paraphrase_recall", "recall, paraphrases never trained on"),
                      ("held_out_recall", "recall, held-out memories (never trained on)")):
        print(f"| {name} | {_pct(base[key])} | "
              + " | ".join(_pct(run["adapter"][key]) for run in runs.values()) + " |")
    ppl = [f"{run['adapter']['perplexity']:.3f} "
           f"({100 * (run['adapter']['perplexity'] / base['perplexity'] - 1):+.1f} %)"
           for run in runs.values()]
    print(f"| perplexity, general text | {base['perplexity']:.3f} | " + " | ".join(ppl) + " |")
    cells = {"training time": "{train_seconds:.0f} s ({steps} steps)",
             "whole run (load, train, evaluate, register)": "{run_seconds:.0f} s",
             "adapter size (safetensors + config)": "{adapter_bytes:,} bytes"}
    for name, cell in cells.items():
        print(f"| {name} | | " + " | ".join(cell.format(**run) for run in runs.values()) + " |")


if __name__ == "__main__":
    main()
