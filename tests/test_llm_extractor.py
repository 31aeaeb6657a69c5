"""The LLM extractor through the real OpenAI provider and wire format (engram.llm.openai_double's
double on 127.0.0.1). No model is reachable here: the double answers with JSON written in the
shape the prompt's schema asks for, choosing target ids from the prompt as a model would."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engram import ManualClock, Memory, Status
from engram.extract.llm import LLMExtractor, parse
from engram.llm import load_provider
from engram.llm.openai_double import OpenAIDouble


def model(messages: list[dict[str, Any]]) -> str:
    """Answers like a model following the prompt: decisions by what the message says."""
    prompt = messages[-1]["content"]
    known = dict(re.findall(r"^(\w{26}): (.+)$", prompt, re.MULTILINE))
    said = prompt.rsplit("\n", 1)[-1]

    def target(word: str) -> str | None:
        return next((i for i, text in known.items() if word in text), None)

    out: list[dict[str, Any]] = []
    if "Paris" in said:
        out += [{"action": "ADD", "content": "User lives in Paris", "attribute": "residence",
                 "memory_type": "fact", "confidence": 0.9, "entities": ["Paris"]},
                {"action": "ADD", "content": "User likes jazz", "memory_type": "preference"}]
    if "Berlin" in said:
        out.append({"action": "SUPERSEDE", "content": "User lives in Berlin",
                    "attribute": "residence", "target_id": target("Paris")})
    if "jazz" in said and "Paris" not in said:
        out.append({"action": "NOOP", "content": "User likes jazz", "target_id": target("jazz")})
    if "bebop" in said:
        out.append({"action": "UPDATE", "content": "User likes jazz, above all bebop",
                    "memory_type": "preference", "target_id": target("jazz")})
    if "garbled" in said:
        return "Sure! Here are the memories: {"
    return "```json\n" + json.dumps({"memories": out}) + "\n```"


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[Memory]:
    with OpenAIDouble(reply=model) as upstream:
        provider = load_provider(f"openai:double-1@{upstream.base_url}", api_key="unused")
        clock = ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC))
        with Memory(tmp_path / "s", clock=clock, extractor=LLMExtractor(provider)) as memory:
            yield memory


def test_the_llm_adds_supersedes_corroborates_and_updates(mem: Memory) -> None:
    first = mem.remember_turn("I live in Paris and love jazz.", user_id="ada", session_id="s1")
    paris, jazz = first.extracted
    assert paris.slot == "user/residence" and paris.sources[0].model == "openai:double-1"
    assert paris.links.derived_from == (first.turn.id,)
    moved = mem.remember_turn("I moved to Berlin.", user_id="ada", session_id="s1")
    assert moved.superseded == [paris.id] and mem.get(paris.id).status is Status.SUPERSEDED
    mem.remember_turn("Still into jazz.", user_id="ada", session_id="s1")
    assert mem.get(jazz.id).confidence.corroboration_count == 1
    mem.remember_turn("Jazz, mostly bebop these days.", user_id="ada", session_id="s1")
    assert mem.get(jazz.id).content == "User likes jazz, above all bebop"


def test_a_garbled_answer_extracts_nothing_but_keeps_the_turn(mem: Memory) -> None:
    done = mem.remember_turn("garbled", user_id="ada", session_id="s1")
    assert done.extracted == [] and mem.get(done.turn.id).content == "User: garbled"


def test_parse_drops_what_breaks_the_schema() -> None:
    answer = json.dumps({"memories": [
        {"action": "ADD", "content": "User is vegan"},
        {"action": "MERGE", "content": "x"},
        {"action": "SUPERSEDE", "content": "User lives in Rome", "target_id": "unknown"},
        {"action": "ADD", "content": " "},
        {"action": "ADD", "content": "User is 30", "confidence": 3},
    ]})
    found = parse(answer, [])
    assert [p.content for p in found.accepted] == ["User is vegan"]
    assert len(found.rejected) == 4 and "MERGE" in found.rejected[0]
    assert parse("[]", []).rejected == ["the answer has no 'memories' list"]
