"""A session started from two saved states (a persona and a project, say): the second state's
keys are moved to the positions after the first by one more rotation, since rotary position
embeddings rotate each key by its position and rotations compose (the "prompt cache" technique
of modular attention reuse). Values carry no position and are kept.

What this cannot give is the second prefix's attention to the first: its tokens were
prefilled alone. The output therefore drifts from a full prefill of both prefixes; `drift`
measures it, and docs/state.md reports it. A merged state is marked (`merged_at`), so its
chunks are never found by a lookup of their tokens as if they were a prefill's.
"""

from __future__ import annotations

import torch

from engram.errors import InvalidInput
from engram.state.codec import Layers
from engram.state.errors import StateMismatch
from engram.state.manifest import Manifest
from engram.state.store import StateStore


def rotate(keys: torch.Tensor, delta: int, theta: float) -> torch.Tensor:
    """Keys [heads, n, dim] rotated as if each sat `delta` positions later (Llama's RoPE:
    the two halves of the head dimension are the pairs)."""
    dim = keys.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    angle = torch.cat([delta * inv_freq, delta * inv_freq])
    cos, sin = angle.cos().float(), angle.sin().float()
    k = keys.float()
    half = torch.cat([-k[..., dim // 2:], k[..., : dim // 2]], dim=-1)
    return (k * cos + half * sin).to(keys.dtype)


def moved(layers: Layers, delta: int, theta: float) -> Layers:
    return [(rotate(k, delta, theta), v) for k, v in layers]


def merge(states: StateStore, first: str, second: str, new: str) -> Manifest:
    """Save session `new` as `first`'s state followed by `second`'s, re-rotated."""
    a, b = states.require(first), states.require(second)
    field = a.fingerprint.first_difference(b.fingerprint)
    if field is not None:
        raise StateMismatch(field, second, getattr(b.fingerprint, field),
                            getattr(a.fingerprint, field))
    rope, theta = a.fingerprint.rope()
    if rope != "default":
        raise InvalidInput("merge", f"the model's rotary embedding is {rope!r}, whose angles "
                           "depend on more than the position", "merge states of a model with "
                           "default RoPE (Llama 2, Qwen2 …), or prefill both prefixes")
    if states.manifest(new) is not None:
        raise InvalidInput("new", f"session {new!r} already has a saved state",
                           f"pick another name, or drop it with `engram state gc --drop {new}`")
    fingerprint, dtype = a.fingerprint, a.fingerprint.dtype
    head = states.load(first, fingerprint, a.tokens, dtype)
    tail = moved(states.load(second, fingerprint, b.tokens, dtype), len(a.tokens), theta)
    layers = [(torch.cat([hk, tk], dim=1), torch.cat([hv, tv], dim=1))
              for (hk, hv), (tk, tv) in zip(head, tail, strict=True)]
    memories = a.memories | {k: [s + len(a.tokens), e + len(a.tokens)]
                             for k, (s, e) in b.memories.items()}
    return states.save(new, fingerprint, a.tokens + b.tokens, layers, a.storage,
                       memories=memories, turns=a.turns + b.turns, merged_at=len(a.tokens),
                       parent=f"{first}+{second}")
