"""No 500, one error shape: hostile and clumsy input over real HTTP (lone surrogates in every
field, huge offsets, deep nesting, unreadable bodies, unknown paths and methods) gets a 4xx
in the documented `error{field, problem, fix}` shape, and nothing is written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from engram.llm.openai_double import OpenAIDouble
from engram.memory import Memory
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.service import ServerConfig

BAD = "\ud800"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Memory, str]]:
    data = tmp_path_factory.mktemp("errors") / "store"
    mem = Memory(data, embedder=None)
    mid = mem.add("Alice lives in Lisbon", user_id="alice").id
    with OpenAIDouble(model="double-1") as upstream, serving(create_app(
            ServerConfig(data=data, upstream=upstream.base_url), mem)) as url, \
            httpx.Client(base_url=url, timeout=30) as client:
        yield client, mem, mid


def problem(answer: httpx.Response, status: int) -> dict[str, str]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    error: dict[str, str] = answer.json()["error"]
    assert set(error) >= {"message", "type", "field", "problem", "fix"} and error["fix"]
    return error


def raw_json(value: Any) -> bytes:
    """JSON with the lone surrogate escaped (as a client would send it), not encoded."""
    import json

    return json.dumps(value).encode()


SURROGATE_BODIES: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/memories", {"text": "x", "session_id": BAD}, "session_id"),
    ("POST", "/memories", {"text": "x", "user_id": BAD}, "user_id"),
    ("POST", "/memories", {"text": "x", "agent_id": BAD}, "agent_id"),
    ("POST", "/memories", {"text": "x", "summary": BAD}, "summary"),
    ("POST", "/memories", {"text": "x", "entities": [BAD]}, "entities[0]"),
    ("POST", "/memories", {"text": "x", "domains": ["a", BAD]}, "domains[1]"),
    ("POST", "/memories", {"text": "x", "shared_with": [BAD]}, "shared_with[0]"),
    ("POST", "/memories", {"text": "x", "tags": [BAD]}, "tags[0]"),
    ("POST", "/memories", {"text": "x", "metadata": {"k": BAD}}, "metadata.k"),
    ("POST", "/memories", {"text": "x", "metadata": {BAD: 1}}, "metadata.\\ud800"),
    ("POST", "/memories", {"text": BAD}, "text"),
    ("POST", "/search", {"query": BAD}, "query"),
    ("POST", "/context", {"query": BAD}, "query"),
    ("POST", "/turns", {"user_msg": "hi", "session_id": BAD}, "session_id"),
    ("POST", "/v1/chat/completions",
     {"model": "m", "messages": [{"role": "user", "content": BAD}]}, "messages[0].content"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), SURROGATE_BODIES)
def test_a_lone_surrogate_in_any_field_is_a_422(api: tuple[httpx.Client, Memory, str],
                                                method: str, path: str,
                                                body: dict[str, Any], field: str) -> None:
    client, _, _ = api
    answer = client.request(method, path, content=raw_json(body),
                            headers={"content-type": "application/json"})
    assert problem(answer, 422)["field"] == field


def test_patch_fields_with_surrogates(api: tuple[httpx.Client, Memory, str]) -> None:
    client, mem, mid = api
    for body, field in (({"summary": BAD}, "summary"), ({"add_tags": [BAD]}, "add_tags[0]"),
                        ({"metadata": {"a": [BAD]}}, "metadata.a[0]")):
        answer = client.patch(f"/memories/{mid}", content=raw_json(body),
                              headers={"content-type": "application/json"})
        assert problem(answer, 422)["field"] == field
    assert [e.type.value for e in mem.history(mid)] == ["memory.added"]


def test_offsets_and_limits_are_bounded(api: tuple[httpx.Client, Memory, str]) -> None:
    client, _, _ = api
    for params in ({"offset": str(10**30)}, {"offset": "-1"}, {"limit": "0"},
                   {"limit": str(10**30)}, {"offset": "1e30"}):
        assert problem(client.get("/memories", params=params), 422)["field"] in (
            "offset", "limit")
    assert client.get("/memories", params={"offset": "1000000000"}).json() == []


def test_unreadable_bodies_are_400(api: tuple[httpx.Client, Memory, str]) -> None:
    client, _, _ = api
    json_type = {"content-type": "application/json"}
    bodies = [b"{not json", b'{"text": "\xff\xfe"}', b"[" * 100_000,
              b'{"text": "x", "confidence": ' + b"9" * 5000 + b"}", b"[" * 40 + b"]" * 40]
    for path in ("/memories", "/v1/chat/completions", "/search"):
        for body in bodies:
            assert problem(client.post(path, content=body, headers=json_type), 400)[
                "field"] == "body"


def test_unknown_paths_and_methods_keep_the_shape(api: tuple[httpx.Client, Memory, str]
                                                  ) -> None:
    client, _, mid = api
    assert problem(client.get("/memories/a%2Fb"), 404)["field"] == "path"
    assert problem(client.get("/nowhere"), 404)["field"] == "path"
    assert problem(client.get("/memories/nope"), 404)["field"] == "id"
    refused = client.put(f"/memories/{mid}", json={})
    assert problem(refused, 405)["field"] == "method" and refused.headers["allow"]
    assert problem(client.post("/search", json={"query": "x", "limit": "many"}), 422)[
        "field"] == "limit"
    assert problem(client.post("/search", json=[1]), 422)["field"] == "body"


def test_the_proxy_answers_malformed_json_with_400(api: tuple[httpx.Client, Memory, str]
                                                   ) -> None:
    client, _, _ = api
    for body in (b"", b"{", b'"just a string"'):
        answer = client.post("/v1/chat/completions", content=body,
                             headers={"content-type": "application/json"})
        assert answer.status_code in (400, 422) and problem(answer, answer.status_code)
    assert problem(client.post("/v1/chat/completions", content=b"{",
                               headers={"content-type": "application/json"}), 400)
