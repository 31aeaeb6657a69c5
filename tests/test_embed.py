"""Embedders: the NumPy MiniLM agrees with sentence-transformers; HTTP embedders speak the
real wire formats (served here by a local test double, since no embedding server runs in CI)."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import numpy as np
import pytest

from engram.embed.embedders import (
    CachedEmbedder,
    HTTPEmbedder,
    LocalEmbedder,
    load_embedder,
    minilm_path,
)
from engram.errors import InvalidInput

SENTENCES = [
    "Caroline adopted a puppy named Oscar",
    "Where does Alex live now?",
    "ok",
    "I moved to Berlin in August and love the long summer evenings by the Spree. " * 12,
]


@pytest.fixture(scope="module")
def minilm() -> LocalEmbedder:
    return LocalEmbedder(minilm_path(), name="all-MiniLM-L6-v2")


def test_numpy_minilm_matches_sentence_transformers(minilm: LocalEmbedder) -> None:
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(minilm_path()), device="cpu").encode(
        SENTENCES, normalize_embeddings=True)
    ours = minilm.embed(SENTENCES)
    assert ours.shape == (4, 384) and ours.dtype == np.float32
    assert np.all((ours * reference).sum(axis=1) > 0.9999)


def test_embeddings_are_unit_length_and_meaningful(minilm: LocalEmbedder) -> None:
    a, b, c = minilm.embed(["I adopted a dog", "we got a new puppy", "tax filing deadline"])
    assert np.isclose(np.linalg.norm(a), 1.0, atol=1e-5)
    assert a @ b > a @ c + 0.2


def test_batching_does_not_change_results(minilm: LocalEmbedder) -> None:
    together = minilm.embed(SENTENCES)
    alone = np.stack([minilm.embed([s])[0] for s in SENTENCES])
    assert np.allclose(together, alone, atol=1e-5)


class _FakeEmbeddingServer(BaseHTTPRequestHandler):
    """Answers like OpenAI's /v1/embeddings and Ollama's /api/embed (shapes from their docs)."""

    requests: list[dict[str, Any]] = []  # noqa: RUF012

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body["_auth"] = self.headers.get("Authorization")
        body["_path"] = self.path
        self.requests.append(body)
        vectors = [[float(len(t)), 1.0, 0.0] for t in body["input"]]
        if self.path == "/v1/embeddings":
            answer: dict[str, Any] = {
                "object": "list", "model": body["model"],
                "data": [{"object": "embedding", "index": i, "embedding": v}
                         for i, v in reversed(list(enumerate(vectors)))],
                "usage": {"prompt_tokens": 3, "total_tokens": 3}}
        elif self.path == "/api/embed":
            answer = {"model": body["model"], "embeddings": vectors}
        else:
            self.send_error(404, "no such endpoint")
            return
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), _FakeEmbeddingServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def test_openai_compatible_endpoint(server: str) -> None:
    emb = HTTPEmbedder("openai", "text-embedding-3-small", f"{server}/v1", api_key="sk-test")
    vectors = emb.embed(["ab", "abcd"])
    assert emb.dimension == 3
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert vectors[1][0] > vectors[0][0]  # order restored from "index"
    sent = _FakeEmbeddingServer.requests[-1]
    assert sent["_auth"] == "Bearer sk-test" and sent["input"] == ["ab", "abcd"]


def test_ollama_endpoint(server: str) -> None:
    emb = load_embedder(f"ollama:nomic-embed-text@{server}")
    assert emb.embed(["hello"]).shape == (1, 3)
    assert _FakeEmbeddingServer.requests[-1]["_path"] == "/api/embed"


def test_unreachable_server_names_the_url() -> None:
    emb = HTTPEmbedder("ollama", "m", "http://127.0.0.1:9")
    with pytest.raises(InvalidInput, match=r"cannot reach http://127.0.0.1:9/api/embed"):
        emb.embed(["x"])


def test_cache_embeds_each_text_once(server: str) -> None:
    inner = HTTPEmbedder("ollama", "m", server)
    cached = CachedEmbedder(inner, size=2)
    before = len(_FakeEmbeddingServer.requests)
    cached.embed(["a", "b"])
    cached.embed(["a", "b", "a"])
    assert len(_FakeEmbeddingServer.requests) == before + 1


@pytest.mark.parametrize("spec", ["nope", "local:", "openai:"])
def test_unknown_spec_is_refused(spec: str) -> None:
    with pytest.raises(InvalidInput, match="embedder"):
        load_embedder(spec)
