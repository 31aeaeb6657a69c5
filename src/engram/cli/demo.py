"""The bundled sample: a ten-week conversation whose facts repeat, change and conflict."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from engram.memory import Memory


@dataclass(frozen=True, slots=True)
class Sample:
    user_id: str
    user_name: str
    agent_id: str
    sessions: list[dict[str, Any]]
    questions: list[dict[str, str]]

    @property
    def turn_count(self) -> int:
        return sum(len(s["turns"]) for s in self.sessions)


def load_sample() -> Sample:
    raw = json.loads(resources.files("engram").joinpath("data/sample_conversation.json")
                     .read_text(encoding="utf-8"))
    return Sample(raw["user"]["id"], raw["user"]["name"], raw["agent_id"], raw["sessions"],
                  raw["questions"])


def remember_sample(mem: Memory, sample: Sample) -> int:
    """Remember the conversation as a chat would: each exchange with `remember_turn`, so what
    Alex states is extracted, repeated facts corroborate and changed ones supersede.

    Returns the number of exchanges written; 0 when the sample's user already has memories.
    """
    if mem.count(user_id=sample.user_id, status="all"):
        return 0
    exchanges = 0
    for session in sample.sessions:
        turns = session["turns"]
        for n, turn in enumerate(turns):
            if turn["role"] != "user":
                continue
            answer = turns[n + 1] if n + 1 < len(turns) else None
            mem.remember_turn(turn["text"], answer["text"] if answer and
                              answer["role"] == "assistant" else None,
                              user_id=sample.user_id, session_id=session["id"],
                              agent_id=sample.agent_id, at=turn["at"],
                              speaker=sample.user_name.split()[0])
            exchanges += 1
    return exchanges
