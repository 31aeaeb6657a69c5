"""What the pipeline's stages share: the user's data split into what is learnt and what is
held out for perplexity, a model's size, speed and perplexities, and the teacher resolved
from `--teacher PATH|SPEC`."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engram.errors import InvalidInput
from engram.plm import distill, teacher
from engram.plm.prune import parameters
from engram.train import base, evaluate

HELD_OUT = 5  # one user text in five is held out for perplexity, chosen by its hash


@dataclass(frozen=True, slots=True)
class UserData:
    """The user's texts: `learn` (distilled on, tracked) and `held_out` (perplexity only), by
    domain, and the teacher's logged exchanges that do not reveal a held-out text."""

    by_domain: Mapping[str, Sequence[str]]
    learn: list[str]
    held_out: list[str]
    exchanges: list[teacher.Example] = field(default_factory=list)


def held_out(text: str) -> bool:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % HELD_OUT == 0


def split(by_domain: Mapping[str, Sequence[str]],
          exchanges: Sequence[teacher.Example]) -> UserData:
    """Every distinct text on one side, by its hash (one held out at least, from two on)."""
    texts = list(dict.fromkeys(t for ts in by_domain.values() for t in ts))
    out = [t for t in texts if held_out(t)]
    if not out and len(texts) > 1:
        out = [texts[-1]]
    learn = [t for t in texts if t not in out]
    kept = [e for e in exchanges if not any(e.query in t for t in out)]
    return UserData(by_domain, learn, out, kept)


@dataclass(frozen=True, slots=True)
class Teacher:
    """`--teacher`: a local model folder (soft targets) or a model spec whose logged answers
    are the hard targets."""

    spec: str
    folder: Path | None

    @classmethod
    def parse(cls, spec: str) -> Teacher:
        path = Path(spec).expanduser()
        if path.is_dir():
            return cls(str(path), base.check_folder(path))
        if ":" not in spec and ("/" in spec or spec.startswith((".", "~"))):
            raise InvalidInput("teacher", f"{spec} is not a folder",
                               "give a local model folder, or a logged teacher's name such as "
                               "openai:gpt-4o")
        return cls(spec, None)

    def logged(self, exchanges: Sequence[teacher.Example]) -> list[teacher.Example]:
        """The exchanges this teacher answered (every logged one for a local teacher: its
        own logits stand in for whoever answered)."""
        if self.folder is not None:
            return list(exchanges)
        return [e for e in exchanges if teacher.teaches(self.spec, e.teacher)]


def samples(tokenizer: Any, data: UserData, answers: Sequence[str] | None = None
            ) -> list[distill.Sample]:
    """The distillation set: each logged query in the prompt format with the teacher's answer
    (or `answers`, the local teacher's own, text-level) as target, and the user's texts."""
    targets = answers if answers is not None else [e.response for e in data.exchanges]
    asked = [distill.Sample(base.prompt(tokenizer, e.query), f" {a.strip()}")
             for e, a in zip(data.exchanges, targets, strict=True)]
    return [*asked, *(distill.Sample("", t) for t in data.learn)]


def folder_bytes(folder: Path) -> int:
    """Bytes of the weight files of a model folder."""
    return sum(p.stat().st_size for p in folder.iterdir()
               if p.name.endswith((*base.WEIGHT_SUFFIXES, ".gguf")))


def measure(stage: str, model: Any, tokenizer: Any, data: UserData, general: Sequence[str],
            size: int) -> dict[str, Any]:
    """One row of the report: parameters, bytes on disk, perplexities."""
    model.eval()
    return {"stage": stage, "parameters": parameters(model), "bytes": size,
            "user_perplexity": evaluate.perplexity(model, tokenizer,
                                                   data.held_out or data.learn),
            "general_perplexity": evaluate.perplexity(model, tokenizer, general)}


def tokens_per_second(model: Any, tokenizer: Any, prompt: str = "Question: ",
                      new_tokens: int = 32, repeats: int = 3) -> float:
    """Greedy generation speed on this machine (the median of `repeats` runs)."""
    import torch

    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id)
        rates.append((out.shape[1] - ids.shape[1]) / (time.perf_counter() - started))
    return round(float(sorted(rates)[len(rates) // 2]), 1)
