"""The OpenAI-compatible double speaks the wire format the official client expects."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from engram.llm.openai_double import OpenAIDouble

RECORDED = Path(__file__).parent / "data" / "llm"


def test_the_official_client_reads_answers_streamed_or_not() -> None:
    with OpenAIDouble(model="double-1", reply=lambda m: f"{len(m)} messages seen") as up:
        client = OpenAI(base_url=up.base_url, api_key="unused", max_retries=0)
        messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
        answer = client.chat.completions.create(model="double-1", messages=messages)  # type: ignore[arg-type]
        assert answer.choices[0].message.content == "2 messages seen"
        stream = client.chat.completions.create(model="double-1", messages=messages,  # type: ignore[arg-type]
                                                stream=True)
        pieces = [c.choices[0].delta.content or "" for c in stream]  # type: ignore[union-attr]
        assert "".join(pieces) == "2 messages seen" and len(pieces) > 3
        assert [m.id for m in client.models.list()] == ["double-1"]
        assert [r["messages"] for r in up.requests] == [messages, messages]


def test_its_shapes_match_the_recorded_real_ones() -> None:
    real = json.loads((RECORDED / "openai_chat.json").read_text())
    real_chunk = json.loads((RECORDED / "openai_chat_stream.sse").read_text()
                            .split("\n\n")[0].removeprefix("data: "))
    with OpenAIDouble() as up:
        body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
        ours = httpx.post(f"{up.base_url}/chat/completions", json=body).json()
        with httpx.stream("POST", f"{up.base_url}/chat/completions",
                          json={**body, "stream": True}) as response:
            events = [line for line in response.iter_lines() if line]
    assert set(ours) <= set(real) and set(ours["choices"][0]) == set(real["choices"][0])
    assert ours["choices"][0]["message"]["content"] == "You said: hello"
    first = json.loads(events[0].removeprefix("data: "))
    assert set(first) == set(real_chunk) and first["choices"][0]["delta"]["role"] == "assistant"
    assert events[-1] == "data: [DONE]"


@pytest.mark.parametrize("body", [b"not json", b'{"model": "m"}'])
def test_a_bad_request_gets_the_openai_error_shape(body: bytes) -> None:
    with OpenAIDouble() as up:
        response = httpx.post(f"{up.base_url}/chat/completions", content=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
