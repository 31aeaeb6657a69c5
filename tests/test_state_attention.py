"""The attention a local model (hf:PATH, a tiny Llama built here) gave each memory in its
context is kept with the turn it answered, and the dashboard's session page lists, under that
answer, the memories it leaned on with their share, linking to them."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from engram import Memory
from engram.chat.session import Chat, Command, load_model
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.service import ServerConfig
from engram.state.attention import KEY, kept, leaned_on
from engram.state.provider import HFProvider
from state_model import tiny_path


def test_kept_rounds_and_keeps_only_the_memories_placed_in_the_context() -> None:
    assert kept({"m1": 0.123456, "m2": 0.5, "elsewhere": 0.3}, {"m1", "m2"}) == {
        KEY: {"m1": 0.1235, "m2": 0.5}}
    assert kept(None, {"m1"}) == {} and kept({"m9": 0.2}, {"m1"}) == {}
    assert leaned_on({KEY: {"a": 0.1, "b": 0.4, "c": True}}) == [("b", 0.4), ("a", 0.1)]
    assert leaned_on({"turn": {}}) == [] and leaned_on({KEY: "garbled"}) == []


@pytest.mark.sqlite_only("one real model run is enough; the metadata is the store's own")
def test_an_answers_attention_is_kept_with_its_turn_and_shown_on_the_dashboard(
        store_dir: Path) -> None:
    with Memory(store_dir, embedder=None) as mem:
        tea = mem.add("Alice likes green tea", user_id="alice").id
        mem.add("Alice lives in Porto", user_id="alice")
        provider = load_model(f"hf:{tiny_path()}", str(store_dir))
        assert isinstance(provider, HFProvider)
        provider.max_new_tokens = 4
        chat = Chat(mem, provider, user_id="alice", session_id="s1", model_summaries=False)
        list(chat.send("Which tea do I like?"))
        why = chat.run(Command("why"))
        assert why.attention and tea in why.attention
        turn = mem.list(user_id="alice", session_id="s1", tags=["turn"])[0]
        placed = {m.id for m in why.memories}
        assert turn.metadata[KEY] == {m: round(s, 4) for m, s in why.attention.items()
                                      if m in placed}
        assert turn.metadata["turn"]["user"] == "Which tea do I like?"
        with serving(create_app(ServerConfig(data=store_dir), mem)) as url:
            html = httpx.get(f"{url}/dashboard/sessions/s1?user=alice").text
    listed = re.search(rf'<ul class="leaned" id="leaned-{turn.id}"[^>]*>(.*?)</ul>', html, re.S)
    assert listed is not None
    shown = re.findall(r'<a href="/dashboard/memories/([^"]+)">[^<]*</a> '
                       r'<span class="share">([0-9.]+)%</span>', listed.group(1))
    expected = leaned_on(turn.metadata)
    assert [m for m, _ in shown] == [m for m, _ in expected]  # largest share first
    assert [float(s) for _, s in shown] == [round(s * 100, 1) for _, s in expected]
    assert "Alice likes green tea" in listed.group(1)


def test_a_turn_without_attention_lists_nothing(store_dir: Path) -> None:
    with Memory(store_dir, embedder=None) as mem:
        mem.remember_turn("I like tea", "Noted", user_id="ana", session_id="s1")
        with serving(create_app(ServerConfig(data=store_dir), mem)) as url:
            html = httpx.get(f"{url}/dashboard/sessions/s1?user=ana").text
    assert 'id="timeline"' in html and 'class="leaned"' not in html
