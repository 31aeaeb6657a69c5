"""The chat's logic without a terminal: slash commands, a turn from recall to the model and back
into memory, sessions, model switching, and Ollama's context tokens kept per session. Models
are real HTTP servers on 127.0.0.1: `OpenAIDouble` (the OpenAI wire format) and a replay of
Ollama's recorded /api/generate stream (tests/data/llm)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engram import Memory
from engram.chat.session import COMMANDS, Chat, Command, help_lines, is_local, parse, style_for
from engram.errors import InvalidInput, NotFound
from engram.llm import Provider, ProviderError, load_provider
from engram.llm.openai_double import OpenAIDouble
from ollama_replay import OllamaReplay

DATA = Path(__file__).parent / "data" / "llm"


@pytest.fixture
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(model="double-1") as up:
        yield up


def openai_at(up: OpenAIDouble) -> Provider:
    return load_provider(f"openai:{up.model}@{up.base_url}", attempts=1)


# --- parsing -------------------------------------------------------------------------------

@pytest.mark.parametrize(("line", "parsed"), [
    ("hello there", "hello there"),
    ("  padded  ", "padded"),
    ("/why", Command("why")),
    ("/WHY", Command("why")),
    ("/remember I like tea", Command("remember", "I like tea")),
    ("/forget  m-123 ", Command("forget", "m-123")),
    ("/session resume chat-1", Command("session", "resume chat-1")),
    ("/model openai:gpt-4o-mini@http://127.0.0.1:1/v1",
     Command("model", "openai:gpt-4o-mini@http://127.0.0.1:1/v1")),
    ("/exit", Command("quit")),
    ("//etc/hosts is a file", "/etc/hosts is a file"),
])
def test_parse(line: str, parsed: Command | str) -> None:
    assert parse(line) == parsed


@pytest.mark.parametrize(("line", "field", "words"), [
    ("/nope", "command", "/help"),
    ("/remember", "/remember", "/remember TEXT"),
    ("/forget ", "/forget", "/forget ID"),
    ("/model", "/model", "SPEC"),
])
def test_parse_errors_name_the_command_and_the_fix(line: str, field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(line)
    assert caught.value.field == field
    assert words in caught.value.fix


@given(st.text().filter(lambda s: not s.strip().startswith("/")))
def test_anything_else_is_a_message(line: str) -> None:
    assert parse(line) == line.strip()


def test_help_lists_every_command() -> None:
    text = "\n".join(help_lines())
    assert all(f"/{name}" in text for name in COMMANDS)


def test_style_and_locality_follow_the_provider(double: OpenAIDouble) -> None:
    local = openai_at(double)
    assert style_for(local) == "openai" and is_local(local)
    remote = load_provider("openai:gpt-4o-mini@https://api.example.com/v1", api_key="sk-x")
    assert not is_local(remote)
    assert is_local(load_provider("openai:m@http://localhost:8000/v1"))
    assert is_local(load_provider("openai:m@http://[::1]:8000/v1"))
    assert style_for(load_provider("ollama:phi3")) == "ollama"


def test_sensitive_memories_reach_only_a_local_model(mem: Memory,
                                                     double: OpenAIDouble) -> None:
    pin = mem.add("Alice's PIN is 4821", user_id="alice", sensitive=True)
    local = Chat(mem, openai_at(double), user_id="alice")
    assert pin.id in local.plan("What is my PIN?").memory_ids
    remote = Chat(mem, load_provider("openai:gpt-4o-mini@https://api.example.com/v1",
                                     api_key="sk-x"), user_id="alice")
    assert pin.id not in remote.plan("What is my PIN?").memory_ids


# --- turns ---------------------------------------------------------------------------------

def test_a_turn_streams_recalls_and_is_remembered(mem: Memory, double: OpenAIDouble) -> None:
    fact = mem.add("Alice's sister is called Priya", user_id="alice")
    chat = Chat(mem, openai_at(double), user_id="alice", session_id="s1")
    pieces = list(chat.send("What is my sister called?"))
    assert len(pieces) > 1  # streamed word by word
    assert "".join(pieces) == "You said: What is my sister called?"
    sent = double.requests[-1]
    assert sent["stream"] is True
    assert sent["messages"][0]["role"] == "system"
    assert "Priya" in sent["messages"][0]["content"]
    assert sent["messages"][-1] == {"role": "user", "content": "What is my sister called?"}
    assert chat.last_plan is not None and fact.id in chat.last_plan.memory_ids
    assert chat.history() == [
        {"role": "user", "content": "What is my sister called?"},
        {"role": "assistant", "content": "You said: What is my sister called?"}]
    why = chat.run(Command("why"))
    assert fact.id in [m.id for m in why.memories]


def test_the_next_turn_sees_the_window(mem: Memory, double: OpenAIDouble) -> None:
    chat = Chat(mem, openai_at(double), user_id="alice", session_id="s1")
    list(chat.send("I am planning a trip to Lisbon"))
    list(chat.send("Which museums should I see?"))
    contents = [m["content"] for m in double.requests[-1]["messages"]]
    assert "I am planning a trip to Lisbon" in contents
    assert "You said: I am planning a trip to Lisbon" in contents


def test_a_failed_answer_is_not_remembered(mem: Memory) -> None:
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    chat = Chat(mem, load_provider(f"openai:m@{url}", attempts=1), user_id="alice",
                session_id="s1")
    with pytest.raises(ProviderError) as caught:
        list(chat.send("hello"))
    assert url in str(caught.value)
    assert chat.history() == []


def test_empty_message_is_refused(mem: Memory, double: OpenAIDouble) -> None:
    chat = Chat(mem, openai_at(double), user_id="alice")
    with pytest.raises(InvalidInput, match="message"):
        list(chat.send("   "))


def summarising_double(fail: bool = False) -> OpenAIDouble:
    """Echoes chat turns; answers a summary request with how many lines it was sent."""
    def reply(messages: list[dict[str, Any]]) -> str:
        if str(messages[0].get("content", "")).startswith("Summarise this conversation"):
            if fail:
                raise RuntimeError("the summary call fails")
            return f"SUMMARY of {len(messages[-1]['content'].splitlines())} turns"
        return f"You said: {messages[-1]['content']}"

    return OpenAIDouble(reply=reply)


def summary_requests(up: OpenAIDouble) -> list[dict[str, Any]]:
    return [r for r in up.requests if not r.get("stream")]


def test_older_turns_are_summarised_by_the_model_every_few_turns(mem: Memory) -> None:
    with summarising_double() as up:
        chat = Chat(mem, openai_at(up), user_id="alice", session_id="s1")
        for n in range(1, 11):  # ten exchanges fit the window: no summary
            list(chat.send(f"Message number {n}."))
        assert summary_requests(up) == []
        list(chat.send("Message number 11."))  # exchange 1 leaves the window
        assert len(summary_requests(up)) == 1
        assert "SUMMARY of 2 turns" in up.requests[-1]["messages"][0]["content"]
        for n in range(12, 16):  # kept, with the newer older turns added extractively
            list(chat.send(f"Message number {n}."))
        assert len(summary_requests(up)) == 1
        system = up.requests[-1]["messages"][0]["content"]
        assert "SUMMARY of 2 turns" in system and "Message number 5." in system
        list(chat.send("Message number 16."))  # ten more turns have left: rewritten
        assert len(summary_requests(up)) == 2
        assert "SUMMARY of 12 turns" in up.requests[-1]["messages"][0]["content"]


def test_a_failing_summary_falls_back_to_first_sentences(mem: Memory) -> None:
    with summarising_double(fail=True) as up:
        chat = Chat(mem, openai_at(up), user_id="alice", session_id="s1")
        for n in range(1, 12):
            list(chat.send(f"Message number {n}. More words here."))
    system = up.requests[-1]["messages"][0]["content"]
    assert "Message number 1." in system and "SUMMARY" not in system


def test_extractive_summaries_make_no_model_call(mem: Memory) -> None:
    with summarising_double() as up:
        chat = Chat(mem, openai_at(up), user_id="alice", session_id="s1",
                    model_summaries=False)
        for n in range(1, 12):
            list(chat.send(f"Message number {n}."))
    assert summary_requests(up) == []
    assert "Message number 1." in up.requests[-1]["messages"][0]["content"]


# --- commands ------------------------------------------------------------------------------

def test_remember_memories_and_forget(mem: Memory, double: OpenAIDouble) -> None:
    chat = Chat(mem, openai_at(double), user_id="alice", session_id="s1")
    said = chat.run(Command("remember", "I am allergic to peanuts")).message
    memory_id = said.split()[-1]
    assert mem.get(memory_id).content == "I am allergic to peanuts"
    listed = chat.run(Command("memories")).memories
    assert [m.id for m in listed] == [memory_id]
    assert chat.run(Command("forget", memory_id)).message == f"forgot {memory_id}"
    with pytest.raises(NotFound):
        mem.get(memory_id)


def test_forget_refuses_another_users_memory(mem: Memory, double: OpenAIDouble) -> None:
    bobs = mem.add("Bob's secret", user_id="bob")
    chat = Chat(mem, openai_at(double), user_id="alice")
    with pytest.raises(NotFound):
        chat.run(Command("forget", bobs.id))
    assert mem.get(bobs.id).content == "Bob's secret"


def test_why_before_and_without_memories(mem: Memory, double: OpenAIDouble) -> None:
    chat = Chat(mem, openai_at(double), user_id="alice")
    assert "nothing asked" in chat.run(Command("why")).message
    list(chat.send("hello"))
    assert chat.run(Command("why")).memories == ()


def test_sessions_new_and_resume(mem: Memory, double: OpenAIDouble) -> None:
    chat = Chat(mem, openai_at(double), user_id="alice", session_id="first")
    list(chat.send("one"))
    assert chat.run(Command("session", "new")).message.startswith("new session chat-")
    assert chat.session_id != "first" and chat.history() == []
    assert chat.run(Command("session", "resume first")).message == \
        "resumed session first (2 turns)"
    assert chat.history()[0] == {"role": "user", "content": "one"}
    with pytest.raises(InvalidInput, match="/session"):
        chat.run(Command("session", "rewind"))


def test_switching_models_keeps_the_memory(mem: Memory, double: OpenAIDouble) -> None:
    chat = Chat(mem, openai_at(double), user_id="alice", session_id="s1")
    list(chat.send("My favourite colour is teal"))
    with OpenAIDouble(model="double-2") as other:
        said = chat.run(Command("model", f"openai:double-2@{other.base_url}")).message
        assert said == "now talking to openai:double-2, with the same memory"
        list(chat.send("What colour do I like?"))
        sent = other.requests[-1]["messages"]
    assert sent[0]["role"] == "system" and "teal" in sent[0]["content"]
    assert {"role": "user", "content": "My favourite colour is teal"} in sent  # the window
    assert len(double.requests) == 1


def test_a_fact_told_through_one_sdk_is_recalled_through_another(mem: Memory) -> None:
    pytest.importorskip("litellm")
    with OpenAIDouble(model="a") as first, OpenAIDouble(model="b") as second:
        told = Chat(mem, openai_at(first), user_id="alice", session_id="s1")
        list(told.send("I work as a glassblower in Murano"))
        asked = Chat(mem, load_provider(f"litellm:openai/b@{second.base_url}",
                                        api_key="sk-test", attempts=1),
                     user_id="alice", session_id="s2")
        assert "".join(asked.send("What is my job?")) == "You said: What is my job?"
        system = second.requests[-1]["messages"][0]
    assert system["role"] == "system" and "glassblower" in system["content"]


def test_quit_and_help(mem: Memory, double: OpenAIDouble) -> None:
    chat = Chat(mem, openai_at(double), user_id="alice")
    assert chat.run(Command("quit")).quit
    assert "/remember TEXT" in chat.run(Command("help")).message


# --- Ollama: its context tokens saved and restored per session -------------------------------

@pytest.fixture
def ollama() -> Iterator[OllamaReplay]:
    with OllamaReplay((DATA / "ollama_generate_stream.ndjson").read_bytes()) as replay:
        yield replay


def test_ollama_context_tokens_survive_a_restart(store_dir: Path, ollama: OllamaReplay) -> None:
    with Memory(store_dir) as mem:
        mem.add("Alice lives in Porto", user_id="alice")
        chat = Chat(mem, load_provider(f"ollama:phi3@{ollama.url}"), user_id="alice",
                    session_id="s1")
        assert "".join(chat.send("Where do I live?")) == "Your name is Caroline."
    first = ollama.bodies[-1]
    assert "context" not in first and first["prompt"] == "Where do I live?"
    assert "Porto" in first["system"]
    with Memory(store_dir) as mem:  # a new process, the same session
        chat = Chat(mem, load_provider(f"ollama:phi3@{ollama.url}"), user_id="alice",
                    session_id="s1")
        list(chat.send("And my name?"))
        assert ollama.bodies[-1]["context"] == [1, 2, 3, 4, 5, 6]  # as the last answer left it
        assert "Recent conversation" not in ollama.bodies[-1]["system"]
        chat.run(Command("session", "new"))
        list(chat.send("Hello"))
        assert "context" not in ollama.bodies[-1]  # tokens are per session


def test_ollama_without_tokens_gets_the_window_in_the_system_prompt(
        mem: Memory, double: OpenAIDouble, ollama: OllamaReplay) -> None:
    chat = Chat(mem, openai_at(double), user_id="alice", session_id="s1")
    list(chat.send("I started learning the cello"))
    chat.run(Command("model", f"ollama:phi3@{ollama.url}"))
    list(chat.send("What instrument?"))
    body = ollama.bodies[-1]
    assert "context" not in body
    assert "Recent conversation:\nuser: I started learning the cello" in body["system"]
