"""What a KV cache depends on: the model's weights, its tokenizer, the dtype the cache was
computed in and its layout. A state restores only where every one of them matches."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# the order a mismatch is reported in: the most telling difference first
FIELDS = ("model_id", "weights", "tokenizer", "dtype", "layout")
LAYOUT = "kv/heads-positions-dim/v1"  # per layer: keys and values [kv_heads, positions, head_dim]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """The identity of the computation a cache came from (hashes are sha256 hex). `layout`
    reads `LAYOUT:layers=L,kv_heads=H,head_dim=D,rope_type=R,rope_theta=T`."""

    model_id: str
    weights: str
    tokenizer: str
    dtype: str
    layout: str

    def key(self) -> str:
        """One hash of every field: part of each chunk's address."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fingerprint:
        return cls(**{name: str(data[name]) for name in FIELDS})

    def first_difference(self, other: Fingerprint) -> str | None:
        """The first field (in FIELDS order) where the two differ, or None."""
        return next((name for name in FIELDS if getattr(self, name) != getattr(other, name)),
                    None)

    @property
    def layers(self) -> int:
        return int(self._layout_value("layers"))

    @property
    def kv_heads(self) -> int:
        return int(self._layout_value("kv_heads"))

    @property
    def head_dim(self) -> int:
        return int(self._layout_value("head_dim"))

    def rope(self) -> tuple[str, float]:
        """The rotary embedding's type and base (theta), as the layout records them."""
        theta = self._layout_value("rope_theta")
        return self._layout_value("rope_type"), float(theta) if theta != "none" else 0.0

    def _layout_value(self, name: str) -> str:
        parts = dict(p.split("=", 1) for p in self.layout.partition(":")[2].split(","))
        return parts[name]


def of_model(model: Any, tokenizer: Any, model_id: str) -> Fingerprint:
    """The fingerprint of a loaded transformers causal LM and its tokenizer."""
    config = model.config
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    rope = getattr(config, "rope_parameters", None) or {}
    layout = (f"{LAYOUT}:layers={config.num_hidden_layers},kv_heads={kv_heads},"
              f"head_dim={head_dim},rope_type={rope.get('rope_type', 'none')},"
              f"rope_theta={rope.get('rope_theta', 'none')}")
    return Fingerprint(model_id=model_id, weights=weights_hash(model),
                       tokenizer=tokenizer_hash(tokenizer),
                       dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
                       layout=layout)


def weights_hash(model: Any) -> str:
    """sha256 over every parameter and persistent buffer, by name, in their raw bytes."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        flat = tensor.detach().contiguous().cpu().reshape(-1).view(torch.uint8)
        digest.update(memoryview(flat.numpy()))
    return digest.hexdigest()


def tokenizer_hash(tokenizer: Any) -> str:
    """sha256 of a fast tokenizer's full definition (vocabulary, merges, normalizer…)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(
        sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(text.encode()).hexdigest()


def tokens_hash(ids: Sequence[int]) -> str:
    """sha256 of token ids as little-endian int64."""
    return hashlib.sha256(np.asarray(ids, dtype="<i8").tobytes()).hexdigest()
