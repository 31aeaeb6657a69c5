"""Engram memory around the real `litellm.completion`, which calls `OpenAIDouble` over HTTP on
127.0.0.1 in the OpenAI wire format (the shapes recorded in tests/data/llm), streamed and not."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from engram import Memory
from engram.errors import InvalidInput
from engram.integrations.litellm_memory import (
    completion,
    last_user_text,
    with_memory,
    with_memory_block,
)
from engram.llm.litellm import import_litellm
from engram.llm.openai_double import OpenAIDouble


@pytest.fixture(scope="module")
def litellm() -> Any:
    try:
        return import_litellm()
    except InvalidInput:
        pytest.skip("litellm is not installed (pip install 'engram-memory[litellm]')")


@pytest.fixture
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(model="double-1") as up:
        yield up


def call_args(up: OpenAIDouble, text: str, **extra: Any) -> dict[str, Any]:
    return {"model": f"openai/{up.model}", "api_base": up.base_url, "api_key": "sk-test",
            "messages": [{"role": "user", "content": text}], **extra}


def test_memories_reach_the_model_and_the_turn_is_remembered(
        litellm: Any, mem: Memory, double: OpenAIDouble) -> None:
    fact = mem.add("Alice's cat is called Miso", user_id="alice")
    chat = with_memory(litellm.completion, mem, user_id="alice", session_id="s1")
    response = chat(**call_args(double, "What is my cat called?"))
    assert response.choices[0].message.content == "You said: What is my cat called?"
    sent = double.requests[-1]["messages"]
    assert sent[0]["role"] == "system" and "Miso" in sent[0]["content"]
    assert sent[-1] == {"role": "user", "content": "What is my cat called?"}
    assert chat.last_plan is not None and chat.last_plan.memory_ids == (fact.id,)
    assert mem.conversation("s1", user_id="alice") == [
        {"role": "user", "content": "What is my cat called?"},
        {"role": "assistant", "content": "You said: What is my cat called?"}]


def test_a_stream_is_remembered_once_read_to_the_end(
        litellm: Any, mem: Memory, double: OpenAIDouble) -> None:
    chat = with_memory(litellm.completion, mem, user_id="alice", session_id="s1")
    chunks = chat(**call_args(double, "I moved to Lisbon last spring", stream=True))
    assert mem.conversation("s1", user_id="alice") == []  # nothing before the answer ends
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: I moved to Lisbon last spring"
    assert double.requests[-1]["stream"] is True
    assert mem.conversation("s1", user_id="alice")[-1] == {"role": "assistant",
                                                          "content": text}
    chat(**call_args(double, "Where do I live?", engram_session_id="s2"))
    assert "Lisbon" in double.requests[-1]["messages"][0]["content"]


def test_the_callers_system_message_is_kept_and_extended(
        litellm: Any, mem: Memory, double: OpenAIDouble) -> None:
    mem.add("Alice prefers short answers", user_id="alice", memory_type="preference")
    chat = with_memory(litellm.completion, mem, user_id="alice", record=False)
    messages = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": "How should you answer me? short answers?"}]
    chat(**{**call_args(double, ""), "messages": messages})
    sent = double.requests[-1]["messages"]
    assert len(sent) == 2
    assert sent[0]["content"].startswith("You are terse.\n\n")
    assert "prefers short answers" in sent[0]["content"]
    assert messages[0] == {"role": "system", "content": "You are terse."}  # not mutated
    assert mem.count(user_id="alice") == 1  # record=False


def test_users_are_isolated_and_overridable_per_call(
        litellm: Any, mem: Memory, double: OpenAIDouble) -> None:
    mem.add("Bob's passport number is X123", user_id="bob")
    chat = with_memory(litellm.completion, mem, user_id="alice", record=False)
    chat(**call_args(double, "What is my passport number?"))
    assert all("X123" not in m["content"] for m in double.requests[-1]["messages"])
    chat(**call_args(double, "What is my passport number?", engram_user_id="bob"))
    assert "X123" in double.requests[-1]["messages"][0]["content"]


def test_sensitive_memories_stay_out_unless_allowed(
        litellm: Any, mem: Memory, double: OpenAIDouble) -> None:
    mem.add("Alice's PIN is 4821", user_id="alice", sensitive=True)
    remote = with_memory(litellm.completion, mem, user_id="alice", record=False)
    remote(**call_args(double, "What is my PIN?"))
    assert all("4821" not in m["content"] for m in double.requests[-1]["messages"])
    local = with_memory(litellm.completion, mem, user_id="alice", record=False,
                        include_sensitive=True)
    local(**call_args(double, "What is my PIN?"))
    assert "4821" in double.requests[-1]["messages"][0]["content"]


def test_one_call_helper(litellm: Any, mem: Memory, double: OpenAIDouble) -> None:
    mem.add("Alice speaks Portuguese", user_id="alice")
    response = completion(memory=mem, user_id="alice", session_id="s9",
                          **call_args(double, "Which languages do I speak?"))
    assert response.choices[0].message.content == "You said: Which languages do I speak?"
    assert "Portuguese" in double.requests[-1]["messages"][0]["content"]
    assert len(mem.conversation("s9", user_id="alice")) == 2


def test_bad_calls_are_refused_before_anything_is_sent(litellm: Any, mem: Memory,
                                                      double: OpenAIDouble) -> None:
    chat = with_memory(litellm.completion, mem, user_id="alice")
    with pytest.raises(InvalidInput, match="messages"):
        chat(model="openai/x", messages="hello")
    with pytest.raises(InvalidInput, match="keyword"):
        chat("openai/x", [{"role": "user", "content": "hi"}])
    assert double.requests == []


def test_a_call_without_a_user_turn_passes_through(litellm: Any, mem: Memory,
                                                   double: OpenAIDouble) -> None:
    mem.add("Alice likes jazz", user_id="alice")
    chat = with_memory(litellm.completion, mem, user_id="alice")
    args = {**call_args(double, ""), "messages": [{"role": "system", "content": "Say hi."}]}
    chat(**args)
    assert double.requests[-1]["messages"] == [{"role": "system", "content": "Say hi."}]
    assert chat.last_plan is None


@pytest.mark.parametrize(("messages", "text"), [
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "a"),
    ([{"role": "user", "content": [{"type": "text", "text": "look"},
                                   {"type": "image_url", "image_url": {"url": "x"}},
                                   {"type": "text", "text": "here"}]}], "look here"),
    ([{"role": "user", "content": "  "}], None),
    ([{"role": "system", "content": "s"}], None),
])
def test_last_user_text(messages: list[dict[str, Any]], text: str | None) -> None:
    assert last_user_text(messages) == text


def test_memory_block_goes_first() -> None:
    user = {"role": "user", "content": "hi"}
    assert with_memory_block([user], "") == [user]
    assert with_memory_block([user], "M") == [{"role": "system", "content": "M"}, user]
    multi = {"role": "system", "content": [{"type": "text", "text": "s"}]}
    assert with_memory_block([multi, user], "M")[0] == {"role": "system", "content": "M"}


def test_acompletion_gets_memory_streamed_and_not(litellm: Any, mem: Memory,
                                                  double: OpenAIDouble) -> None:
    mem.add("Alice's bike is a green Brompton", user_id="alice")
    chat = with_memory(litellm.acompletion, mem, user_id="alice", session_id="s1")

    async def talk() -> str:
        response = await chat(**call_args(double, "What bike do I ride?"))
        assert "Brompton" in double.requests[-1]["messages"][0]["content"]
        chunks = await chat(**call_args(double, "What colour is my bike?", stream=True))
        pieces = [c.choices[0].delta.content or "" async for c in chunks if c.choices]
        assert double.requests[-1]["stream"] is True
        return str(response.choices[0].message.content) + "|" + "".join(pieces)

    assert asyncio.run(talk()) == "You said: What bike do I ride?|You said: What colour is my bike?"
    assert [m["content"] for m in mem.conversation("s1", user_id="alice")] == [
        "What bike do I ride?", "You said: What bike do I ride?",
        "What colour is my bike?", "You said: What colour is my bike?"]
