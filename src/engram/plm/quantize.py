"""Quantization and what it costs.

int8 is GGUF's Q8_0 (blocks of 32 weights, one float16 scale each: 8.5 bits a weight), the
format llama.cpp and Ollama run. Its quality cost is measured on the very weights the file
holds: `q8_0_copy` rounds every weight matrix through gguf's own quantize/dequantize, as the
exporter writes them, and the copy is measured like any model. `dynamic_int8` is PyTorch's
dynamic quantization (int8 weights, int8 matmuls on the CPU): what int8 does to speed here.

4-bit (NF4, bitsandbytes) needs a CUDA device; without one it is refused with the reason."""

from __future__ import annotations

import copy
import importlib.util
from typing import Any

from engram.errors import InvalidInput
from engram.train import base

METHODS = ("int8", "4bit", "none")
BLOCK = 32


def check_method(method: str) -> str:
    """`method` when this machine can run it, else one error saying why."""
    if method not in METHODS:
        raise InvalidInput("quantize", f"{method!r} is not a method",
                           f"use one of {', '.join(METHODS)}")
    if method == "4bit" and not base.quantizable():
        missing = "bitsandbytes is not installed" \
            if importlib.util.find_spec("bitsandbytes") is None else "there is no CUDA device"
        raise InvalidInput("quantize", f"4-bit needs bitsandbytes and a CUDA GPU ({missing})",
                           "use --quantize int8 on this machine")
    return method


def quantizable(weight: Any) -> bool:
    """Whether GGUF stores this tensor in Q8_0: a matrix whose rows fill whole blocks
    (vectors, norms and odd widths stay float, as llama.cpp's converter keeps them)."""
    return bool(weight.dim() == 2 and weight.shape[-1] % BLOCK == 0)


def q8_0(weight: Any) -> Any:
    """`weight` rounded to Q8_0 and back, with gguf's own functions."""
    import torch
    from gguf import GGMLQuantizationType, quants

    array = weight.detach().float().numpy()
    packed = quants.quantize(array, GGMLQuantizationType.Q8_0)
    back = quants.dequantize(packed, GGMLQuantizationType.Q8_0).reshape(array.shape)
    return torch.from_numpy(back).to(weight.dtype)


def q8_0_copy(model: Any) -> Any:
    """A copy of `model` whose weights are exactly what its Q8_0 GGUF file holds (a matrix of
    another width in float16, vectors as they are)."""
    import torch

    stored = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in {id(p): p for p in stored.parameters()}.values():
            if quantizable(parameter):
                parameter.copy_(q8_0(parameter))
            elif parameter.dim() == 2:
                parameter.copy_(parameter.half().to(parameter.dtype))
    return stored


def dynamic_int8(model: Any) -> Any:
    """A copy of `model` with int8 Linear layers (PyTorch dynamic quantization, CPU)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization says it is moving to torchao
        dynamic: Any = torch.ao.quantization.quantize_dynamic  # untyped
        return dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
