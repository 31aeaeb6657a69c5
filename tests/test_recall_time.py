"""Time at recall: a question that names a time lifts what happened then."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engram import ManualClock, Memory
from engram.recall.ranking import DEFAULT_WEIGHTS
from engram.recall.when import in_window, query_window

NOW = datetime(2023, 5, 30, 12, tzinfo=UTC)  # a Tuesday


def test_the_window_a_question_names() -> None:
    day = query_window("What did I buy last Saturday?", NOW)
    assert day == (datetime(2023, 5, 26, tzinfo=UTC), datetime(2023, 5, 29, tzinfo=UTC))
    assert query_window("What did Melanie do in May 2023?", NOW) == (
        datetime(2023, 5, 1, tzinfo=UTC), datetime(2023, 6, 1, tzinfo=UTC))
    assert query_window("Where did we go last summer?", NOW) == (
        datetime(2022, 6, 1, tzinfo=UTC), datetime(2022, 9, 1, tzinfo=UTC))
    assert query_window("What did we do in 2021?", NOW) == (
        datetime(2021, 1, 1, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC))
    assert query_window("How many days passed between the trip and the party?", NOW) is None


def test_in_window_is_half_open() -> None:
    window = (datetime(2023, 5, 1, tzinfo=UTC), datetime(2023, 6, 1, tzinfo=UTC))
    assert in_window(datetime(2023, 5, 1, tzinfo=UTC), window) == 1.0
    assert in_window(datetime(2023, 6, 1, tzinfo=UTC), window) == 0.0
    assert in_window(NOW, None) == 0.0


def test_a_time_weight_prefers_what_happened_then(tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    weights = replace(DEFAULT_WEIGHTS, time=0.5)
    with Memory(tmp_path / "s", clock=clock, weights=weights) as mem:
        mem.add_many([
            {"text": "We went hiking in the Alps", "user_id": "u",
             "at": NOW - timedelta(days=340)},  # last summer
            {"text": "We went hiking in the Alps again", "user_id": "u",
             "at": NOW - timedelta(days=20)},
        ])
        hits = mem.search("Where did we go hiking last summer?", user_id="u")
        assert hits[0].memory.content == "We went hiking in the Alps"
        assert hits[0].components["time"] == 1.0 and hits[1].components["time"] == 0.0
