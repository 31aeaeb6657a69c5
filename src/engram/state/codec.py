"""One chunk of a KV cache (every layer's keys and values for a span of positions) to and from
safetensors bytes, stored as float32, float16 or int8 with per-channel scales, and sealed: the
header carries the sha256 of the tensor data, so a truncated or tampered file is refused.

int8: each (head, channel) of a chunk's keys, and of its values, is scaled by its largest
magnitude over the chunk's positions (absmax / 127), so one outlier channel costs only itself.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import TYPE_CHECKING, Any

from engram.errors import InvalidInput

if TYPE_CHECKING:
    import torch

STORAGES = ("native", "float32", "float16", "bfloat16", "int8")
CHECKSUM = "sha256"
Layers = list[tuple["torch.Tensor", "torch.Tensor"]]  # per layer: keys, values [heads, n, dim]


class Unsealed(ValueError):
    """The bytes are not a whole, untampered chunk (the message says what is wrong)."""


def check_storage(storage: str) -> str:
    if storage not in STORAGES:
        raise InvalidInput("storage", f"{storage!r} is not a storage type",
                           f"use one of: {', '.join(STORAGES)} (native: the model's dtype)")
    return storage


def encode(layers: Layers, storage: str, metadata: dict[str, str]) -> bytes:
    """Sealed safetensors bytes of the layers (`k.N`, `v.N`, and `k.N.scale` … for int8)."""
    import torch
    from safetensors.torch import save as st_save

    tensors: dict[str, torch.Tensor] = {}
    for i, (keys, values) in enumerate(layers):
        for name, tensor in ((f"k.{i}", keys), (f"v.{i}", values)):
            tensor = tensor.detach().to("cpu")
            if storage == "int8":
                scale = tensor.abs().amax(dim=1, keepdim=True).float().clamp_min(1e-12) / 127
                quantized = torch.round(tensor.float() / scale).clamp(-127, 127)
                tensors[name] = quantized.to(torch.int8).contiguous()
                tensors[f"{name}.scale"] = scale.contiguous()
            elif storage == "native":
                tensors[name] = tensor.contiguous()
            else:
                tensors[name] = tensor.to(getattr(torch, storage)).contiguous()
    return seal(st_save(tensors, metadata={**metadata, "storage": storage}))


def decode(data: bytes, dtype: str) -> Layers:
    """The layers of a sealed chunk in `dtype` (the model's); int8 is scaled back."""
    import torch
    from safetensors.torch import load as st_load

    unseal(data)
    tensors = st_load(data)
    target = getattr(torch, dtype)
    out: Layers = []
    for i in range(sum(1 for name in tensors if name.startswith("k.") and
                       not name.endswith(".scale"))):
        pair = []
        for name in (f"k.{i}", f"v.{i}"):
            tensor = tensors[name]
            if tensor.dtype == torch.int8:
                tensor = tensor.to(target) * tensors[f"{name}.scale"].to(target)
            pair.append(tensor.to(target))
        out.append((pair[0], pair[1]))
    return out


def seal(data: bytes) -> bytes:
    """The safetensors bytes with the sha256 of their tensor data added to the header."""
    header, start = _header(data)
    body = memoryview(data)[start:]
    header.setdefault("__metadata__", {})[CHECKSUM] = hashlib.sha256(body).hexdigest()
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors aligns the data to 8 bytes
    return struct.pack("<Q", len(text)) + text + bytes(body)


def unseal(data: bytes) -> dict[str, str]:
    """The metadata of sealed bytes, once their length and checksum are checked."""
    header, start = _header(data)
    metadata = {str(k): str(v) for k, v in (header.get("__metadata__") or {}).items()}
    ends = [int(info["data_offsets"][1]) for name, info in header.items()
            if name != "__metadata__"]
    if len(data) - start != max(ends, default=0):
        raise Unsealed(f"holds {len(data) - start} bytes of tensor data, its header says "
                       f"{max(ends, default=0)} (truncated)")
    if metadata.get(CHECKSUM) != hashlib.sha256(memoryview(data)[start:]).hexdigest():
        raise Unsealed("does not match its checksum (changed since it was saved)")
    return metadata


def _header(data: bytes) -> tuple[dict[str, Any], int]:
    if len(data) < 8:
        raise Unsealed("is too short to be a safetensors file")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise Unsealed("ends inside its header (truncated)")
    try:
        header = json.loads(data[8:8 + size])
    except ValueError:
        raise Unsealed("has a header that is not JSON") from None
    if not isinstance(header, dict):
        raise Unsealed("has a header that is not a JSON object")
    return header, 8 + size
