"""What an adapter knows and what it costs: closed-book fact recall (greedy answers to the
dataset's questions, scored by normalised containment of the expected value) and perplexity on
held-out general text, for the base model and for each adapter, on one loaded model.

Recall is reported on three question sets: the trained questions (`fact_recall`: what the
adapter was taught), paraphrases of the same memories never trained on (`paraphrase_recall`:
did it learn the fact or the sentence?) and the validation split's memories, held out whole
(`held_out_recall`: what nobody taught it, near zero unless the base knew it)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engram.train import base
from engram.train.checks import Example
from engram.train.dataset import Dataset

GENERAL_TEXT = Path(__file__).resolve().parent.parent / "data" / "general_text.txt"
MAX_NEW_TOKENS = 32


def normalise(text: str) -> str:
    """Case, accents, punctuation and spacing folded away."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", plain).split())


def recalled(answer: str, expect: str) -> bool:
    """The answer holds the expected value as whole words (exact or contained)."""
    want, got = normalise(expect), normalise(answer)
    return bool(want) and re.search(rf"(?<!\w){re.escape(want)}(?!\w)", got) is not None


def general_text(path: Path | None = None) -> list[str]:
    """Paragraphs of held-out general text (the bundled file unless `path` is given)."""
    raw = (path or GENERAL_TEXT).read_text(encoding="utf-8")
    return [p.strip() for p in raw.split("\n\n") if p.strip()]


def answer(model: Any, tokenizer: Any, questions: Sequence[str], *, batch: int = 16,
           max_new_tokens: int = MAX_NEW_TOKENS) -> list[str]:
    """Greedy answers, one per question (batched, padded on the left)."""
    import torch

    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    answers: list[str] = []
    try:
        for start in range(0, len(questions), batch):
            prompts = [base.prompt(tokenizer, q) for q in questions[start:start + batch]]
            inputs = tokenizer(prompts, return_tensors="pt", padding=True,
                               add_special_tokens=base.bos(tokenizer)).to(_device(model))
            with torch.no_grad():
                out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id,
                                     eos_token_id=tokenizer.eos_token_id)
            new = out[:, inputs["input_ids"].shape[1]:]
            answers += tokenizer.batch_decode(new, skip_special_tokens=True)
    finally:
        tokenizer.padding_side = side
    return [a.strip() for a in answers]


def recall(model: Any, tokenizer: Any, examples: Sequence[Example]) -> float | None:
    """The share of `examples` answered with their expected value (None for none)."""
    if not examples:
        return None
    got = answer(model, tokenizer, [e.question for e in examples])
    return round(sum(recalled(a, e.expect) for a, e in zip(got, examples, strict=True))
                 / len(examples), 4)


def perplexity(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int = 512) -> float:
    """exp of the mean next-token loss over every token of `texts`."""
    import torch

    total, count = 0.0, 0
    for text in texts:
        ids = tokenizer(text, return_tensors="pt", truncation=True,
                        max_length=max_length)["input_ids"].to(_device(model))
        if ids.shape[1] < 2:
            continue
        with torch.no_grad():
            loss = model(input_ids=ids, labels=ids).loss
        total += float(loss) * (ids.shape[1] - 1)
        count += ids.shape[1] - 1
    return round(math.exp(total / count), 4) if count else math.nan


def measure(model: Any, tokenizer: Any, dataset: Dataset, texts: Sequence[str]) -> dict[str, Any]:
    """Every metric of the model as it is now (an adapter on, or off)."""
    return {"fact_recall": recall(model, tokenizer, dataset.train),
            "paraphrase_recall": recall(model, tokenizer, dataset.probe),
            "held_out_recall": recall(model, tokenizer, dataset.valid),
            "perplexity": perplexity(model, tokenizer, texts)}


@contextmanager
def switched(model: Any, adapter: str | None) -> Iterator[None]:
    """The PEFT model with `adapter` on, or with every adapter off (None: the base)."""
    if adapter is None:
        with model.disable_adapter():
            yield
        return
    before = model.active_adapter
    model.set_adapter(adapter)
    try:
        yield
    finally:
        model.set_adapter(before)


def compare(model: Any, tokenizer: Any, dataset: Dataset, texts: Sequence[str],
            adapters: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`measure` for the base and for each named adapter loaded in the PEFT `model`."""
    model.eval()
    results = {}
    for name in (None, *adapters):
        with switched(model, name):
            results[name or "base"] = measure(model, tokenizer, dataset, texts)
    return results


def not_worse(new: dict[str, Any], old: dict[str, Any], tolerance: float) -> tuple[bool, str]:
    """The promotion gate: recall of the trained facts at least the old adapter's, and
    perplexity risen at most `tolerance` over it. Returns the verdict and why."""
    new_recall, old_recall = new["fact_recall"] or 0.0, old["fact_recall"] or 0.0
    if new_recall < old_recall:
        return False, f"fact recall fell from {old_recall:.3f} to {new_recall:.3f}"
    limit = old["perplexity"] * (1 + tolerance)
    if new["perplexity"] > limit:
        return False, (f"perplexity rose from {old['perplexity']:.3f} to "
                       f"{new['perplexity']:.3f} (limit {limit:.3f})")
    return True, (f"fact recall {old_recall:.3f} → {new_recall:.3f}, perplexity "
                  f"{old['perplexity']:.3f} → {new['perplexity']:.3f}")


def _device(model: Any) -> Any:
    return next(model.parameters()).device
