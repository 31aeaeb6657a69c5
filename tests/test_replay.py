"""Episode replay: a session's timeline from the log (turns, what each one yielded, the values
it superseded, what happened to them since), through the API fold and `engram replay`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engram import ManualClock, Memory
from engram.analytics.replay import replay, sessions
from engram.cli.main import app
from engram.errors import InvalidInput

runner = CliRunner()


def episode(directory: Path) -> dict[str, str]:
    """Two sessions of one user: the second supersedes where she lives; then the first
    session's fact is rated and promoted. Returns names -> memory ids."""
    clock = ManualClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    with Memory(directory, clock=clock, embedder=None) as mem:
        first = mem.remember_turn("I live in Lisbon.", "Noted!", user_id="ana",
                                  session_id="s1", speaker="Ana")
        clock.advance(timedelta(minutes=5))
        mem.remember_turn("My sister is called Rita.", user_id="ana", session_id="s1",
                          speaker="Ana")
        mem.remember_turn("Unrelated", user_id="bob", session_id="s1")
        clock.advance(timedelta(days=2))
        moved = mem.remember_turn("I live in Porto now.", user_id="ana", session_id="s2",
                                  speaker="Ana")
        clock.advance(timedelta(hours=1))
        fact = first.extracted[0]
        mem.feedback(moved.extracted[0].id, "good")
        mem.set_tier(moved.extracted[0].id, "long_term", "confirmed by the user")
        return {"turn": first.turn.id, "fact": fact.id, "moved": moved.extracted[0].id,
                "moved_turn": moved.turn.id}


def test_a_session_replays_turns_extractions_and_what_followed(tmp_path: Path) -> None:
    ids = episode(tmp_path)
    with Memory(tmp_path, embedder=None) as mem:
        first = replay(mem.events(), "s1", "ana")
        second = replay(mem.events(), "s2", "ana")
    assert first.turns == 2 and second.turns == 1
    steps = [(s.event, s.role, s.memory_id) for s in first.steps]
    assert steps[0] == ("memory.added", "turn", ids["turn"])
    extracted = next(s for s in first.steps if s.memory_id == ids["fact"])
    assert extracted.role == "extracted" and extracted.turn == ids["turn"]
    assert "Lisbon" in extracted.text
    superseded = [s for s in first.steps if s.event == "memory.superseded"]
    assert [s.memory_id for s in superseded] == [ids["fact"]]  # what became of it later
    assert all("bob" not in s.text and "Unrelated" not in s.text for s in first.steps)
    assert [s.at for s in first.steps] == sorted(s.at for s in first.steps)
    later = {(s.event, s.role, s.memory_id) for s in second.steps}
    assert ("memory.superseded", "earlier", ids["fact"]) in later  # the value it replaced
    assert ("memory.feedback", "extracted", ids["moved"]) in later
    assert ("memory.tier_changed", "extracted", ids["moved"]) in later


def test_a_forgotten_turn_replays_without_its_text(tmp_path: Path) -> None:
    ids = episode(tmp_path)
    with Memory(tmp_path, embedder=None) as mem:
        mem.forget(ids["turn"])
        steps = replay(mem.events(), "s1", "ana").steps
    assert ids["turn"] not in {s.memory_id for s in steps if s.event == "memory.added"}
    assert all("I live in Lisbon." not in s.text for s in steps)


def test_an_unknown_session_is_one_clear_line(tmp_path: Path) -> None:
    episode(tmp_path)
    with Memory(tmp_path, embedder=None) as mem, pytest.raises(InvalidInput, match="s9"):
        replay(mem.events(), "s9", "ana")
    result = runner.invoke(app, ["replay", "s9", "--user", "ana", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "s9" in result.output


def test_engram_replay_prints_the_timeline_and_json(tmp_path: Path) -> None:
    ids = episode(tmp_path)
    shown = runner.invoke(app, ["replay", "s1", "--user", "ana", "--data", str(tmp_path),
                                "--json"])
    assert shown.exit_code == 0, shown.output
    found = json.loads(shown.output)
    assert found["turns"] == 2 and found["steps"][0]["memory_id"] == ids["turn"]
    table = runner.invoke(app, ["replay", "s1", "--user", "ana", "--data", str(tmp_path)],
                          env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "2 turns" in table.output and "Lisbon" in table.output


def test_sessions_are_listed_most_recent_first(tmp_path: Path) -> None:
    episode(tmp_path)
    with Memory(tmp_path, embedder=None) as mem:
        everyone, ana = sessions(mem.events()), sessions(mem.events(), "ana")
    assert [(s.user_id, s.session_id) for s in ana] == [("ana", "s2"), ("ana", "s1")]
    assert ana[1].memories >= 3 and ("bob", "s1") in {(s.user_id, s.session_id)
                                                       for s in everyone}
