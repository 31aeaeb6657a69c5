"""Structured pruning: remove the least important attention heads and FFN neurons, giving a
smaller model of the same architecture that stock `transformers` loads from its config.

A Llama-family config has one head count, one key/value head count and one FFN width for all
layers, so every layer keeps the same number of each (the least important ones of *that* layer
go). Heads go by key/value group: a group is one K/V head and the query heads that share it, so
grouped-query attention stays valid (with one K/V head, query heads go instead). `head_dim` is
written into the config, since it no longer equals hidden / heads. The FFN keeps a multiple of
32 neurons where it can, the block size of 8-bit GGUF quantization (Q8_0)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engram.errors import InvalidInput
from engram.plm.activations import Activations, head_dim, layers_of

DEFAULT_FRACTION = 0.5
BLOCK = 32


@dataclass(frozen=True, slots=True)
class Plan:
    """What each layer keeps: query heads, key/value heads and FFN neurons (sorted indices)."""

    heads: list[list[int]]
    kv_heads: list[list[int]]
    neurons: list[list[int]]


def check_fraction(fraction: float) -> float:
    if not 0.0 < fraction < 1.0:
        raise InvalidInput("fraction", f"{fraction} is outside (0, 1)",
                           "give the share of heads and neurons to remove, e.g. 0.5")
    return fraction


def kept(total: int, fraction: float, block: int = 1) -> int:
    """How many of `total` units stay when `fraction` go: at least one (one block where the
    total allows), rounded to a multiple of `block` when the total is one."""
    keep = max(1, round(total * (1 - fraction)))
    if block > 1 and total % block == 0:
        keep = max(block, round(keep / block) * block)
    return min(keep, total)


def plan(acts: Activations, config: Any, fraction: float = DEFAULT_FRACTION) -> Plan:
    """The units each layer keeps, the most important ones, `fraction` of them gone."""
    check_fraction(fraction)
    n_heads, n_kv = config.num_attention_heads, config.num_key_value_heads
    group = n_heads // n_kv
    heads, kv_heads, neurons = [], [], []
    for layer in range(acts.head_importance.shape[0]):
        importance = acts.head_importance[layer]
        if n_kv > 1:
            scores = importance.reshape(n_kv, group).sum(1)
            groups = _top(scores, kept(n_kv, fraction))
            kv_heads.append(groups)
            heads.append([g * group + h for g in groups for h in range(group)])
        else:
            kv_heads.append([0])
            heads.append(_top(importance, kept(n_heads, fraction)))
        width = acts.neuron_importance.shape[1]
        neurons.append(_top(acts.neuron_importance[layer], kept(width, fraction, BLOCK)))
    return Plan(heads, kv_heads, neurons)


def _top(scores: Any, count: int) -> list[int]:
    return sorted(int(i) for i in np.argsort(-np.asarray(scores), kind="stable")[:count])


def pruned_config(config: Any, chosen: Plan) -> Any:
    """A copy of `config` with the new sizes."""
    new = config.__class__.from_dict(config.to_dict())
    new.head_dim = int(getattr(config, "head_dim", None)
                       or config.hidden_size // config.num_attention_heads)
    new.num_attention_heads = len(chosen.heads[0])
    new.num_key_value_heads = len(chosen.kv_heads[0])
    new.intermediate_size = len(chosen.neurons[0])
    return new


def prune(model: Any, chosen: Plan) -> Any:
    """A new model holding only the units `chosen` keeps (the old one is left as it was)."""
    import torch
    from transformers import AutoModelForCausalLM

    layers = layers_of(model)
    size = head_dim(model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for i, layer in enumerate(layers):
        prefix = _prefix(model, layer)
        q_rows = _rows(chosen.heads[i], size)
        kv_rows = _rows(chosen.kv_heads[i], size)
        neurons = torch.tensor(chosen.neurons[i])
        for name, rows in (("self_attn.q_proj", q_rows), ("self_attn.k_proj", kv_rows),
                           ("self_attn.v_proj", kv_rows), ("mlp.gate_proj", neurons),
                           ("mlp.up_proj", neurons)):
            for part in ("weight", "bias"):
                key = f"{prefix}{name}.{part}"
                if key in state:
                    state[key] = state[key][rows]
        for name, cols in (("self_attn.o_proj", q_rows), ("mlp.down_proj", neurons)):
            key = f"{prefix}{name}.weight"
            state[key] = state[key][:, cols]
    config = pruned_config(model.config, chosen)
    auto: Any = AutoModelForCausalLM  # untyped
    smaller = auto.from_config(config, dtype=next(model.parameters()).dtype)
    missing, unexpected = smaller.load_state_dict(state, strict=False)
    left = [k for k in missing if not k.endswith("lm_head.weight")]
    if left or unexpected:
        raise InvalidInput("base", f"{type(model).__name__} has weights pruning does not know "
                           f"({(left or unexpected)[:3]})", "use a Llama-family causal LM")
    smaller.tie_weights()
    smaller.eval()
    return smaller


def _rows(units: list[int], size: int) -> Any:
    import torch
    return torch.tensor([u * size + d for u in units for d in range(size)])


def _prefix(model: Any, layer: Any) -> str:
    for name, module in model.named_modules():
        if module is layer:
            return f"{name}."
    raise InvalidInput("base", "a decoder layer is not in the model", "use a stock model")


def parameters(model: Any) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
