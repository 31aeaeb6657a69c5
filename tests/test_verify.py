"""`verify` walks the hash chain and names the first broken link."""

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engram import Memory
from engram.cli.main import app

pytestmark = pytest.mark.all_backends


def test_tampering_is_caught(store_dir: Path, raw_sql: Callable[..., None]) -> None:
    with Memory(store_dir) as mem:
        ids = [mem.add(f"memory {i}", user_id="u").id for i in range(5)]
        assert mem.verify().ok and mem.verify().checked == 5
    raw_sql(store_dir, "UPDATE events SET payload = replace(payload, 'memory 2', 'memory X') "
            "WHERE memory_id = ?", (ids[2],))
    with Memory(store_dir) as mem:
        report = mem.verify()
    assert not report.ok and report.broken_at == 3 and report.checked == 2
    assert "payload was altered" in (report.problem or "")
    result = CliRunner().invoke(app, ["verify", "--data", str(store_dir)])
    assert result.exit_code == 1
    assert "broken at event #3" in result.output


def test_a_removed_event_breaks_the_link(store_dir: Path,
                                          raw_sql: Callable[..., None]) -> None:
    with Memory(store_dir) as mem:
        for i in range(4):
            mem.add(f"memory {i}", user_id="u")
    raw_sql(store_dir, "DELETE FROM events WHERE pos = 2")
    with Memory(store_dir) as mem:
        report = mem.verify()
    assert report.broken_at == 3 and "prev_hash" in (report.problem or "")
