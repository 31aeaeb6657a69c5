"""Datasets from accepted candidates: question/answer pairs per memory, a validation split
held out by memory, paraphrases kept back as probes, written as instruction JSONL
(`instruction`, `input`, `output`) and chat JSONL (`messages`) with a manifest.

Files in a dataset folder: train.jsonl, train.chat.jsonl, valid.jsonl, valid.chat.jsonl,
probe.jsonl (paraphrases of trained memories never trained on: the recall test) and
manifest.json (memory ids, per-example weights and expected answers, hash, check report)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engram.errors import InvalidInput
from engram.train.base import SYSTEM
from engram.train.candidates import Candidate
from engram.train.checks import CheckReport, Example, check
from engram.train.questions import Question, llm_questions, template_questions

SPLITS = ("train", "valid", "probe")


@dataclass
class Dataset:
    """The examples of each split, and what they were made from."""

    train: list[Example]
    valid: list[Example]
    probe: list[Example]
    memory_ids: list[str]  # the memories trained on (the validation ones are not)
    report: CheckReport

    @property
    def valid_ids(self) -> list[str]:
        return list(dict.fromkeys(e.memory_id for e in self.valid))

    @property
    def hash(self) -> str:
        """sha256 of the training and validation rows: what an adapter learnt from."""
        blob = json.dumps([[asdict(e) for e in self.train], [asdict(e) for e in self.valid]],
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def build(accepted: Sequence[Candidate], *, per_memory: int = 3, valid_fraction: float = 0.1,
          seed: int = 0, private: Sequence[str] = (),
          ask: Callable[[str], str] | None = None) -> Dataset:
    """Examples from `accepted`: `per_memory` questions each to train on, the rest kept as
    paraphrase probes; the `held_out` memories (`valid_fraction` of them) held out whole for
    validation. `ask` (a model's completion) writes the questions instead of the templates."""
    if not accepted:
        raise InvalidInput("candidates", "none accepted",
                           "accept some with `engram train accept ID...` first")
    if per_memory < 1:
        raise InvalidInput("per_memory", f"{per_memory} is below 1", "train on 1 or more")
    if not 0.0 <= valid_fraction < 1.0:
        raise InvalidInput("valid_fraction", f"{valid_fraction} is out of range",
                           "give a fraction from 0.0 to below 1.0")
    ids = [c.memory.id for c in accepted]
    valid_ids = held_out(ids, valid_fraction, seed)
    train: list[Example] = []
    valid: list[Example] = []
    probe: list[Example] = []
    for c in accepted:
        text = c.memory.content
        asked = llm_questions(text, ask) if ask else template_questions(text)
        rows = [_example(c, q) for q in asked]
        if c.memory.id in valid_ids:
            valid.extend(rows[:per_memory])
        else:
            train.extend(rows[:per_memory])
            probe.extend(rows[per_memory:])
    report = check([*train, *valid, *probe], private)
    return Dataset(train, valid, probe, [i for i in ids if i not in valid_ids], report)


def held_out(ids: Sequence[str], fraction: float, seed: int = 0) -> set[str]:
    """The memories of the validation split: chosen by a hash of each id, so a memory stays on
    its side as memories are added (an incremental update never trains on an old validation
    memory); none below five memories, at least one from five on."""
    if not fraction or len(ids) < 5:
        return set()
    rank = {i: hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in ids}
    chosen = {i for i in ids if int.from_bytes(rank[i][:8], "big") / 2**64 < fraction}
    if not chosen and len(ids) >= 5:
        chosen = {min(ids, key=rank.__getitem__)}
    return chosen


def _example(candidate: Candidate, question: Question) -> Example:
    return Example(candidate.memory.id, question.question, candidate.memory.content,
                   question.expect, candidate.score)


def instruction_row(ex: Example) -> dict[str, str]:
    return {"instruction": ex.question, "input": "", "output": ex.answer}


def chat_row(ex: Example) -> dict[str, list[dict[str, str]]]:
    return {"messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": ex.question},
                         {"role": "assistant", "content": ex.answer}]}


def write(dataset: Dataset, folder: Path) -> dict[str, Any]:
    """Write every split in both formats and the manifest; returns the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        rows: list[Example] = getattr(dataset, split)
        _jsonl(folder / f"{split}.jsonl", [instruction_row(e) for e in rows])
        if split != "probe":
            _jsonl(folder / f"{split}.chat.jsonl", [chat_row(e) for e in rows])
    manifest = {"hash": dataset.hash, "memory_ids": dataset.memory_ids,
                "report": dataset.report.to_dict(),
                "examples": {s: [asdict(e) for e in getattr(dataset, s)] for s in SPLITS}}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def _jsonl(path: Path, rows: list[Any]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
