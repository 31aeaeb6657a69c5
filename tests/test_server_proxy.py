"""The OpenAI-compatible memory proxy, driven by the official `openai` client over real HTTP.

The upstream is `engram.llm.openai_double.OpenAIDouble`: a stand-in for a paid model API that
speaks the wire format recorded from the real one (tests/data/llm/openai_chat*.json/sse) on
127.0.0.1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from engram.llm.openai_double import OpenAIDouble
from engram.memory import Memory
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.keys import KeyRing
from engram.server.service import ServerConfig
from engram.server.upstream import SSEText, is_loopback

ASK: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What am I allergic to?"}]


@pytest.fixture
def upstream() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(model="double-1") as double:
        yield double


def start(store_dir: Path, upstream: OpenAIDouble, **options: object) -> tuple[Memory, str]:
    mem = Memory(store_dir, embedder=None)
    mem.add("Alice is allergic to peanuts", user_id="alice")
    mem.add("Alice keeps her passport number 1234 at home", user_id="alice", sensitive=True)
    mem.add("Bob is allergic to cats", user_id="bob")
    return mem, upstream.base_url


@pytest.fixture
def proxy(store_dir: Path, upstream: OpenAIDouble) -> Iterator[tuple[Memory, str]]:
    mem, base = start(store_dir, upstream)
    app = create_app(ServerConfig(data=store_dir, upstream=base), mem)
    with serving(app) as url:
        yield mem, url


def sent_system(upstream: OpenAIDouble) -> str:
    """What the proxy told the model besides the client's messages."""
    messages = upstream.requests[-1]["messages"]
    assert messages[0] == ASK[0]  # the client's own instructions stay first
    return str(messages[1]["content"]) if messages[1]["role"] == "system" else ""


def test_chat_gains_memory_and_is_remembered(proxy: tuple[Memory, str],
                                             upstream: OpenAIDouble) -> None:
    mem, url = proxy
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused-on-loopback")
    answer = client.chat.completions.create(model="double-1", messages=ASK, user="alice",
                                            extra_body={"engram": {"session_id": "s9"}})
    assert answer.id.startswith("chatcmpl-double")  # the upstream's own answer, untouched
    assert answer.choices[0].message.content == "You said: What am I allergic to?"
    told = sent_system(upstream)
    assert "peanuts" in told and "cats" not in told  # alice's memories only
    assert "engram" not in upstream.requests[-1]  # our options are not forwarded
    turns = mem.conversation("s9", user_id="alice")
    assert turns == [{"role": "user", "content": "What am I allergic to?"},
                     {"role": "assistant", "content": "You said: What am I allergic to?"}]


