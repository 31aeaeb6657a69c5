"""One chunk of a KV cache (every layer's keys and values for a span of positions) to and from
the safetensors format, stored as the model's dtype, float16, bfloat16 or int8 with per-channel
scales, and sealed: the header's metadata carries the sha256 of the tensor data, so a truncated
or tampered file is refused. Any safetensors reader opens a chunk.

The format is written and read here directly (an 8-byte header length, a JSON header, the raw
tensors), so a restore costs one read of the file and one copy into the cache, with no
intermediate tensors: that copy is most of what a restore costs.

int8: each (head, channel) of a chunk's keys, and of its values, is scaled by its largest
magnitude over the chunk's positions (absmax / 127), so one outlier channel costs only itself.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

from engram.errors import InvalidInput

if TYPE_CHECKING:
    import torch

STORAGES = ("native", "float32", "float16", "bfloat16", "int8")
CHECKSUM = "sha256"
CODES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "int8": "I8"}
Layers = list[tuple["torch.Tensor", "torch.Tensor"]]  # per layer: keys, values [heads, n, dim]
Part = bytes | memoryview  # a piece of a file, written one after the other


class Unsealed(ValueError):
    """The bytes are not a whole, untampered chunk (the message says what is wrong)."""


def check_storage(storage: str) -> str:
    if storage not in STORAGES:
        raise InvalidInput("storage", f"{storage!r} is not a storage type",
                           f"use one of: {', '.join(STORAGES)} (native: the model's dtype)")
    return storage


def encode(layers: Layers, storage: str, metadata: dict[str, str]) -> list[Part]:
    """The sealed safetensors file of the layers (`k.N`, `v.N`, and `k.N.scale` … for
    int8), as the buffers to write one after the other."""
    import torch

    tensors: dict[str, torch.Tensor] = {}
    for i, (keys, values) in enumerate(layers):
        for name, tensor in ((f"k.{i}", keys), (f"v.{i}", values)):
            if storage == "int8":
                scale = tensor.abs().amax(dim=1, keepdim=True).float().clamp_min(1e-12) / 127
                tensors[name] = torch.round(tensor.float() / scale).clamp(-127, 127).to(
                    torch.int8)
                tensors[f"{name}.scale"] = scale
            elif storage == "native":
                tensors[name] = tensor
            else:
                tensors[name] = tensor.to(getattr(torch, storage))
    # widest dtype first, so every tensor starts aligned to its element size
    order = sorted(tensors, key=lambda n: (-tensors[n].element_size(), n))
    header: dict[str, Any] = {}
    parts: list[Part] = []
    digest, offset = hashlib.sha256(), 0
    for name in order:
        tensor = tensors[name].detach().to("cpu").contiguous()
        raw = tensor.view(torch.uint8).reshape(-1).numpy().data
        digest.update(raw)
        header[name] = {"dtype": CODES[str(tensor.dtype).removeprefix("torch.")],
                        "shape": list(tensor.shape), "data_offsets": [offset, offset + raw.nbytes]}
        offset += raw.nbytes
        parts.append(raw)
    header["__metadata__"] = {**metadata, "storage": storage, CHECKSUM: digest.hexdigest()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts aligned to 8 bytes
    return [struct.pack("<Q", len(text)) + text, *parts]


def decode_into(data: bytes | bytearray, dest: Layers, start: int) -> int:
    """Copy a sealed chunk's layers into positions `start`… of `dest` (converting to its
    dtype; int8 scaled back): the number of positions it held. The copies go through NumPy
    where it has the dtype: one thread, no thread-pool start-up, which on a busy machine is
    several times faster than torch's parallel copy for this size."""
    import torch

    header, body = _header(data)
    view = memoryview(data)[body:]
    length = 0
    for i, pair in enumerate(dest):
        for name, target in ((f"k.{i}", pair[0]), (f"v.{i}", pair[1])):
            tensor = _tensor(view, header[name])
            length = int(tensor.shape[1])
            slot = target[:, start:start + length]
            scale = _tensor(view, header[f"{name}.scale"]) if tensor.dtype == torch.int8 \
                else None
            if target.dtype == torch.bfloat16 or tensor.dtype == torch.bfloat16:
                slot.copy_(tensor)
                if scale is not None:
                    slot.mul_(scale)
            elif scale is not None:
                np.multiply(tensor.numpy(), scale.numpy(), out=slot.numpy(), casting="unsafe")
            else:
                np.copyto(slot.numpy(), tensor.numpy(), casting="unsafe")
    return length


def unseal(data: bytes | bytearray) -> dict[str, str]:
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


def _tensor(body: memoryview, info: dict[str, Any]) -> torch.Tensor:
    """A tensor viewing its bytes in `body` (nothing copied)."""
    import torch

    first, last = info["data_offsets"]
    dtype = getattr(torch, next(k for k, v in CODES.items() if v == info["dtype"]))
    raw = torch.frombuffer(body[first:last], dtype=torch.uint8) if last > first else \
        torch.empty(0, dtype=torch.uint8)
    return raw.view(dtype).reshape(info["shape"])


def _header(data: bytes | bytearray) -> tuple[dict[str, Any], int]:
    if len(data) < 8:
        raise Unsealed("is too short to be a safetensors file")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise Unsealed("ends inside its header (truncated)")
    try:
        header = json.loads(bytes(data[8:8 + size]))
    except ValueError:
        raise Unsealed("has a header that is not JSON") from None
    if not isinstance(header, dict):
        raise Unsealed("has a header that is not a JSON object")
    return header, 8 + size
