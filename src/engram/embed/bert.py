"""A BERT sentence encoder in NumPy: the forward pass of a sentence-transformers BERT model
(all-MiniLM-L6-v2 by default) read straight from its safetensors weights.

Why not call sentence-transformers? Importing torch costs seconds; this needs only NumPy,
`tokenizers` and `safetensors`, starts in about 0.3 s and embeds a query in a few ms, which
is what a CLI search and an edge board need. `tests/test_embed.py` checks that it agrees
with sentence-transformers on the same weights.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]
FF_ROWS = 128  # rows of the feed-forward block: 128 x 1536 floats (768 KiB) fit in L2
ATTENTION_FLOATS = 1 << 18  # attention scores computed at once (1 MiB)


def _f32(x: Any) -> Array:
    return cast(Array, np.asarray(x, dtype=np.float32))


def _gelu(x: Array) -> Array:
    """GELU by its tanh form, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in place (`x`
    is a temporary of the caller). NumPy's vectorised tanh makes it ten times faster than
    the erf form through exp and copysign; it differs from that by under 5e-4, which moves
    the sentence vectors by about 1e-6 in cosine (tests/test_embed*.py)."""
    inner = np.square(x)
    inner *= np.float32(0.044715)
    inner += np.float32(1.0)
    inner *= x
    inner *= np.float32(np.sqrt(2.0 / np.pi))
    np.tanh(inner, out=inner)
    inner += np.float32(1.0)
    inner *= x
    inner *= np.float32(0.5)
    return inner


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    """LayerNorm over the last axis, overwriting `x` (a temporary of the caller)."""
    x -= x.mean(axis=-1, keepdims=True)
    var = np.square(x).mean(axis=-1, keepdims=True)
    var += np.float32(eps)
    np.sqrt(var, out=var)
    x /= var
    x *= weight
    x += bias
    return x


class BertEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a local sentence-transformers
    BERT folder (config.json, tokenizer.json, model.safetensors, 1_Pooling/config.json)."""

    batch_tokens: int | None = None  # a cap on a batch's padded tokens (None: no cap)

    def __init__(self, model_dir: str | Path, max_tokens: int | None = None) -> None:
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
        self.folder = folder
        self.w = self._weights()
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()  # tokenizer.json may pad to a fixed width; we batch ourselves
        self.tokenizer.enable_truncation(self.max_tokens)

    def _weights(self) -> dict[str, Array]:
        """The safetensors weights, laid out for the forward pass: Q, K and V fused into one
        matrix (the attention's 1/sqrt(head size) folded into the query part) and every
        dense matrix transposed once, so each layer does one matmul per projection."""
        from safetensors.numpy import load_file

        w = load_file(str(self.folder / "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
        w = {k.removeprefix(prefix): v for k, v in w.items()}
        scale = np.float32(1.0 / np.sqrt(self.dimension // self.heads))
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            parts = [(w.pop(p + f"attention.self.{n}.weight"),
                      w.pop(p + f"attention.self.{n}.bias")) for n in ("query", "key", "value")]
            parts[0] = (parts[0][0] * scale, parts[0][1] * scale)
            w[p + "qkv.weight"] = np.ascontiguousarray(
                np.concatenate([weight for weight, _ in parts]).T)
            w[p + "qkv.bias"] = np.concatenate([bias for _, bias in parts])
            for name in ("attention.output.dense", "intermediate.dense", "output.dense"):
                w[p + name + ".weight"] = np.ascontiguousarray(w[p + name + ".weight"].T)
        return w

    def encode(self, texts: list[str], batch_size: int = 32,
               threads: int | None = None) -> Array:
        """Embeddings, one row per text, in input order. Texts are sorted by length and
        batched, so padding costs little; batches run on `threads` workers (default: one
        per usable core), each calling single-threaded BLAS, which scales on a busy
        machine where BLAS's own spinning threads do not."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        batches = _batches(order, [len(encodings[i].ids) for i in order], batch_size,
                           self.batch_tokens)

        def run(chunk: list[int]) -> None:
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1.0
            out[chunk] = self._forward(ids, mask)

        workers = min(threads or usable_cores(), len(batches))
        if workers <= 1:
            for chunk in batches:
                run(chunk)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="engram-embed") as pool:
                list(pool.map(run, batches))
        return out

    def _forward(self, ids: npt.NDArray[np.int64], mask: Array) -> Array:
        """The encoder on one padded batch. Dense layers run on the (batch * width, hidden)
        matrix: one large GEMM is about twice as fast in OpenBLAS as a stack of small ones."""
        w, (batch, width) = self.w, ids.shape
        d, heads = self.dimension, self.heads
        head_dim = d // heads
        x = w["embeddings.word_embeddings.weight"][ids.reshape(-1)]
        x = x.reshape(batch, width, d)
        x += w["embeddings.position_embeddings.weight"][:width][None]
        x += w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(_f32(x.reshape(batch * width, d)), w["embeddings.LayerNorm.weight"],
                        w["embeddings.LayerNorm.bias"], self.eps)
        blocked = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            qkv = x @ w[p + "qkv.weight"]
            qkv += w[p + "qkv.bias"]
            context = self._attention(qkv.reshape(batch, width, 3, heads, head_dim), blocked)
            attended = context @ w[p + "attention.output.dense.weight"]
            attended += w[p + "attention.output.dense.bias"]
            attended += x
            x = _layer_norm(attended, w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], self.eps)
            ff = self._feed_forward(x, p)
            ff += x
            x = _layer_norm(ff, w[p + "output.LayerNorm.weight"],
                            w[p + "output.LayerNorm.bias"], self.eps)
        hidden = x.reshape(batch, width, d)
        pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1),
                                                                      1.0)[:, None]
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return _f32(pooled / np.maximum(norms, 1e-12))

    def _attention(self, qkv: Array, blocked: Array) -> Array:
        """Each head's softmax(q k^T) v, a few sequences at a time so that their attention
        scores (heads x width x width each) stay in the CPU cache."""
        batch, width, _, heads, head_dim = qkv.shape
        out = np.empty((batch, width, heads * head_dim), dtype=np.float32)
        step = max(1, ATTENTION_FLOATS // (heads * width * width))
        for start in range(0, batch, step):
            rows = slice(start, start + step)
            q = qkv[rows, :, 0].transpose(0, 2, 1, 3)
            k = qkv[rows, :, 1].transpose(0, 2, 3, 1)
            v = qkv[rows, :, 2].transpose(0, 2, 1, 3)
            scores = q @ k
            scores += blocked[rows]
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            out[rows] = (scores @ v).transpose(0, 2, 1, 3).reshape(-1, width, heads * head_dim)
        return out.reshape(batch * width, heads * head_dim)

    def _feed_forward(self, x: Array, p: str) -> Array:
        """The intermediate layer, GELU and output layer, a block of rows at a time: the
        wide intermediate activations of a block stay in the CPU cache through GELU's
        dozen element-wise passes, instead of streaming through memory each time."""
        w = self.w
        out = np.empty((x.shape[0], self.dimension), dtype=np.float32)
        for start in range(0, x.shape[0], FF_ROWS):
            inner = x[start:start + FF_ROWS] @ w[p + "intermediate.dense.weight"]
            inner += w[p + "intermediate.dense.bias"]
            np.matmul(_gelu(inner), w[p + "output.dense.weight"],
                      out=out[start:start + FF_ROWS])
        out += w[p + "output.dense.bias"]
        return out


def _batches(order: list[int], lengths: list[int], size: int,
             tokens: int | None) -> list[list[int]]:
    """`order` (sorted by `lengths`, ascending) cut into batches of `size` texts, fewer where
    a batch would pad to more than `tokens` tokens."""
    batches: list[list[int]] = [[]]
    for i, n in zip(order, lengths, strict=True):
        if len(batches[-1]) == size or (tokens and batches[-1] and
                                        (len(batches[-1]) + 1) * n > tokens):
            batches.append([])
        batches[-1].append(i)
    return [b for b in batches if b]


def usable_cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
        os.cpu_count() or 1


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}
