#!/usr/bin/env python3
"""Personal-model benchmark: `engram plm build` on the small pre-trained Llama of the LoRA
benchmark (no weights can be downloaded here), for a user whose memories are about two domains
of the model's world (family and places), taught by a deeper model of the same world.

  stages     base → distilled (from the teacher: its logits on the user's texts and on the
             answers it gave the user, logged through the chat hook) → pruned (half the
             key/value head groups and half the FFN neurons of every layer, the least active on
             the user's texts) → recovered (distilled from the unpruned model) → int8 (GGUF
             Q8_0, measured on exactly the weights the file holds)
  parameters, bytes on disk (safetensors fp32; the GGUF file for int8)
  tokens/s   greedy generation of 32 tokens on this CPU, median of 3 (int8: PyTorch dynamic
             int8 quantization of the pruned model, the CPU int8 runtime at hand here)
  user ppl   perplexity on the user's held-out texts (1 in 5 of their memories, never trained
             or tracked on)
  general    perplexity on general text of the whole world (another seed of the corpus)

For comparison: the distillation stage without the teacher (alpha 0: the user's texts and the
logged answers as hard targets alone), the same pruning with units chosen at random (before
recovery), and the teacher itself.
Prints a markdown table. Not a test: run it by hand (minutes on one core).

    .venv/bin/python bench/plm.py                      # 4 x 256 student, 6 x 256 teacher
    .venv/bin/python bench/plm.py --steps 20 --recovery-steps 20 --memories 60   # a quick look
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from engram import Memory
from engram.plm import activations, distill, pipeline, prune, quantize, stages, teacher
from engram.plm.settings import Settings
from engram.train import base, tiny

DOMAINS = {"family": [a for a, values in tiny.ATTRIBUTES.items() if values is tiny.KIN],
           "places": ["lives in", "favourite city", "favourite town", "favourite port",
                      "favourite capital", "home town"]}


def domain_facts() -> dict[str, list[tuple[str, str]]]:
    """The world's (statement, question) pairs of each of the user's domains."""
    found: dict[str, list[tuple[str, str]]] = {d: [] for d in DOMAINS}
    for facts in tiny.world().values():
        for statement, question in facts:
            for domain, words in DOMAINS.items():
                if any(f"'s {w} is " in statement or f" {w} " in statement for w in words):
                    found[domain].append((statement, question))
    return found


def cached_model(cache: Path, layers: int, hidden: int, steps: int, lr: float) -> Path:
    folder = cache / f"llama-{layers}x{hidden}-{steps}-{lr:g}"
    if not (folder / "config.json").is_file():
        started = time.perf_counter()
        tiny.build(folder, layers=layers, hidden=hidden, pretrain_steps=steps, lr=lr)
        print(f"built {folder.name} in {time.perf_counter() - started:.0f} s")
    return folder


def remember(data: Path, memories: int, exchanges: int, seed: int) -> None:
    """The user's memories (statements and questions answered, by domain) and the teacher's
    logged answers (through `teacher.logged`, as `engram chat` logs them)."""
    rng = random.Random(seed)
    with Memory(data, embedder=None, policy=Settings(plm_teacher="*")) as mem:
        for domain, facts in domain_facts().items():
            for statement, question in rng.sample(facts, memories // len(DOMAINS)):
                text = statement if rng.random() < 0.5 else \
                    f"Question: {question}\nAnswer: {statement}"
                mem.add(text, user_id="ana", domains=[domain], dedupe=False)
            for statement, question in rng.sample(facts, exchanges // len(DOMAINS)):
                teacher.logged(mem, mem.remember_turn(question, statement, user_id="ana",
                                                      session_id=f"chat-{domain}"),
                               "openai:teacher")


def random_pruning(folder: Path, fraction: float, data: stages.UserData,
                   general: list[str], seed: int) -> dict[str, Any]:
    """The pruning of the same size with units drawn at random: what tracking is worth."""
    model, tokenizer = base.load(folder)
    rng = np.random.default_rng(seed)
    layers = model.config.num_hidden_layers
    width = model.config.intermediate_size
    heads = rng.random((layers, model.config.num_attention_heads))
    neurons = rng.random((layers, width))
    acts = activations.Activations(heads, neurons, heads, neurons, 1)
    smaller = prune.prune(model, prune.plan(acts, model.config, fraction))
    return stages.measure("pruned, random units", smaller, tokenizer, data, general, 0)


def hard_targets_only(folder: Path, data: stages.UserData, general: list[str],
                      hyper: distill.Hyper) -> dict[str, Any]:
    """The distillation stage with alpha 0 (no teacher): what the soft targets add."""
    model, tokenizer = base.load(folder)
    distill.distil(model, tokenizer, stages.samples(tokenizer, data), None, hyper)
    return stages.measure("distilled, alpha 0 (no teacher)", model, tokenizer, data, general,
                          stages.folder_bytes(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--pretrain-steps", type=int, default=600)
    parser.add_argument("--teacher-layers", type=int, default=6)
    parser.add_argument("--teacher-steps", type=int, default=900)
    parser.add_argument("--pretrain-lr", type=float, default=3e-3)
    parser.add_argument("--memories", type=int, default=240)
    parser.add_argument("--exchanges", type=int, default=60)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--recovery-steps", type=int, default=300)
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path(".cache/bench-plm"),
                        help="where the built models are kept between runs")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    student = cached_model(args.cache, args.layers, args.hidden, args.pretrain_steps,
                           args.pretrain_lr)
    deeper = cached_model(args.cache, args.teacher_layers, args.hidden, args.teacher_steps,
                          args.pretrain_lr)
    general = tiny.corpus(300, seed=4242)
    with tempfile.TemporaryDirectory() as tmp:
        store, out = Path(tmp) / "store", Path(tmp) / "ana"
        remember(store, args.memories, args.exchanges, args.seed)
        options = pipeline.Options(
            fraction=args.fraction, general=general,
            distillation=distill.Hyper(steps=args.steps, seed=args.seed),
            recovery=distill.Hyper(steps=args.recovery_steps, seed=args.seed))
        started = time.perf_counter()
        with Memory(store, embedder=None) as mem:
            report = pipeline.build(mem, "ana", student, str(deeper), out, options)
            data = stages.split(teacher.user_texts(mem, "ana"), teacher.examples(mem, "ana"))
        seconds = time.perf_counter() - started
        rows = {row["stage"]: row for row in report["stages"]}
        speeds = measure_speeds(student, out / "pruned")
        for stage, speed in speeds.items():
            rows[stage]["tokens_per_s"] = speed
        rows["distilled"]["tokens_per_s"] = speeds["base"]  # the same network
        rows["pruned"]["tokens_per_s"] = speeds["recovered"]
        extra = [hard_targets_only(student, data, general, options.distillation),
                 random_pruning(student, args.fraction, data, general, args.seed)]
        model, tokenizer = base.load(deeper)
        extra.append(stages.measure(f"teacher ({args.teacher_layers} layers)", model,
                                    tokenizer, data, general, stages.folder_bytes(deeper)))
        extra[-1]["tokens_per_s"] = stages.tokens_per_second(model, tokenizer)
    print_table(report, list(rows.values()), extra, args, seconds)
    if args.json:
        args.json.write_text(json.dumps({"report": report, "extra": extra}, indent=2))


def measure_speeds(student: Path, pruned: Path) -> dict[str, float]:
    """tokens/s of the base, the pruned model and its int8 (dynamic) form, one after another."""
    speeds = {}
    model, tokenizer = base.load(student)
    speeds["base"] = stages.tokens_per_second(model, tokenizer)
    model, tokenizer = base.load(pruned)
    speeds["recovered"] = stages.tokens_per_second(model, tokenizer)
    speeds["int8"] = stages.tokens_per_second(quantize.dynamic_int8(model), tokenizer)
    return speeds


def print_table(report: dict[str, Any], rows: list[dict[str, Any]], extra: list[dict[str, Any]],
                args: argparse.Namespace, seconds: float) -> None:
    first = rows[0]
    print(f"\nstudent {args.layers} layers x {args.hidden} ({args.pretrain_steps} pre-training "
          f"steps), teacher {args.teacher_layers} layers; {report['examples']} distillation "
          f"examples, {report['held_out_texts']} held-out user texts; "
          f"{report['distillation']}; distillation {args.steps} steps, recovery "
          f"{args.recovery_steps}; build {seconds:.0f} s on {platform.processor() or 'CPU'}, "
          f"{args.threads} thread(s)\n")
    print("| stage | parameters | bytes on disk | vs base | tokens/s | user ppl | vs base "
          "| general ppl | vs base |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for row in [*rows, *extra]:
        size = f"{first['bytes'] / row['bytes']:.2f}x smaller" \
            if row["bytes"] and row is not first else "-"
        print(f"| {row['stage']} | {row['parameters']:,} | {row['bytes']:,} | {size} | "
              f"{row.get('tokens_per_s', '-')} | {row['user_perplexity']:.3f} | "
              f"{_change(row['user_perplexity'], first['user_perplexity'])} | "
              f"{row['general_perplexity']:.3f} | "
              f"{_change(row['general_perplexity'], first['general_perplexity'])} |")
    kept = report["kept"]
    print(f"\nkept per layer: {kept['heads']} heads ({kept['kv_heads']} key/value), "
          f"{kept['neurons']} FFN neurons")


def _change(value: float, reference: float) -> str:
    return f"{100 * (value / reference - 1):+.1f} %"


if __name__ == "__main__":
    main()
