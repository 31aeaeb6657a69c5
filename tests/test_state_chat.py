"""`engram chat` with a local model (hf:PATH, a tiny Llama built here): each turn resumes the
session's saved KV cache, the state survives a restart, `/why` shows the share of attention
each memory in the prompt received, and `engram state show` names the memories the saved
prefix holds. Also Ollama without context tokens: said, and the chat falls back to recall."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engram import Memory
from engram.chat.session import Chat, Command, is_local, load_model
from engram.state.provider import HFProvider
from engram.state.store import StateStore
from engram.store.settings import OLLAMA_CONTEXT
from ollama_replay import OllamaReplay, ndjson
from state_model import tiny_path


def local_chat(mem: Memory, store_dir: Path) -> Chat:
    provider = load_model(f"hf:{tiny_path()}", str(store_dir))
    assert isinstance(provider, HFProvider)
    provider.max_new_tokens = 6
    return Chat(mem, provider, user_id="alice", session_id="s1", model_summaries=False)


def test_a_local_model_resumes_its_saved_state_each_turn_and_after_a_restart(
        store_dir: Path) -> None:
    with Memory(store_dir) as mem:
        mem.add("Alice likes tea", user_id="alice")
        mem.add("Alice lives in Porto", user_id="alice")
        chat = local_chat(mem, store_dir)
        list(chat.send("What do I like?"))
        provider = chat.provider
        assert isinstance(provider, HFProvider) and provider.last is not None
        assert not provider.last.restored
        assert is_local(provider)  # in this process: sensitive memories may reach it
        why = chat.run(Command("why"))
        assert why.attention is not None and "attention" in why.message
        shares = [why.attention[m.id] for m in why.memories]
        assert shares and all(0 < share < 1 for share in shares)
        list(chat.send("And where do I live?"))
        assert provider.last.restored and provider.last.source == "session"
        assert provider.last.prefilled_tokens < provider.last.restored_tokens
    with Memory(store_dir) as mem:  # a new process: the state is read back from disk
        chat = local_chat(mem, store_dir)
        list(chat.send("Do I like tea?"))
        assert isinstance(chat.provider, HFProvider) and chat.provider.last is not None
        assert chat.provider.last.restored
    saved = StateStore(store_dir / "state").require(f"alice:s1:hf:{tiny_path()}")
    assert saved.turns == 3 and saved.memories  # the memories placed in the saved prefix
    assert all(end > start for start, end in saved.memories.values())


# Ollama's /api/generate stream as versions that dropped `context` send it: the final line
# has no context array.
NO_CONTEXT = ndjson([
    {"model": "phi3", "created_at": "2025-06-01T10:00:00Z", "response": "Noted.", "done": False},
    {"model": "phi3", "created_at": "2025-06-01T10:00:01Z", "response": "", "done": True,
     "done_reason": "stop", "total_duration": 1000, "prompt_eval_count": 12, "eval_count": 2}])


@pytest.fixture
def ollama() -> Iterator[OllamaReplay]:
    with OllamaReplay(NO_CONTEXT) as replay:
        yield replay


def test_an_ollama_that_returns_no_context_is_said_and_the_chat_falls_back_to_recall(
        mem: Memory, ollama: OllamaReplay) -> None:
    mem.store.set_setting(OLLAMA_CONTEXT, "[7, 8, 9]", "alice:s1:ollama:phi3")  # from before
    chat = Chat(mem, load_model(f"ollama:phi3@{ollama.url}"), user_id="alice",
                session_id="s1", model_summaries=False)
    list(chat.send("I started learning the cello"))
    assert ollama.bodies[-1]["context"] == [7, 8, 9]
    assert "returned no context tokens" in chat.notice
    list(chat.send("What instrument?"))
    body = ollama.bodies[-1]
    assert "context" not in body  # the old tokens are not sent again
    assert "Recent conversation:\nuser: I started learning the cello" in body["system"]