def test_streaming_passes_the_upstreams_chunks_through(proxy: tuple[Memory, str],
                                                      upstream: OpenAIDouble) -> None:
    mem, url = proxy
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x")
    stream = client.chat.completions.create(model="double-1", messages=ASK, stream=True,
                                            user="alice",
                                            extra_body={"engram": {"session_id": "s2"}})
    chunks = list(stream)
    assert all(c.id == chunks[0].id for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == \
        "You said: What am I allergic to?"
    assert chunks[-1].choices[0].finish_reason == "stop"

    # byte for byte, the proxy's stream is the upstream's (only id and time differ per call)
    body = {"model": "double-1", "messages": ASK, "stream": True}
    direct = httpx.post(f"{upstream.base_url}/chat/completions", json=body).text
    proxied = httpx.post(f"{url}/v1/chat/completions", json=body).text

    def shape(text: str) -> list[object]:
        return [json.loads(line[6:]) | {"id": 0, "created": 0} if line != "data: [DONE]"
                else line for line in text.split("\n\n") if line]

    assert shape(proxied) == shape(direct)
    assert mem.conversation("s2", user_id="alice")[-1]["content"] == \
        "You said: What am I allergic to?"


def test_models_come_from_the_upstream(proxy: tuple[Memory, str]) -> None:
    _, url = proxy
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x")
    assert [m.id for m in client.models.list()] == ["double-1"]


def test_sensitive_memories_stay_off_remote_upstreams(store_dir: Path,
                                                      upstream: OpenAIDouble) -> None:
    mem, base = start(store_dir, upstream)
    remote = ServerConfig(data=store_dir, upstream=base, upstream_local=False)
    ask: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "Where is my passport number?"}]
    with serving(create_app(remote, mem)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x")
        client.chat.completions.create(model="m", messages=ask, user="alice")
        assert "1234" not in json.dumps(upstream.requests[-1])
        client.chat.completions.create(model="m", messages=ask, user="alice",
                                       extra_body={"engram": {"include_sensitive": True}})
        assert "1234" in upstream.requests[-1]["messages"][0]["content"]
    assert not is_loopback("https://api.openai.com/v1")
    assert is_loopback("http://127.0.0.1:8000/v1") and is_loopback("http://[::1]:1/v1")


def test_the_user_comes_from_the_key(store_dir: Path, upstream: OpenAIDouble) -> None:
    mem, base = start(store_dir, upstream)
    ring, now = KeyRing(mem.store), mem.clock.now()
    alice = ring.create("alice", "read,write", now=now)[0]
    reader = ring.create("alice", "read", now=now)[0]
    relay = ring.create("chat-ui", "read,write,any-user", now=now)[0]
    with serving(create_app(ServerConfig(data=store_dir, upstream=base), mem)) as url:
        def ask(key: str, **extra: object) -> None:
            openai.OpenAI(base_url=f"{url}/v1", api_key=key).chat.completions.create(
                model="m", messages=ASK, **extra)  # type: ignore[call-overload]

        ask(alice)
        assert "peanuts" in sent_system(upstream)
        with pytest.raises(openai.PermissionDeniedError):
            ask(alice, user="bob")  # a plain key cannot speak for someone else
        ask(relay, user="bob")  # a relay key may
        assert "cats" in sent_system(upstream) and "peanuts" not in sent_system(upstream)
        before = mem.count(user_id="alice")
        ask(reader)  # read-only: answered, not recorded
        assert mem.count(user_id="alice") == before
        with pytest.raises(openai.AuthenticationError):
            ask("egm_00000000_wrong")


def test_bad_requests_and_missing_upstream(store_dir: Path) -> None:
    mem = Memory(store_dir, embedder=None)
    with serving(create_app(ServerConfig(data=store_dir), mem)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.UnprocessableEntityError, match="--upstream"):
            client.chat.completions.create(model="m", messages=ASK)
        bad = httpx.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": []})
        assert bad.status_code == 422 and bad.json()["error"]["param"] == "messages"


def test_sse_text_collects_split_chunks() -> None:
    pieces: list[str] = []
    sse = SSEText(pieces)
    event = json.dumps({"choices": [{"delta": {"content": "Hello world"}}]})
    raw = f"data: {event}\n\ndata: [DONE]\n\n".encode()
    for i in range(0, len(raw), 7):
        sse.feed(raw[i:i + 7])
    assert pieces == ["Hello world"]


def test_a_provider_upstream_speaks_openais_wire(store_dir: Path,
                                                 upstream: OpenAIDouble) -> None:
    """`--model SPEC`: an Engram provider (here the OpenAI one, pointed at the double) whose
    answers the proxy writes as chat completions and chunks."""
    mem, base = start(store_dir, upstream)
    config = ServerConfig(data=store_dir, model=f"openai:double-1@{base}")
    with serving(create_app(config, mem)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x")
        assert [m.id for m in client.models.list()] == ["openai:double-1"]
        answer = client.chat.completions.create(model="any", messages=ASK, user="alice")
        assert answer.choices[0].message.content == "You said: What am I allergic to?"
        assert "peanuts" in sent_system(upstream)
        chunks = list(client.chat.completions.create(
            model="any", messages=ASK, user="alice", stream=True,
            extra_body={"engram": {"session_id": "p1"}}))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == \
            "You said: What am I allergic to?"
        assert chunks[-1].choices[0].finish_reason == "stop"
        said = mem.conversation("p1", user_id="alice")
        assert said[0]["content"] == "What am I allergic to?"


def test_an_unreachable_upstream_is_a_502_naming_it(store_dir: Path) -> None:
    mem = Memory(store_dir, embedder=None)
    config = ServerConfig(data=store_dir, upstream="http://127.0.0.1:9/v1")
    with serving(create_app(config, mem)) as url:
        answer = httpx.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": ASK})
        assert answer.status_code == 502
        error = answer.json()["error"]
        assert error["field"] == "upstream" and "127.0.0.1:9" in error["problem"]
        assert "--upstream" in error["fix"]
