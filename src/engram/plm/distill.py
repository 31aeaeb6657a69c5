"""Knowledge distillation: a student learns a teacher's soft targets and the hard targets of
the text it is shown.

    loss = alpha * KL(teacher_T || student_T) * T^2 + (1 - alpha) * CE(student, hard targets)

where `_T` is the softmax at temperature T (Hinton et al. 2015: the T^2 keeps the soft term's
gradients on the scale of the hard one's as T changes). The KL is `torch.nn.functional.kl_div`
of the student's log-probabilities against the teacher's, the usual form, averaged over every
real token; the cross-entropy covers the answer tokens (a teacher's response) or every token
of a plain text. Without a teacher model (an API teacher: its text is all there is) the loss
is the cross-entropy alone."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engram.errors import InvalidInput

ALPHA = 0.5
TEMPERATURE = 2.0
MAX_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Sample:
    """Text to learn: `prompt` (read, not a target) then `target` (the hard target)."""

    prompt: str
    target: str


@dataclass(frozen=True, slots=True)
class Hyper:
    """How long and how hard a distillation runs."""

    steps: int = 60
    batch: int = 8
    lr: float = 1e-3
    alpha: float = ALPHA
    temperature: float = TEMPERATURE
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise InvalidInput("alpha", f"{self.alpha} is outside [0, 1]",
                               "give a weight of the soft targets between 0 and 1")
        if self.temperature <= 0:
            raise InvalidInput("temperature", f"{self.temperature} is not positive",
                               "give a temperature above 0 (2.0 is usual)")
        if self.steps < 0 or self.batch < 1:
            raise InvalidInput("steps", "steps must be >= 0 and batch >= 1",
                               "give a positive number of steps and batch size")


def loss(student_logits: Any, labels: Any, mask: Any, teacher_logits: Any | None = None,
         alpha: float = ALPHA, temperature: float = TEMPERATURE) -> Any:
    """The distillation loss of one batch: logits [B, L, V], `labels` [B, L] (-100 where no
    hard target), `mask` [B, L] (1 on real tokens); next-token positions are aligned here."""
    import torch.nn.functional as F

    logits, targets = student_logits[:, :-1], labels[:, 1:]
    hard = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
    if teacher_logits is None or alpha == 0.0:
        return hard
    keep = mask[:, 1:].to(logits.dtype)
    student = F.log_softmax(logits / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits[:, :-1].to(logits.dtype) / temperature, dim=-1)
    per_token = F.kl_div(student, teacher, log_target=True, reduction="none").sum(-1)
    soft = (per_token * keep).sum() / keep.sum().clamp(min=1)
    if alpha == 1.0:
        return soft * temperature**2
    return alpha * soft * temperature**2 + (1 - alpha) * hard


def same_vocabulary(student_tokenizer: Any, teacher_tokenizer: Any) -> str | None:
    """None when the teacher's logits can be compared token for token with the student's,
    else the reason they cannot."""
    ours, theirs = student_tokenizer.get_vocab(), teacher_tokenizer.get_vocab()
    if len(ours) != len(theirs):
        return f"vocabularies differ in size ({len(ours)} vs {len(theirs)} tokens)"
    differing = sum(1 for token, i in ours.items() if theirs.get(token) != i)
    if differing:
        return f"{differing} tokens have other ids in the teacher's vocabulary"
    return None


def batch(tokenizer: Any, samples: Sequence[Sample], bos: bool) -> dict[str, Any]:
    """Token ids, attention mask and labels (-100 on prompts and padding) of `samples`."""
    import torch

    rows, labels = [], []
    for sample in samples:
        prompt = tokenizer(sample.prompt, add_special_tokens=bos)["input_ids"] \
            if sample.prompt else \
            ([tokenizer.bos_token_id] if bos and tokenizer.bos_token_id is not None else [])
        target = tokenizer(sample.target, add_special_tokens=False)["input_ids"]
        if tokenizer.eos_token_id is not None:
            target = [*target, tokenizer.eos_token_id]
        ids = (prompt + target)[:MAX_LENGTH]
        rows.append(ids)
        labels.append(([-100] * len(prompt) + target)[:MAX_LENGTH])
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return {"input_ids": torch.tensor([r + [pad] * (width - len(r)) for r in rows]),
            "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r))
                                            for r in rows]),
            "labels": torch.tensor([r + [-100] * (width - len(r)) for r in labels])}


def distil(student: Any, tokenizer: Any, samples: Sequence[Sample], teacher: Any | None = None,
           hyper: Hyper = Hyper(), *, bos: bool = True,
           progress: Callable[[int, float], None] | None = None) -> list[float]:
    """Train `student` (in place; a PEFT model trains its adapter only) on `samples` for
    `hyper.steps` batches, against `teacher`'s soft targets when a teacher model is given.
    Returns the loss of every step."""
    import torch

    if not samples:
        raise InvalidInput("samples", "nothing to distil on",
                           "log teacher exchanges or add memories for this user")
    rng = random.Random(hyper.seed)
    torch.manual_seed(hyper.seed)
    trainable = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=hyper.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 1 - s / max(1, hyper.steps))
    if teacher is not None:
        teacher.eval()
    student.train()
    losses = []
    order: list[Sample] = []
    for step in range(hyper.steps):
        if len(order) < hyper.batch:
            order += rng.sample(list(samples), len(samples))
        chosen, order = order[:hyper.batch], order[hyper.batch:]
        inputs = batch(tokenizer, chosen, bos)
        soft = None
        if teacher is not None:
            with torch.no_grad():
                soft = teacher(input_ids=inputs["input_ids"],
                               attention_mask=inputs["attention_mask"]).logits
        logits = student(input_ids=inputs["input_ids"],
                         attention_mask=inputs["attention_mask"]).logits
        value = loss(logits, inputs["labels"], inputs["attention_mask"], soft,
                     hyper.alpha, hyper.temperature)
        value.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(float(value.detach()))
        if progress is not None:
            progress(step + 1, losses[-1])
    student.eval()
    return losses
