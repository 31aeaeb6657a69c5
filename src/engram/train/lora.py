"""LoRA training with PEFT: the plan's defaults, a loss on the answer tokens only (weighted by
each memory's score) plus the divergence from the base on its own text (`replay`), and a
checkpoint every few optimizer steps so a killed run resumes where it stopped. Checkpoints
are safetensors too (weights, optimizer moments, RNG)."""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from engram.errors import InvalidInput
from engram.train import base, replay
from engram.train.checks import Example

Progress = Callable[[int, int, float], None]  # (optimizer step, of total, loss)


@dataclass(frozen=True, slots=True)
class Hyper:
    """The plan's defaults: r 16, alpha 32, dropout 0.05, 3 epochs, lr 2e-4, batch 4 x 4."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    epochs: int = 3
    lr: float = 2e-4
    batch: int = 4
    accumulation: int = 4
    max_length: int = 256
    seed: int = 0
    checkpoint_every: int = 10  # optimizer steps
    per_memory: int = 3  # questions trained on per memory (the rest are paraphrase probes)
    replay: float = 1.0  # weight of the divergence from the base on its own text (0: off)
    replay_texts: int = 64  # how many texts the base writes for it, of replay_tokens each
    replay_tokens: int = 48
    valid_fraction: float = 0.1  # of the memories, held out whole for validation

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Hyper:
        """The settings a registry entry recorded (keys a newer Engram added are dropped)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def __post_init__(self) -> None:
        for name in ("rank", "alpha", "epochs", "batch", "accumulation", "max_length",
                     "checkpoint_every", "per_memory", "replay_texts", "replay_tokens"):
            if getattr(self, name) < 1:
                raise InvalidInput(name, f"{getattr(self, name)} is below 1", "give 1 or more")
        if not 0.0 < self.lr < 1.0:
            raise InvalidInput("lr", f"{self.lr} is out of range", "give e.g. 2e-4")
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidInput("dropout", f"{self.dropout} is out of range", "give 0 to <1")
        if self.replay < 0:
            raise InvalidInput("replay", f"{self.replay} is negative", "give 0 (off) or more")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise InvalidInput("valid_fraction", f"{self.valid_fraction} is out of range",
                               "give a fraction from 0.0 to below 1.0")


@dataclass
class Result:
    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    resumed_from: int = 0
    quantized: bool = False


def wrap(model: Any, hyper: Hyper, start: Path | None = None, quantized: bool = False) -> Any:
    """The model with trainable LoRA layers: fresh, or continuing the adapter at `start`
    (a 4-bit base prepared for k-bit training first: QLoRA)."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if quantized:
        from peft import prepare_model_for_kbit_training
        prepare: Any = prepare_model_for_kbit_training  # untyped
        model = prepare(model)
    import torch

    torch.manual_seed(hyper.seed)  # the new LoRA weights, and then dropout, repeat per seed
    if start is not None:
        return PeftModel.from_pretrained(model, start, is_trainable=True)
    config = LoraConfig(r=hyper.rank, lora_alpha=hyper.alpha, lora_dropout=hyper.dropout,
                        target_modules=base.target_modules(model), task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def encode(tokenizer: Any, examples: Sequence[Example], max_length: int) -> list[dict[str, Any]]:
    """Token ids of prompt + answer, labels on the answer only, and the example's weight."""
    mean = sum(e.weight for e in examples) / len(examples)
    rows = []
    for ex in examples:
        asked = tokenizer(base.prompt(tokenizer, ex.question),
                          add_special_tokens=base.bos(tokenizer))
        answer = tokenizer(f" {ex.answer}{tokenizer.eos_token}", add_special_tokens=False)
        ids = (asked["input_ids"] + answer["input_ids"])[:max_length]
        labels = ([-100] * len(asked["input_ids"]) + answer["input_ids"])[:max_length]
        rows.append({"ids": ids, "labels": labels, "weight": ex.weight / mean if mean else 1.0})
    return rows


