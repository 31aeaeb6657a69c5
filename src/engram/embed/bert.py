"""A BERT sentence encoder in NumPy: the forward pass of a sentence-transformers BERT model
(all-MiniLM-L6-v2 by default) read straight from its safetensors weights.

Why not call sentence-transformers? Importing torch costs seconds; this needs only NumPy,
`tokenizers` and `safetensors`, starts in about 0.3 s and embeds a query in a few ms, which
is what a CLI search and an edge board need. `tests/test_embed.py` checks that it agrees
with sentence-transformers on the same weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]


def _f32(x: Any) -> Array:
    return cast(Array, np.asarray(x, dtype=np.float32))


def _gelu(x: Array) -> Array:
    """Exact (erf) GELU without SciPy: Abramowitz & Stegun 7.1.26, |error| < 1.5e-7,
    computed in place to spare the allocations that dominate its cost."""
    a = np.abs(x)
    a *= np.float32(1.0 / np.sqrt(2.0))
    t = a * np.float32(0.3275911)
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * np.float32(1.061405429)
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += np.float32(c)
        poly *= t
    np.square(a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a  # poly = 1 - erf(|x| / sqrt 2)
    np.copysign(poly, x, out=poly)
    poly *= x
    poly *= np.float32(0.5)
    out = np.maximum(x, np.float32(0.0))
    out -= poly  # x (1 + erf(x/sqrt 2)) / 2  =  max(x, 0) - x sign(x) (1 - erf(|x|/sqrt 2)) / 2
    return out


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return _f32((x - mean) / np.sqrt(var + eps) * weight + bias)


class BertEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a local sentence-transformers
    BERT folder (config.json, tokenizer.json, model.safetensors, 1_Pooling/config.json)."""

    def __init__(self, model_dir: str | Path, max_tokens: int | None = None) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = Path(model_dir)
        config = json.loads((folder / "config.json").read_text())
        if config.get("model_type") != "bert":
            raise ValueError(f"{folder} holds a {config.get('model_type')!r} model, not BERT")
        pooling = _read_json(folder / "1_Pooling" / "config.json")
        if pooling and not pooling.get("pooling_mode_mean_tokens", False):
            raise ValueError(f"{folder} does not use mean pooling")
        st_config = _read_json(folder / "sentence_bert_config.json")
        self.max_tokens = max_tokens or int(st_config.get("max_seq_length", 256))
        self.dimension = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.w = load_file(str(folder / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in self.w else ""
        self.w = {k.removeprefix(prefix): v for k, v in self.w.items()}
        # Fuse Q, K and V into one matrix, transposed once, so each layer does one matmul.
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            self.w[p + "qkv.weight"] = np.concatenate(
                [self.w[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]).T
            self.w[p + "qkv.bias"] = np.concatenate(
                [self.w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
            for name in ("attention.output.dense", "intermediate.dense", "output.dense"):
                self.w[p + name + ".weight"] = np.ascontiguousarray(
                    self.w[p + name + ".weight"].T)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()  # tokenizer.json may pad to a fixed width; we batch ourselves
        self.tokenizer.enable_truncation(self.max_tokens)

    def encode(self, texts: list[str], batch_size: int = 32) -> Array:
        """Embeddings, one row per text, in input order; similar lengths are batched
        together so padding costs little."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1.0
            out[chunk] = self._forward(ids, mask)
        return out

    def _forward(self, ids: npt.NDArray[np.int64], mask: Array) -> Array:
        w, (batch, width) = self.w, ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:width][None]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                        self.eps)
        head_dim = self.dimension // self.heads
        scale = np.float32(1.0 / np.sqrt(head_dim))
        blocked = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            qkv = x @ w[p + "qkv.weight"] + w[p + "qkv.bias"]
            q, k, v = (qkv[..., j * self.dimension:(j + 1) * self.dimension]
                       .reshape(batch, width, self.heads, head_dim).transpose(0, 2, 1, 3)
                       for j in range(3))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + blocked
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, width, self.dimension)
            attended = context @ w[p + "attention.output.dense.weight"] \
                + w[p + "attention.output.dense.bias"]
            x = _layer_norm(attended + x, w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], self.eps)
            hidden = _gelu(x @ w[p + "intermediate.dense.weight"]
                           + w[p + "intermediate.dense.bias"])
            ff = hidden @ w[p + "output.dense.weight"] + w[p + "output.dense.bias"]
            x = _layer_norm(ff + x, w[p + "output.LayerNorm.weight"],
                            w[p + "output.LayerNorm.bias"], self.eps)
        pooled = (x * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)[:, None]
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return _f32(pooled / np.maximum(norms, 1e-12))


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}
