"""Attacks a web page can make on a local Engram (no key in the store), driven with real HTTP:
DNS rebinding (a foreign Host), cross-site simple POSTs (text/plain, a foreign Origin), the
dashboard cookie sent to the API, a dashboard form without its CSRF token; and empty ids,
which must be refused the same way over REST, the proxy and MCP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engram.llm.openai_double import OpenAIDouble
from engram.memory import Memory
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.gate import allowed_hosts
from engram.server.keys import KeyRing
from engram.server.service import ServerConfig

CHAT = {"model": "m", "messages": [{"role": "user", "content": "I live in Berlin"}]}


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Memory]]:
    """A local server (no key: loopback requests need none) with a proxy upstream."""
    data = tmp_path_factory.mktemp("security") / "store"
    mem = Memory(data, embedder=None)
    mem.add("Alice's door code is 4711", user_id="alice")
    with OpenAIDouble(model="double-1") as upstream, serving(create_app(
            ServerConfig(data=data, upstream=upstream.base_url), mem)) as url:
        yield url, mem


def test_a_foreign_host_is_refused_everywhere(local: tuple[str, Memory]) -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: every path refuses it."""
    url, _ = local
    evil = {"Host": "attacker.example:8765"}
    for method, path in (("GET", "/export"), ("GET", "/memories"), ("GET", "/dashboard"),
                         ("POST", "/v1/chat/completions"), ("GET", "/health"),
                         ("POST", "/mcp")):
        answer = httpx.request(method, url + path, headers=evil, json={})
        assert answer.status_code == 421, (path, answer.text)
        assert answer.json()["error"]["field"] == "host"
    assert httpx.get(url + "/export").status_code == 200
    port = url.rsplit(":", 1)[1]
    assert httpx.get(url + "/memories", headers={"Host": f"localhost:{port}"}).status_code == 200


def test_cross_site_writes_are_refused(local: tuple[str, Memory]) -> None:
    """The "simple" POST a web page can send without a preflight plants nothing."""
    url, mem = local
    before = mem.count(user_id="default")
    attacks: list[dict[str, Any]] = [
        {"content": '{"text": "planted"}', "headers": {"Content-Type": "text/plain"}},
        {"json": {"text": "planted"}, "headers": {"Origin": "https://attacker.example"}},
        {"json": {"text": "planted"}, "headers": {"Origin": "null"}},
        {"json": {"text": "planted"}, "headers": {"Sec-Fetch-Site": "cross-site"}},
        {"content": "text=planted",
         "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
    ]
    for attack in attacks:
        for path, body in (("/memories", None), ("/v1/chat/completions", CHAT)):
            kwargs: dict[str, Any] = dict(attack)
            if body is not None and "json" in kwargs:
                kwargs["json"] = body
            answer = httpx.post(url + path, **kwargs)
            assert answer.status_code in (403, 415), (path, attack, answer.text)
            assert answer.json()["error"]["field"] in ("origin", "content-type")
    assert mem.count(user_id="default") == before
    same = httpx.post(url + "/memories", json={"text": "mine"},
                      headers={"Origin": url, "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 201


def test_the_dashboard_cookie_opens_the_dashboard_alone(tmp_path: Path) -> None:
    mem = Memory(tmp_path / "store", embedder=None)
    admin = KeyRing(mem.store).create("ops", "read,write,admin", now=mem.clock.now())[0]
    with serving(create_app(ServerConfig(data=tmp_path / "store"), mem)) as url, \
            httpx.Client(base_url=url) as browser:
        csrf = browser.get("/dashboard/login").cookies["engram_csrf"]
        assert browser.post("/dashboard/login", data={"key": admin}).status_code == 403
        assert browser.post("/dashboard/login", data={"key": admin, "csrf_token": "forged"}
                            ).status_code == 403
        signed = browser.post("/dashboard/login", data={"key": admin, "csrf_token": csrf})
        assert signed.status_code == 303
        assert "samesite=strict" in signed.headers["set-cookie"].lower()
        assert browser.get("/dashboard").status_code == 200
        cookie = {"Cookie": f"engram_key={admin}"}
        for path in ("/memories", "/export", "/v1/models", "/stats"):
            answer = httpx.get(url + path, headers=cookie)
            assert answer.status_code == 401, path
        assert httpx.post(url + "/memories", json={"text": "x"}, headers=cookie
                          ).status_code == 401


@pytest.mark.parametrize("blank", ["", "  ", "\t"])
def test_empty_ids_are_refused_everywhere(local: tuple[str, Memory], blank: str) -> None:
    url, mem = local
    before = sum(1 for _ in mem.events())
    rest = [
        httpx.post(url + "/memories", json={"text": "x", "user_id": blank}),
        httpx.post(url + "/memories", json={"text": "x", "session_id": blank}),
        httpx.get(url + "/memories", params={"user_id": blank}),
        httpx.post(url + "/search", json={"query": "x", "user_id": blank}),
        httpx.post(url + "/context", json={"query": "x", "user_id": blank}),
        httpx.post(url + "/turns", json={"user_msg": "x", "user_id": blank,
                                         "session_id": "s"}),
        httpx.post(url + "/turns", json={"user_msg": "x", "session_id": blank}),
        httpx.post(url + "/v1/chat/completions", json={**CHAT, "user": blank}),
        httpx.post(url + "/v1/chat/completions",
                   json={**CHAT, "engram": {"session_id": blank}}),
    ]
    if not blank:  # a header value cannot be blank but empty
        rest.append(httpx.post(url + "/v1/chat/completions", json=CHAT,
                               headers={"X-Engram-Session": blank}))
    for answer in rest:
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["field"].rsplit(".", 1)[-1] in (
            "user_id", "session_id", "user", "x-engram-session"), answer.text
    assert sum(1 for _ in mem.events()) == before


def test_mcp_refuses_an_empty_user(local: tuple[str, Memory]) -> None:
    import anyio
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.types import TextContent

    url, _ = local

    async def call() -> str:
        async with streamable_http_client(f"{url}/mcp") as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            done = await session.call_tool("remember", {"text": "x", "user_id": " "})
            assert done.is_error and isinstance(done.content[0], TextContent)
            return done.content[0].text

    assert "user_id" in anyio.run(call)


def test_allowed_hosts() -> None:
    assert allowed_hosts("0.0.0.0") is None  # every interface, a key required anyway
    assert allowed_hosts("127.0.0.1") == frozenset({"127.0.0.1", "::1", "localhost"})
    assert "memory.lan" in (allowed_hosts("0.0.0.0", ["Memory.lan"]) or ())
    assert "10.0.0.5" in (allowed_hosts("10.0.0.5") or ())
