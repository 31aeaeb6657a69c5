"""Domain activation tracking: run a user's texts through the model and measure how much each
attention head and each FFN neuron contributes, so pruning knows what this user's domains use.

Hooks read the input of each layer's `o_proj` (the heads' outputs side by side) and of its
`down_proj` (the FFN neurons' activations). A head's activation is the mean L2 norm of its
output over the tokens, a neuron's the mean absolute value of its activation; importance
multiplies each by the norm of the weights that carry it into the residual stream (its `o_proj`
columns, its `down_proj` column), so a large activation read by tiny weights counts little."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from engram.errors import InvalidInput

Array = npt.NDArray[np.float64]
COVERAGE = 0.9  # a domain "uses" the fewest units that carry this share of its activation


@dataclass(frozen=True, slots=True)
class Activations:
    """Mean activation per head [layers, heads] and per FFN neuron [layers, neurons], over
    `tokens` tokens, and the same weighted by the weights that carry them (importance)."""

    heads: Array
    neurons: Array
    head_importance: Array
    neuron_importance: Array
    tokens: int


def layers_of(model: Any) -> list[Any]:
    """The decoder layers of a Llama-family model (q/k/v/o attention, gate/up/down FFN), or
    one error naming what is missing."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None or not all(
            hasattr(layer, "self_attn") and hasattr(layer, "mlp")
            and all(hasattr(layer.self_attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj"))
            and all(hasattr(layer.mlp, n) for n in ("gate_proj", "up_proj", "down_proj"))
            for layer in layers):
        raise InvalidInput("base", f"{type(model).__name__} is not a Llama-style decoder "
                           "(q/k/v/o attention and gate/up/down FFN per layer)",
                           "use a Llama, Mistral or Qwen2/3 causal LM")
    return list(layers)


def head_dim(model: Any) -> int:
    config = model.config
    return int(getattr(config, "head_dim", None)
               or config.hidden_size // config.num_attention_heads)


def track(model: Any, tokenizer: Any, texts: Sequence[str], *, bos: bool = True,
          max_length: int = 256) -> Activations:
    """Activations of `model` over `texts` (one at a time, so no padding is counted)."""
    import torch

    layers = layers_of(model)
    size = head_dim(model)
    n_heads = model.config.num_attention_heads
    heads = np.zeros((len(layers), n_heads))
    neurons = np.zeros((len(layers), layers[0].mlp.down_proj.in_features))
    tokens = 0

    def on_heads(i: int) -> Any:
        def hook(_: Any, args: tuple[Any, ...]) -> None:
            per_head = args[0].detach().reshape(-1, n_heads, size).norm(dim=-1)
            heads[i] += per_head.sum(0).double().numpy()
        return hook

    def on_neurons(i: int) -> Any:
        def hook(_: Any, args: tuple[Any, ...]) -> None:
            neurons[i] += args[0].detach().reshape(-1, neurons.shape[1]).abs().sum(0) \
                .double().numpy()
        return hook

    handles = [h for i, layer in enumerate(layers) for h in (
        layer.self_attn.o_proj.register_forward_pre_hook(on_heads(i)),
        layer.mlp.down_proj.register_forward_pre_hook(on_neurons(i)))]
    model.eval()
    try:
        with torch.no_grad():
            for text in texts:
                ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length,
                                add_special_tokens=bos)["input_ids"]
                model(input_ids=ids)
                tokens += ids.shape[1]
    finally:
        for handle in handles:
            handle.remove()
    if not tokens:
        raise InvalidInput("texts", "no text to track activations on",
                           "add memories for this user")
    heads, neurons = heads / tokens, neurons / tokens
    return Activations(heads, neurons, heads * _head_weights(layers, n_heads, size),
                       neurons * _neuron_weights(layers), tokens)


def _head_weights(layers: Sequence[Any], n_heads: int, size: int) -> Array:
    """Per layer and head, the Frobenius norm of its `o_proj` columns."""
    weights = [layer.self_attn.o_proj.weight.detach().double().numpy() for layer in layers]
    return np.stack([np.linalg.norm(w.reshape(w.shape[0], n_heads, size), axis=(0, 2))
                     for w in weights])


def _neuron_weights(layers: Sequence[Any]) -> Array:
    """Per layer and neuron, the L2 norm of its `down_proj` column."""
    return np.stack([np.linalg.norm(layer.mlp.down_proj.weight.detach().double().numpy(), axis=0)
                     for layer in layers])


def used_share(importance: Array, coverage: float = COVERAGE) -> float:
    """The share of units (all layers together) needed to carry `coverage` of the mass."""
    flat = np.sort(importance.ravel())[::-1]
    total = flat.sum()
    if total <= 0:
        return 0.0
    needed = int(np.searchsorted(np.cumsum(flat), coverage * total) + 1)
    return min(needed, flat.size) / flat.size


def top_units(importance: Array, share: float) -> set[tuple[int, int]]:
    """The (layer, unit) pairs of the top `share` of units by importance."""
    flat = importance.ravel()
    count = max(1, round(share * flat.size))
    chosen = np.argsort(flat)[::-1][:count]
    return {divmod(int(i), importance.shape[1]) for i in chosen}


def domain_report(model: Any, tokenizer: Any, by_domain: Mapping[str, Sequence[str]], *,
                  bos: bool = True) -> list[dict[str, Any]]:
    """Per domain (most texts first): its texts, their share of the user's, the shares of
    heads and FFN neurons that carry 90 % of its activation, and how many of its top half of
    neurons are also in the top half over all the user's texts (overlap)."""
    everything = [t for texts in by_domain.values() for t in texts]
    overall = top_units(track(model, tokenizer, everything, bos=bos).neuron_importance, 0.5)
    rows = []
    for domain, texts in sorted(by_domain.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        acts = track(model, tokenizer, texts, bos=bos)
        top = top_units(acts.neuron_importance, 0.5)
        rows.append({"domain": domain, "texts": len(texts),
                     "share": round(len(texts) / len(everything), 4),
                     "heads_used": round(used_share(acts.head_importance), 4),
                     "neurons_used": round(used_share(acts.neuron_importance), 4),
                     "overlap": round(len(top & overall) / len(top), 4)})
    return rows
