"""Chat exports: ChatGPT's conversations.json (the mapping tree: the kept branch only, no
system or tool nodes), Claude's (chat_messages by sender) and a generic JSONL log. Each user
message with its replies is a turn, facts are extracted from what the user said, a broken
conversation or line is reported with its position and the rest ingested, and a conversation
that went on updates its last turn."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engram import Memory
from engram.capture.writer import TURN_TAG
from engram.errors import InvalidInput
from engram.model import MemoryEntry

DATA = Path(__file__).parent / "data" / "ingest"


@pytest.fixture
def mem(keyword_mem: Memory) -> Memory:
    return keyword_mem


def turns(mem: Memory, kind: str) -> list[MemoryEntry]:
    return mem.list(user_id="ada", tags=[f"ingest:{kind}"], newest_first=False)


def facts(mem: Memory) -> set[str]:
    return {e.content for e in mem.list(user_id="ada") if e.sources[0].kind == "extraction"}


def test_chatgpt_follows_the_kept_branch_and_skips_system_and_tool_nodes(mem: Memory) -> None:
    summary = mem.ingest("chatgpt", DATA / "chatgpt", user_id="ada")
    assert (summary.added, summary.errors) == (3, 1)
    assert summary.problems == ["conversations.json:lines 28-34: not valid JSON (Expecting "
                                "value at line 31 column 45)"]
    first, second, fern = turns(mem, "chatgpt")
    assert first.content == ("User: I live in Lisbon and I want to visit Porto next month. "
                             "Train or bus?\nAssistant: The train is faster: about three "
                             "hours from Santa Apolónia.")
    assert second.content.startswith("User: I'm vegetarian.")  # not the edited-away branch
    assert "Try Da Terra" in second.content and "search results" not in second.content
    assert first.occurred_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert first.session_id == "66a1c0de-0001-4000-8000-000000000001"
    assert first.sources[0].ref == \
        "conversations.json#66a1c0de-0001-4000-8000-000000000001/u-1"
    assert TURN_TAG in first.tags and first.metadata["conversation"] == "Trip to Porto"
    assert fern.session_id == "66a1c0de-0003-4000-8000-000000000003"
    assert {"User lives in Lisbon", "User is vegetarian"} <= facts(mem)
    assert mem.conversation("66a1c0de-0001-4000-8000-000000000001", user_id="ada")[0] == \
        {"role": "user", "content": "I live in Lisbon and I want to visit Porto next month. "
                                    "Train or bus?"}


def test_claude_pairs_human_messages_with_replies(mem: Memory) -> None:
    summary = mem.ingest("claude", DATA / "claude" / "conversations.json", user_id="ada")
    assert (summary.added, summary.errors) == (2, 1)
    assert summary.problems[0].startswith("conversations.json:line 41: unexpected "
                                          "shape (KeyError('sender'))")
    levain, bakery = turns(mem, "claude")
    assert levain.content.endswith("Assistant: Four to six hours at room temperature, until "
                                   "it doubles.")
    assert bakery.content == "User: Thanks! I work at Lisbon Bakery now."
    assert bakery.occurred_at == datetime(2024, 6, 2, 8, 4, tzinfo=UTC)
    assert "User works at Lisbon Bakery" in facts(mem)


def test_a_claude_export_given_as_chatgpt_is_one_error(mem: Memory) -> None:
    with pytest.raises(InvalidInput, match="does not hold a ChatGPT export's conversations"):
        mem.ingest("chatgpt", DATA / "claude", user_id="ada")
    assert mem.count(user_id="ada") == 0


def test_jsonl_sessions_and_malformed_lines(mem: Memory) -> None:
    summary = mem.ingest("chat-jsonl", DATA / "chat.jsonl", user_id="ada")
    assert summary.problems == [
        "chat.jsonl:line 5: not JSON (Expecting ',' delimiter at column 44)",
        "chat.jsonl:line 8: needs role (user or assistant) and content (text)"]
    miso, sofa, cello = turns(mem, "chat-jsonl")
    assert (miso.session_id, sofa.session_id, cello.session_id) == ("s1", "s1", "s2")
    assert miso.sources[0].ref == "chat.jsonl:2"
    assert {"User can play cello", "User has a cat named Miso"} <= facts(mem)


def test_a_conversation_that_went_on_updates_its_last_turn(mem: Memory,
                                                           tmp_path: Path) -> None:
    log = Path(shutil.copy(DATA / "chat.jsonl", tmp_path / "chat.jsonl"))
    mem.ingest("chat-jsonl", log, user_id="ada")
    assert mem.ingest("chat-jsonl", log, user_id="ada").unchanged == 3
    with log.open("a") as more:
        more.write('{"role": "assistant", "content": "Give her a few days.", '
                   '"session": "s1", "id": "a2"}\n'
                   '{"role": "user", "content": "I will.", "session": "s1", "id": "u3"}\n')
    summary = mem.ingest("chat-jsonl", log, user_id="ada")
    assert (summary.added, summary.updated, summary.unchanged) == (1, 1, 2)
    sofa = next(e for e in turns(mem, "chat-jsonl") if "sofa" in e.content)
    assert sofa.content.endswith("Assistant: Give her a few days.")
