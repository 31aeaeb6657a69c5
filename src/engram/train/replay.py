"""Keeping what the base model knew while an adapter learns a few facts: text the base model
writes itself is replayed beside the facts, with a penalty on the adapter's divergence from
the base there (KL of the base's next-token distribution to the adapter's). It needs no data
set, works for any model, and costs one more forward pass per batch.

Without it, a small model trained for many steps on a few dozen examples forgets its general
language: on the benchmark's model, perplexity on general text rose several-fold."""

from __future__ import annotations

import random
from typing import Any


def samples(model: Any, tokenizer: Any, n: int, length: int, seed: int) -> Any:
    """`n` texts of up to `length` tokens sampled from the base (every adapter off), opened
    by BOS (or EOS when the tokenizer has none), padded with the pad id."""
    import torch

    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None \
        else tokenizer.eos_token_id
    prompt = torch.full((n, 1), start, device=next(model.parameters()).device)
    torch.manual_seed(seed)
    was_training = model.training
    model.eval()
    with torch.no_grad(), model.disable_adapter():
        out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                             do_sample=True, top_k=0, top_p=1.0, max_new_tokens=length,
                             pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
    model.train(was_training)
    return out


def pick(texts: Any, size: int, step: int, seed: int) -> Any:
    """`size` of the replay texts for one batch (the same for the same step: resumable)."""
    rng = random.Random(seed * 100_003 + step)
    return texts[rng.sample(range(len(texts)), min(size, len(texts)))]


def divergence(model: Any, batch: Any, pad: int) -> Any:
    """Mean per-token KL(base ‖ adapter) over the non-pad tokens of `batch`."""
    import torch
    import torch.nn.functional as F

    mask = (batch != pad).long()
    with torch.no_grad(), model.disable_adapter():
        reference = model(input_ids=batch, attention_mask=mask).logits.float()
    current = model(input_ids=batch, attention_mask=mask).logits.float()
    per_token = F.kl_div(F.log_softmax(current, -1), F.log_softmax(reference, -1),
                         log_target=True, reduction="none").sum(-1)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)
