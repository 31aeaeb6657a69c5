"""The one writer: every path to the log applies the same rules, one transaction each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engram import EventType, InvalidInput, Memory, NotFound
from engram.context import load_counter
from engram.log.events import Draft


def test_an_exact_duplicate_corroborates_alike_through_add_and_turns(tmp_path: Path) -> None:
    with Memory(tmp_path / "a", embedder=None) as by_add, \
            Memory(tmp_path / "b", embedder=None) as by_turn:
        first = by_add.add("User lives in Lisbon", user_id="u", confidence=0.6)
        again = by_add.add("User lives in Lisbon", user_id="u")
        said = by_turn.remember_turn("I live in Lisbon.", user_id="u", session_id="s1")
        repeated = by_turn.remember_turn("I live in Lisbon.", user_id="u", session_id="s2")
        assert again.id == first.id and repeated.extracted[0].id == said.extracted[0].id
        for mem, memory_id, before in ((by_add, first.id, 0.6),
                                       (by_turn, said.extracted[0].id,
                                        said.extracted[0].confidence.overall)):
            entry = mem.get(memory_id)
            assert entry.confidence.corroboration_count == 1
            assert entry.confidence.overall > before  # the same rule raises it everywhere
            corroborations = [e for e in mem.history(memory_id)
                              if e.type is EventType.CORROBORATED]
            assert corroborations[0].payload is not None
            assert set(corroborations[0].payload) >= {"at", "confidence", "source"}


def _fail_on(mem: Memory, kind: EventType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the store's transactions fail when an event of `kind` is appended."""
    real = mem.store.transaction

    def transaction() -> Any:
        cm = real()

        class Failing:
            def __enter__(self) -> Any:
                tx = cm.__enter__()
                append = tx.append

                def guarded(draft: Draft) -> Any:
                    if draft.type is kind:
                        raise RuntimeError("crash mid-operation")
                    return append(draft)
                tx.append = guarded  # type: ignore[method-assign]
                return tx

            def __exit__(self, *exc: Any) -> Any:
                return cm.__exit__(*exc)
        return Failing()
    monkeypatch.setattr(mem.store, "transaction", transaction)


def test_a_correction_is_one_transaction(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with Memory(tmp_path / "s", embedder=None) as mem:
        entry = mem.add("User lives in Paris", user_id="u")
        events = len(list(mem.events()))
        _fail_on(mem, EventType.FEEDBACK, monkeypatch)
        with pytest.raises(RuntimeError):
            mem.feedback(entry.id, "correction", correction="User lives in Lyon")
        monkeypatch.undo()
        assert mem.get(entry.id).content == "User lives in Paris"  # the update rolled back
        assert len(list(mem.events())) == events
        fixed = mem.feedback(entry.id, "correction", correction="User lives in Lyon")
        assert fixed.content == "User lives in Lyon" and fixed.validated


def test_a_link_checks_both_ends_in_its_own_transaction(tmp_path: Path) -> None:
    with Memory(tmp_path / "s", embedder=None) as mem:
        a = mem.add("Ada likes tea", user_id="u")
        events = len(list(mem.events()))
        with pytest.raises(NotFound):
            mem.link(a.id, "related", "01ZZZZZZZZZZZZZZZZZZZZZZZZ")
        with pytest.raises(InvalidInput, match="target_id"):
            mem.link(a.id, "related", a.id)
        assert len(list(mem.events())) == events


def test_maintenance_is_one_transaction(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with Memory(tmp_path / "s", embedder=None) as mem:
        for i in range(3):
            entry = mem.add(f"fact number {i}", user_id="u")
            mem.feedback(entry.id, "good")  # validated: promoted by the next run
        events = len(list(mem.events()))
        _fail_on(mem, EventType.TIER_CHANGED, monkeypatch)
        with pytest.raises(RuntimeError):
            mem.maintain()
        monkeypatch.undo()
        assert len(list(mem.events())) == events
        assert mem.maintain().promoted == 3


@pytest.mark.parametrize("style", ["json", "claude", "markdown", "openai"])
def test_context_returns_the_prompt_it_measured(tmp_path: Path, style: str) -> None:
    with Memory(tmp_path / "s", embedder=None) as mem:
        mem.add("I prefer dark mode", user_id="u", memory_type="preference")
        mem.add("My dog Pixel loves the dark beach", user_id="u")
        text = mem.context("dark", user_id="u", budget_tokens=500, style=style)
        plan = mem.assemble("dark", user_id="u", budget_tokens=500, style=style)
        assert text == plan.prompt.system and "Pixel" in text
        assert plan.prompt.tokens(load_counter()) == plan.tokens_used <= 500
        if style == "json":
            assert set(json.loads(text)["memories"]) == {"facts", "preferences"}
