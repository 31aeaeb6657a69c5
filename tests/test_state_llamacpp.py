"""llama.cpp's server with its slot saved per session: a session's slot is restored before its
answer and saved after, so another session using the slot (or a restart of the server) costs
no re-prefill. Against `LlamaCppDouble`, which speaks llama-server's wire format (the
OpenAI-compatible chat with `id_slot`/`cache_prompt`, and `/slots/N?action=…`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engram import Memory
from engram.chat.session import Chat, Command
from engram.llm import load_provider
from engram.llm.llamacpp import LlamaCppProvider, slot_file
from llamacpp_double import LlamaCppDouble


@pytest.fixture
def server() -> Iterator[LlamaCppDouble]:
    double = LlamaCppDouble()
    yield double
    double.stop()


def chat_on(mem: Memory, url: str, session: str) -> Chat:
    provider = load_provider(f"llamacpp:qwen2.5@{url}")
    assert isinstance(provider, LlamaCppProvider)
    return Chat(mem, provider, user_id="alice", session_id=session, model_summaries=False)


def test_a_session_gets_its_slot_back_after_another_used_it(
        mem: Memory, server: LlamaCppDouble) -> None:
    chat = chat_on(mem, server.url, "s1")
    list(chat.send("I started learning the cello this winter"))
    slot_path, slot_body = server.requests[-1]
    assert slot_path == "/slots/0?action=save"
    assert slot_body == {"filename": slot_file("alice:s1:llamacpp:qwen2.5")}
    chat.run(Command("session", "new"))
    list(chat.send("Something else entirely, about the weather in Oslo"))
    chat.run(Command("session", "resume s1"))
    list(chat.send("Which instrument?"))
    provider = chat.provider
    assert isinstance(provider, LlamaCppProvider) and provider.last is not None
    assert provider.last.restored_tokens > 0 and provider.last.supported
    chat_request = next(body for path, body in reversed(server.requests)
                        if path == "/v1/chat/completions")
    assert chat_request["id_slot"] == 0 and chat_request["cache_prompt"] is True
    # only the new turn was evaluated: the rest came back with the slot
    assert server.prompt_n[-1] < server.prompt_n[0]


def test_a_saved_slot_survives_a_restart_of_the_server(mem: Memory) -> None:
    disk: dict[str, list[str]] = {}
    first = LlamaCppDouble(files=disk)
    list(chat_on(mem, first.url, "s1").send("I started learning the cello this winter"))
    first.stop()
    second = LlamaCppDouble(files=disk)  # a new server process, the same --slot-save-path
    try:
        chat = chat_on(mem, second.url, "s1")
        list(chat.send("Which instrument?"))
        assert isinstance(chat.provider, LlamaCppProvider) and chat.provider.last is not None
        assert chat.provider.last.restored_tokens > 0
        fresh = second.prompt_n[-1]
    finally:
        second.stop()
    cold = LlamaCppDouble()  # the same request to a server that lost the slot
    try:
        list(chat_on(mem, cold.url, "s1").send("Which instrument?"))
        assert fresh < cold.prompt_n[-1]
    finally:
        cold.stop()


def test_a_server_without_a_slot_save_path_is_said_once_and_still_answers(mem: Memory) -> None:
    server = LlamaCppDouble(slot_save_path=False)
    try:
        chat = chat_on(mem, server.url, "s1")
        assert "".join(chat.send("Hello there")) == "You said: Hello there"
        assert "--slot-save-path" in chat.notice
        list(chat.send("Again"))
        assert chat.notice == ""  # said once
        slots = [path for path, _ in server.requests if path.startswith("/slots/")]
        assert len(slots) == 1  # after the 501 the provider stops asking
    finally:
        server.stop()