def train(model: Any, tokenizer: Any, examples: Sequence[Example], hyper: Hyper, work: Path,
          *, key: str, progress: Progress | None = None, quantized: bool = False) -> Result:
    """Train `model` (already `wrap`ped) on `examples`, checkpointing under `work`; a
    checkpoint there with the same `key` (dataset and settings) is resumed from."""
    import torch

    if not examples:
        raise InvalidInput("dataset", "has no training examples", "accept more candidates")
    rows = encode(tokenizer, examples, hyper.max_length)
    own = replay.samples(model, tokenizer, hyper.replay_texts, hyper.replay_tokens,
                         hyper.seed) if hyper.replay else None
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=hyper.lr)
    per_epoch = math.ceil(math.ceil(len(rows) / hyper.batch) / hyper.accumulation)
    total = per_epoch * hyper.epochs
    result = Result(steps=total, quantized=quantized)
    done = _resume(model, optimizer, work, key, result)
    device = next(model.parameters()).device
    started = time.perf_counter()
    model.train()
    for step in range(done, total):
        epoch, within = divmod(step, per_epoch)
        order = list(range(len(rows)))
        random.Random(hyper.seed * 1000 + epoch).shuffle(order)
        chunk = order[within * hyper.batch * hyper.accumulation:
                      (within + 1) * hyper.batch * hyper.accumulation]
        loss_sum = 0.0
        for start in range(0, len(chunk), hyper.batch):
            batch = [rows[i] for i in chunk[start:start + hyper.batch]]
            share = len(batch) / len(chunk)
            loss = _loss(model, batch, device, tokenizer.pad_token_id) * share
            loss_sum += float(loss.detach())  # what is shown: the loss on the facts
            if own is not None:
                texts = replay.pick(own, len(batch), step * 1000 + start, hyper.seed)
                loss = loss + hyper.replay * share * replay.divergence(
                    model, texts, tokenizer.pad_token_id)
            loss.backward()
        for group in optimizer.param_groups:  # linear decay to zero: a function of the step,
            group["lr"] = hyper.lr * (1 - step / total)  # so a resumed run repeats it
        optimizer.step()
        optimizer.zero_grad()
        result.losses.append(round(loss_sum, 5))
        if progress is not None:
            progress(step + 1, total, loss_sum)
        if (step + 1) % hyper.checkpoint_every == 0 and step + 1 < total:
            _checkpoint(model, optimizer, work, key, step + 1, result.losses)
    model.eval()
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _loss(model: Any, batch: list[dict[str, Any]], device: Any, pad: int) -> Any:
    import torch

    width = max(len(r["ids"]) for r in batch)
    ids = torch.tensor([r["ids"] + [pad] * (width - len(r["ids"])) for r in batch], device=device)
    labels = torch.tensor([r["labels"] + [-100] * (width - len(r["labels"])) for r in batch],
                          device=device)
    mask = torch.tensor([[1] * len(r["ids"]) + [0] * (width - len(r["ids"])) for r in batch],
                        device=device)
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    per_token = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target,
                                                  ignore_index=-100, reduction="none")
    counted = (target != -100).sum(1).clamp(min=1)
    per_example = per_token.sum(1) / counted
    weights = torch.tensor([r["weight"] for r in batch], device=device)
    return (per_example * weights).mean()


def _checkpoint(model: Any, optimizer: Any, work: Path, key: str, step: int,
                losses: list[float]) -> None:
    """Write the checkpoint beside the old one, then swap: a kill leaves one whole."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    fresh = work / "checkpoint.tmp"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in
               get_peft_model_state_dict(model).items()}
    save_file(weights, str(fresh / "adapter.safetensors"))
    state = optimizer.state_dict()
    moments = {f"{i}.{name}": value.detach().cpu().contiguous().reshape(-1)
               if name == "step" else value.detach().cpu().contiguous()
               for i, slots in state["state"].items() for name, value in slots.items()}
    moments["rng"] = torch.get_rng_state()
    save_file(moments, str(fresh / "optimizer.safetensors"))
    (fresh / "state.json").write_text(json.dumps(
        {"key": key, "step": step, "losses": losses, "groups": state["param_groups"]}))
    old = work / "checkpoint"
    if old.exists():
        shutil.rmtree(old)
    fresh.rename(old)


def _resume(model: Any, optimizer: Any, work: Path, key: str, result: Result) -> int:
    """Load the checkpoint of this run if there is one; the optimizer steps it had done."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = work / "checkpoint"
    state_path = folder / "state.json"
    if not state_path.is_file():
        return 0
    state = json.loads(state_path.read_text())
    if state["key"] != key:
        shutil.rmtree(folder)  # another dataset or other settings: start again
        return 0
    set_peft_model_state_dict(model, load_file(str(folder / "adapter.safetensors")))
    moments = load_file(str(folder / "optimizer.safetensors"))
    torch.set_rng_state(moments.pop("rng"))
    slots: dict[int, dict[str, Any]] = {}
    for name, value in moments.items():
        index, _, slot = name.partition(".")
        slots.setdefault(int(index), {})[slot] = value.reshape(()) if slot == "step" else value
    optimizer.load_state_dict({"state": slots, "param_groups": state["groups"]})
    result.losses = list(state["losses"])
    result.resumed_from = int(state["step"])
    return result.resumed_from


def run_key(dataset_hash: str, hyper: Hyper, start: str | None, base_hash: str) -> str:
    """What identifies a run for resuming: its data, settings, base and where it started."""
    return json.dumps({"dataset": dataset_hash, "hyper": asdict(hyper), "start": start,
                       "base": base_hash}, sort_keys=True)
