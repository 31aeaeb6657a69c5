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
    """Remember every turn as an episodic memory, one transaction per session.

    Returns the number of turns written; 0 when the sample's user already has memories.
    """
    if mem.count(user_id=sample.user_id):
        return 0
    first_name = sample.user_name.split()[0]
    for session in sample.sessions:
        mem.add_many([
            {
                "text": f"{first_name if t['role'] == 'user' else 'Assistant'}: {t['text']}",
                "user_id": sample.user_id, "agent_id": sample.agent_id,
                "session_id": session["id"], "at": t["at"], "memory_type": "event",
                "metadata": {"role": t["role"], "turn": n},
                "source": {"kind": "conversation", "ref": f"{session['id']}#{n}"},
                "dedupe": False,
            }
            for n, t in enumerate(session["turns"], start=1)
        ])
    return sample.turn_count
