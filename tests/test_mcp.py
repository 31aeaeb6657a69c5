"""The MCP server through the official SDK's own clients: stdio (`engram mcp` as a child
process, the way Claude Desktop runs it) and streamable HTTP (/mcp inside `engram serve`)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from engram.memory import Memory
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.keys import KeyRing
from engram.server.service import ServerConfig

Check = Callable[[ClientSession], Awaitable[None]]


def structured(result: Any) -> Any:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        value = result.structured_content
        return value.get("result", value) if isinstance(value, dict) else value
    return json.loads(result.content[0].text)


def text_of(result: Any) -> str:
    assert not result.is_error, result.content
    return str(result.content[0].text)


async def round_trip(session: ClientSession) -> None:
    """Every tool and both resources, as alice."""
    await session.initialize()
    tools = {t.name for t in (await session.list_tools()).tools}
    assert tools == {"remember", "recall", "forget", "context", "feedback"}
    made = structured(await session.call_tool(
        "remember", {"text": "I prefer green tea in the morning", "memory_type": "preference"}))
    other = structured(await session.call_tool("remember", {"text": "I live in Lisbon"}))
    hits = structured(await session.call_tool("recall", {"query": "what tea do I drink"}))
    assert hits[0]["id"] == made["id"]
    shown = text_of(await session.call_tool("context", {"query": "tea", "style": "markdown"}))
    assert "green tea" in shown
    rated = structured(await session.call_tool("feedback", {"memory_id": made["id"],
                                                            "rating": "good"}))
    assert rated["confidence"] > 0.5
    memory = await session.read_resource(f"engram://memory/{made['id']}")
    body = json.loads(memory.contents[0].text)  # type: ignore[union-attr]
    assert body["memory"]["user_id"] == "alice"
    assert [e["type"] for e in body["history"]][:1] == ["memory.added"]
    profile = await session.read_resource("engram://profile/alice")
    assert "green tea" in profile.contents[0].text  # type: ignore[union-attr]
    assert text_of(await session.call_tool("forget", {"memory_id": other["id"]})) == \
        f"forgot {other['id']}"
    missing = await session.call_tool("forget", {"memory_id": other["id"]})
    assert missing.is_error and "no memory" in missing.content[0].text  # type: ignore[union-attr]
    bad = await session.call_tool("feedback", {"memory_id": made["id"], "rating": "meh"})
    assert bad.is_error and "rating" in bad.content[0].text  # type: ignore[union-attr]


def test_stdio(tmp_path: Path) -> None:
    params = StdioServerParameters(command=sys.executable, args=[
        "-m", "engram", "mcp", "--data", str(tmp_path / "store"), "--user", "alice"])

    async def main() -> None:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await round_trip(s)

    anyio.run(main)
    with Memory(tmp_path / "store", embedder=None) as mem:
        assert [m.user_id for m in mem.list()] == ["alice"]


@asynccontextmanager
async def http_session(url: str, token: str | None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http, \
            streamable_http_client(f"{url}/mcp", http_client=http) as (read, write), \
            ClientSession(read, write) as session:
        yield session


def test_streamable_http_acts_as_the_key(tmp_path: Path) -> None:
    mem = Memory(tmp_path / "store", embedder=None)
    ring = KeyRing(mem.store)
    alice = ring.create("alice", "read,write", now=mem.clock.now())[0]
    bob = ring.create("bob", "read,write", now=mem.clock.now())[0]
    app = create_app(ServerConfig(data=tmp_path / "store"), mem)

    async def main(url: str) -> None:
        async with http_session(url, alice) as session:
            await round_trip(session)
        secret = mem.list(user_id="alice", memory_type="preference")[0].id
        async with http_session(url, bob) as session:
            await session.initialize()
            peek = await session.call_tool("recall", {"query": "tea", "user_id": "alice"})
            assert peek.is_error and "belongs to 'bob'" in peek.content[0].text  # type: ignore[union-attr]
            assert structured(await session.call_tool("recall", {"query": "tea"})) == []
            gone = await session.call_tool("forget", {"memory_id": secret})
            assert gone.is_error

    with serving(app) as url:
        anyio.run(main, url)
        refused = httpx2.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1,
                                                  "method": "tools/list"})
        assert refused.status_code == 401
