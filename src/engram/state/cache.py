"""transformers' cache objects to and from plain per-layer tensors (keys and values, each
[kv_heads, positions, head_dim]): the form chunks are cut from and joined into."""

from __future__ import annotations

from typing import Any

from transformers import DynamicCache

from engram.errors import InvalidInput
from engram.state.codec import Layers


def layers_of(cache: Any) -> Layers:
    """Every layer's keys and values of a batch-1 cache (views, nothing copied)."""
    layers = getattr(cache, "layers", None)
    if layers is None:
        raise InvalidInput("cache", f"{type(cache).__name__} has no layers",
                           "use a transformers >= 5 Cache, e.g. DynamicCache")
    out: Layers = []
    for layer in layers:
        if getattr(layer, "is_sliding", False):
            raise InvalidInput("model", "has sliding-window attention layers, whose cache "
                               "holds only the last window", "use a model with full attention "
                               "in every layer (Llama, Qwen2, Phi-3 …)")
        out.append((layer.keys[0], layer.values[0]))
    return out


def cache_of(layers: Layers, config: Any) -> DynamicCache:
    """A DynamicCache holding `layers` (batch 1) as they are, no copy, ready for the next
    forward pass."""
    cache = DynamicCache(config=config)
    slots: list[Any] = list(cache.layers)  # DynamicLayer, for a model of full attention
    for layer, (keys, values) in zip(slots, layers, strict=True):
        layer.lazy_initialization(keys.unsqueeze(0), values.unsqueeze(0))
        layer.keys, layer.values = keys.unsqueeze(0), values.unsqueeze(0)
    return cache


def cut(layers: Layers, start: int, end: int) -> Layers:
    return [(k[:, start:end], v[:, start:end]) for k, v in layers]


def length(layers: Layers) -> int:
    return int(layers[0][0].shape[1]) if layers else 0
