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


def test_every_devices_chain_is_walked_and_the_broken_one_named(
        new_store: Callable[[], Path], raw_sql: Callable[..., None]) -> None:
    with Memory(new_store(), device_id="dev-peer", embedder=None) as peer:
        for i in range(3):
            peer.add(f"peer memory {i}", user_id="u")
        shipped = list(peer.events())
    home = new_store()
    with Memory(home, device_id="dev-home", embedder=None) as mem:
        mem.add("home memory", user_id="u")
        assert mem.import_events(shipped) == 3
        mem.add("home memory after the merge", user_id="u")
        report = mem.verify()
        assert report.ok and report.checked == 5 and report.devices == 2
    raw_sql(home, "UPDATE events SET payload = replace(payload, 'peer memory 1', 'forged') "
                  "WHERE id = ?", (shipped[1].id,))
    with Memory(home, embedder=None) as mem:
        report = mem.verify()
    assert not report.ok and report.event_id == shipped[1].id
    assert report.device_id == "dev-peer" and report.checked == 3  # dev-home's 2, then 1
    assert "payload was altered (payload_hash mismatch) (device dev-peer, seq 2)" in \
        (report.problem or "")
    result = CliRunner().invoke(app, ["verify", "--data", str(home)])
    assert result.exit_code == 1 and "device dev-peer" in result.output
