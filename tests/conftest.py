"""Shared fixtures: every test gets its own store directory; time is injected."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engram import ManualClock, Memory


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "engram-data"


@pytest.fixture
def mem(store_dir: Path, clock: ManualClock) -> Iterator[Memory]:
    memory = Memory(store_dir, clock=clock)
    yield memory
    memory.close()
