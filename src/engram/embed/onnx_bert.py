"""BERT sentence encoders on ONNX Runtime: the graph of `onnx_graph` built from the model's
own safetensors weights, run in fp32 or, dynamically quantized, in int8 (the int8 GEMMs use
VNNI where the CPU has it; bench/embed.py measures both against the NumPy encoder).

The built graphs are cached as files named by the weights' SHA-256, under
`ENGRAM_MODEL_CACHE` (else `$XDG_CACHE_HOME/engram/onnx`, else `~/.cache/engram/onnx`):
building takes seconds once, loading a cached one a fraction of that. A cache file is
written atomically; one that does not load (cut short, corrupt) is built again. Nothing is
downloaded. onnxruntime and onnx (the `onnx` extra) are imported only here, on first use.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engram.embed.bert import Array, BertEncoder
from engram.errors import InvalidInput

GRAPH_VERSION = 2  # bump when onnx_graph changes what it builds: older cache files go unused


def cache_dir() -> Path:
    explicit = os.environ.get("ENGRAM_MODEL_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "engram" / "onnx"


@functools.cache
def _digest(weights: Path, size: int, mtime_ns: int) -> str:
    """SHA-256 of a weights file, read once per process for a given size and time (90 MB:
    a tenth of a second each time an encoder is made otherwise)."""
    digest = hashlib.sha256()
    with open(weights, "rb") as stream:
        while chunk := stream.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def available() -> bool:
    """Whether ONNX Runtime and onnx are installed (the `onnx` extra)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


class OnnxBertEncoder(BertEncoder):
    """`BertEncoder` (same tokenizer, truncation, length-sorted batches and L2-normalised
    mean pooling) whose forward pass is an ONNX Runtime session; `int8` quantizes the
    attention and dense layers' weights (per output channel) and their inputs per batch."""

    # ONNX Runtime's attention holds every head's scores for the whole batch at once: long
    # texts go in smaller batches, so that 32 of 256 tokens do not cost 200 MB more.
    batch_tokens = 2048

    def __init__(self, model_dir: str | Path, *, int8: bool = False,
                 cache: str | Path | None = None, max_tokens: int | None = None) -> None:
        self.int8 = int8
        super().__init__(model_dir, max_tokens)
        self.cache = Path(cache) if cache is not None else cache_dir()
        self.session = self._session()

    def _weights(self) -> dict[str, Array]:
        return {}  # the graph holds them; read only to build it (`build`)

    def model_file(self) -> Path:
        """Where the graph of these weights (and this variant) is cached."""
        weights = (self.folder / "model.safetensors").resolve()
        stat = weights.stat()
        variant = "int8" if self.int8 else "fp32"
        return self.cache / (f"{_digest(weights, stat.st_size, stat.st_mtime_ns)[:24]}-"
                             f"{variant}-g{GRAPH_VERSION}.onnx")

    def _session(self) -> Any:
        """A session on the cached graph; built (again) when absent or unreadable."""
        path = self.model_file()
        if path.exists():
            try:
                return self._open(path)
            except Exception:  # any unreadable cache file is simply built again
                pass
        self.build(path)
        return self._open(path)

    def build(self, path: Path) -> None:
        """Write the graph for this folder's weights to `path` (atomically)."""
        import onnx

        from engram.embed.onnx_graph import bert_graph

        model = bert_graph(super()._weights(), self.layers, self.heads, self.eps)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
        except OSError as exc:
            raise InvalidInput("ENGRAM_MODEL_CACHE", f"{path.parent} cannot be written "
                               f"({exc.strerror})", "point it at a folder you can write") from None
        os.close(fd)
        try:
            if self.int8:
                from onnxruntime.quantization import QuantType, quantize_dynamic

                # Per output channel weights; activations per tensor, per batch. The first
                # layer's feed-forward output stays fp32: of all the layers it moved the
                # vectors most (min cosine to fp32 0.978 with it quantized, 0.985 without,
                # for 10 % of the speed; docs/ingest.md). Shape inference does not type the
                # com.microsoft operators' outputs, hence DefaultTensorType.
                # Its advice to pre-process (shape inference) would go to the root logger.
                logging.disable(logging.WARNING)
                try:
                    quantize_dynamic(model, name, per_channel=True, reduce_range=False,
                                     weight_type=QuantType.QInt8,
                                     nodes_to_exclude=["encoder.layer.0.output.dense"],
                                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
                finally:
                    logging.disable(logging.NOTSET)
            else:
                onnx.save(model, name)
            os.replace(name, path)
        finally:
            Path(name).unlink(missing_ok=True)

    def _open(self, path: Path) -> Any:
        import onnxruntime as ort

        # One thread a session: `encode` runs a batch per usable core at once, as the NumPy
        # encoder does (on the shared 2-core machine 212 texts per CPU-second against 194
        # with one batch at a time on two intra-op threads; docs/ingest.md).
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def _forward(self, ids: npt.NDArray[np.int64], mask: Array) -> Array:
        pooled = self.session.run(["pooled"], {"input_ids": ids.astype(np.int32),
                                               "attention_mask": mask.astype(np.int32)})[0]
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)
