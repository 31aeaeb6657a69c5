"""Sync by bundles: the format (deterministic, compact, checked), idempotent imports, what each
peer is known to hold, per-user scope, forget travelling, maintenance on two devices, bad
input that leaves the store as it was, and the `engram sync` commands."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engram import EventType, ManualClock, Memory
from engram.cli.main import app
from engram.errors import InvalidInput, StoreError
from engram.log.events import SCHEMA_VERSION, Event, canonical_json, event_hash, sha256_hex
from engram.model import Status, Tier, Truth
from engram.store.migrate import checksum
from engram.sync import bundle, peers
from engram.sync import vector as vectors

START = datetime(2026, 3, 1, 9, tzinfo=UTC)


def store_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(raw) for raw in gzip.decompress(path.read_bytes()).splitlines()]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Memory, Memory]]:
    """A laptop and an edge board whose clocks disagree by an hour."""
    laptop = Memory(tmp_path / "laptop", clock=ManualClock(START), device_id="laptop",
                    embedder=None)
    edge = Memory(tmp_path / "edge", clock=ManualClock(START + timedelta(hours=1)),
                  device_id="edge", embedder=None)
    yield laptop, edge
    laptop.close()
    edge.close()


def test_a_bundle_is_deterministic_and_carries_what_the_peer_lacks(
        pair: tuple[Memory, Memory], tmp_path: Path) -> None:
    laptop, edge = pair
    laptop.add_many([{"text": f"note {i} about tea", "user_id": "alice"} for i in range(5)])
    first, again = tmp_path / "1.bundle", tmp_path / "2.bundle"
    assert laptop.sync_export(first, peer="edge").events == 5
    laptop.sync_export(again, peer="edge")  # nothing learned from edge yet: the same again
    assert first.read_bytes() == again.read_bytes()
    header = lines(first)[0]
    assert header == {"format": bundle.FORMAT, "version": bundle.VERSION,
                      "schema": SCHEMA_VERSION, "device_id": "laptop", "vector": {"laptop": 5},
                      "since": {"laptop": 0}, "user": None, "count": 5}
    assert [e["seq"] for e in lines(first)[1:]] == [1, 2, 3, 4, 5]

    report = edge.sync_import(first)
    assert (report.new, report.skipped, report.devices, report.peer) == (5, 0, ("laptop",),
                                                                        "laptop")
    assert edge.sync_import(first).new == 0  # twice: a no-op
    edge.add("edge's own note", user_id="alice")
    back = tmp_path / "back.bundle"
    assert edge.sync_export(back, peer="laptop").events == 1  # edge knows laptop holds 1..5
    assert laptop.sync_import(back).new == 1
    assert checksum(laptop.store) == checksum(edge.store)
    # laptop learned edge's whole vector from the header: nothing is ahead or behind.
    [row] = peers.status(vectors.of_heads(laptop.store.heads()), peers.load(laptop.store))
    assert (row.peer.name, row.ahead, row.behind) == ("edge", 0, 0)
    assert laptop.sync_export(tmp_path / "none.bundle", peer="edge").events == 0


def test_status_counts_ahead_and_behind_from_vectors() -> None:
    known = {"edge": peers.Peer("edge", vector={"laptop": 3, "edge": 9})}
    [row] = peers.status({"laptop": 5, "edge": 7}, known)
    assert (row.ahead, row.behind) == (2, 2)


def test_a_bundle_is_compact(pair: tuple[Memory, Memory], tmp_path: Path) -> None:
    laptop, _ = pair
    laptop.add_many([{"text": f"Alice mentioned that her sister {i} moved to Porto in May",
                      "user_id": "alice", "session_id": f"s{i % 7}"} for i in range(1000)])
    report = laptop.sync_export(tmp_path / "all.bundle")
    assert report.bytes / report.events <= 400


def test_per_user_bundle_carries_no_byte_of_another_users_text(
        pair: tuple[Memory, Memory], tmp_path: Path) -> None:
    laptop, edge = pair
    mine = laptop.add("alice waters the basil", user_id="alice")
    theirs = laptop.add("bob hides the xylophone key", user_id="bob")
    laptop.update(theirs.id, text="bob hides the xylophone key twice")
    laptop.tag(mine.id, add=["garden"])
    laptop.search("xylophone", user_id="bob")  # an access batch of bob's memory
    path = tmp_path / "alice.bundle"
    assert laptop.sync_export(path, user="alice").events == 5
    assert b"xylophone" not in gzip.decompress(path.read_bytes())
    assert edge.sync_import(path).new == 5
    assert edge.verify().ok
    assert [m.text for m in edge.list(user_id=None, status="all")] == [mine.text]
    assert b"xylophone" not in store_bytes(tmp_path / "edge")
    # The stubs continue laptop's chain, so later bundles for alice continue it too.
    laptop.add("alice plants tomatoes", user_id="alice")
    later = tmp_path / "later.bundle"
    laptop.sync_import(_export(edge, tmp_path / "ack.bundle", "laptop"))
    assert laptop.sync_export(later, peer="edge", user="alice").events == 1
    assert edge.sync_import(later).new == 1 and edge.count(user_id="alice") == 2


def _export(mem: Memory, path: Path, peer: str) -> Path:
    mem.sync_export(path, peer=peer)
    return path


def test_a_full_sync_completes_what_a_per_user_sync_left_as_stubs(
        pair: tuple[Memory, Memory], tmp_path: Path) -> None:
    """Stubs are not forever: a later bundle that carries bob's events in full gives edge
    his memories, and the replicas become equal; one that was forgotten meanwhile stays out."""
    laptop, edge = pair
    laptop.add("alice waters the basil", user_id="alice")
    kept = laptop.add("bob hides the xylophone key", user_id="bob", session_id="b")
    gone = laptop.add("bob's pin is 4242", user_id="bob", session_id="b")
    laptop.update(kept.id, text="bob hides the xylophone key twice")
    laptop.search("xylophone", user_id="bob")
    edge.sync_import(_export_user(laptop, tmp_path / "alice.bundle", "alice"))
    assert edge.count(user_id="bob") == 0
    full = _export(laptop, tmp_path / "full.bundle", "edge")
    laptop.forget(gone.id)
    after = _export(laptop, tmp_path / "after.bundle", "edge")
    stages: list[str] = []
    assert edge.sync_import(full, stage=stages.append).new == 4  # bob's adds, update, access
    assert stages == ["reading full.bundle", "applying 5 events in one transaction"]
    assert edge.get(kept.id).text == "bob hides the xylophone key twice"
    assert edge.get(kept.id).access_count == laptop.get(kept.id).access_count == 1
    assert [h.memory.id for h in edge.search("xylophone", user_id="bob")] == [kept.id]
    edge.sync_import(after)
    assert edge.sync_import(full).new == 0  # the pin's events stay redacted: forget wins
    assert checksum(edge.store) == checksum(laptop.store) and edge.verify().ok
    edge.flush()  # the search above counted an access: part of the store as well
    edge.store.close()
    assert b"4242" not in store_bytes(tmp_path / "edge")


def test_a_stub_never_touches_a_memory_held_in_full(pair: tuple[Memory, Memory],
                                                    tmp_path: Path) -> None:
    """A full replica that receives another user's events as stubs keeps what it holds."""
    laptop, edge = pair
    theirs = laptop.add("bob's bicycle is blue", user_id="bob")
    edge.sync_import(_export(laptop, tmp_path / "full.bundle", "edge"))
    laptop.update(theirs.id, text="bob's bicycle is red")
    edge.sync_import(_export_user(laptop, tmp_path / "alice.bundle", "alice"))
    assert edge.get(theirs.id).text == "bob's bicycle is blue" and edge.verify().ok


def _export_user(mem: Memory, path: Path, user: str) -> Path:
    mem.sync_export(path, user=user)
    return path


def test_forget_travels_and_an_old_bundle_cannot_bring_it_back(
        pair: tuple[Memory, Memory], tmp_path: Path) -> None:
    laptop, edge = pair
    secret = laptop.add("the vault code is quagmire", user_id="alice", session_id="s")
    laptop.add("alice likes tea", user_id="alice", session_id="s")
    old = _export(laptop, tmp_path / "old.bundle", "edge")
    edge.sync_import(old)
    edge.update(secret.id, text="the vault code is quagmire again")  # edge, before it knows
    edge_edit = _export(edge, tmp_path / "edit.bundle", "laptop")
    laptop.forget(secret.id)
    edge.sync_import(_export(laptop, tmp_path / "forget.bundle", "edge"))
    laptop.sync_import(edge_edit)  # a late edit of a forgotten memory arrives: stored redacted
    edge.sync_import(old)  # the old bundle still holds the text: known events stay redacted
    for mem in (laptop, edge):
        assert mem.verify().ok and mem.count(user_id="alice") == 1
        assert all(e.redacted for e in mem.store.history(secret.id)
                   if e.type is not EventType.FORGOTTEN)
        mem.store.close()
        assert b"quagmire" not in store_bytes(tmp_path / mem.store.device_id)
    assert b"quagmire" in gzip.decompress(old.read_bytes())  # the file, not the replica


def test_maintenance_on_two_devices_converges_without_fighting(
        pair: tuple[Memory, Memory], tmp_path: Path) -> None:
    """Both promote the same memory independently; laptop goes on to persistent. Edge's
    promotion is later by the clock but was decided from short-term: recognised as stale, so
    the memory stays persistent everywhere. Both expire another: one expiry counts."""
    laptop, edge = pair
    fact = laptop.add("water boils at 100 C at sea level", user_id="alice",
                      truth_category=Truth.ABSOLUTE, confidence=0.95)
    fleeting = laptop.add("it is raining", user_id="alice", memory_type="context")
    edge.sync_import(_export(laptop, tmp_path / "1.bundle", "edge"))
    for mem in (laptop, edge):
        assert isinstance(mem.clock, ManualClock)
        mem.clock.advance(timedelta(days=4))
    assert laptop.maintain().promoted == 1 and laptop.maintain().promoted == 1
    assert edge.maintain().promoted == 1
    assert laptop.get(fact.id).tier is Tier.PERSISTENT and edge.get(fact.id).tier is Tier.LONG_TERM
    laptop.sync_import(_export(edge, tmp_path / "2.bundle", "laptop"))
    edge.sync_import(_export(laptop, tmp_path / "3.bundle", "edge"))
    assert checksum(laptop.store) == checksum(edge.store)
    for mem in (laptop, edge):
        assert mem.get(fact.id).tier is Tier.PERSISTENT
        gone = mem.store.get(fleeting.id)
        assert gone is not None and gone.status is Status.EXPIRED
        assert mem.maintain().promoted == 0  # nothing left to decide
        mem.rebuild()
    assert checksum(laptop.store) == checksum(edge.store)


def _damage(path: Path, edit: str) -> None:
    raw = gzip.decompress(path.read_bytes()).decode().splitlines()
    if edit == "newer-format":
        raw[0] = raw[0].replace(f'"version":{bundle.VERSION}', f'"version":{bundle.VERSION + 1}')
    elif edit == "newer-schema":
        raw[0] = raw[0].replace(f'"schema":{SCHEMA_VERSION}', f'"schema":{SCHEMA_VERSION + 1}')
    elif edit == "tampered":
        event = json.loads(raw[2])
        event["payload"]["memory"]["content"] = "forged"
        raw[2] = canonical_json(event)
    elif edit == "forged":  # rewritten with hashes that match it: the next link breaks
        event = json.loads(raw[2])
        event["payload"]["memory"]["content"] = "forged"
        event["payload_hash"] = sha256_hex(canonical_json(event["payload"]))
        event["hash"] = event_hash(Event.from_dict(event))
        raw[2] = canonical_json(event)
    elif edit == "missing-line":
        del raw[2]
    path.write_bytes(gzip.compress(("\n".join(raw) + "\n").encode(), mtime=0))


@pytest.mark.parametrize(("edit", "error", "says"), [
    ("truncated", InvalidInput, "truncated"),
    ("garbage", InvalidInput, "not a gzip file"),
    ("newer-format", InvalidInput, "upgrade engram-memory"),
    ("newer-schema", InvalidInput, "upgrade engram-memory"),
    ("tampered", StoreError, "payload was altered.*export the events again"),
    ("forged", StoreError, "line 3: .*prev_hash does not match.*forged"),
    ("missing-line", InvalidInput, "header says 3"),
])
def test_a_bad_bundle_is_refused_and_the_store_is_as_it_was(
        pair: tuple[Memory, Memory], tmp_path: Path, edit: str, error: type[Exception],
        says: str) -> None:
    laptop, edge = pair
    edge.add("edge had this already", user_id="alice")
    laptop.add_many([{"text": f"note {i}", "user_id": "alice"} for i in range(3)])
    path = _export(laptop, tmp_path / "b.bundle", "edge")
    if edit == "truncated":
        path.write_bytes(path.read_bytes()[:-40])
    elif edit == "garbage":
        path.write_bytes(b"not a bundle at all")
    else:
        _damage(path, edit)
    before = checksum(edge.store)
    with pytest.raises(error, match=says):
        edge.sync_import(path)
    assert checksum(edge.store) == before and peers.load(edge.store) == {}


def test_a_bundle_past_what_the_store_holds_names_the_gap(pair: tuple[Memory, Memory],
                                                          tmp_path: Path) -> None:
    laptop, edge = pair
    laptop.add("first", user_id="alice")
    laptop.add("second", user_id="alice")
    peers.save(laptop.store, peers.Peer("edge", vector={"laptop": 1}))  # wrongly believed
    path = _export(laptop, tmp_path / "gap.bundle", "edge")
    before = checksum(edge.store)
    with pytest.raises(StoreError, match=r"starts at event 2 of device laptop.*export OUT"):
        edge.sync_import(path)
    assert checksum(edge.store) == before


def test_the_sync_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    a, b, out = str(tmp_path / "a"), str(tmp_path / "b"), tmp_path / "a.bundle"
    assert runner.invoke(app, ["add", "alice likes jazz", "--data", a]).exit_code == 0
    assert runner.invoke(app, ["sync", "peer-add", "board", "http://board:8080",
                               "--data", a]).exit_code == 0
    done = runner.invoke(app, ["sync", "export", str(out), "--peer", "board", "--data", a])
    assert done.exit_code == 0 and "wrote 1 events for board" in done.output
    done = runner.invoke(app, ["sync", "import", str(out), "--data", b, "--json"])
    assert done.exit_code == 0 and json.loads(done.output)["new"] == 1
    status = json.loads(runner.invoke(app, ["sync", "status", "--json", "--data", b]).output)
    [peer] = status["peers"]
    assert (peer["ahead"], peer["behind"]) == (0, 0) and peer["vector"] == status["vector"]
    assert "board" in runner.invoke(app, ["sync", "peers", "--data", a]).output
    assert "ahead" in runner.invoke(app, ["sync", "status", "--data", a]).output
    bad = runner.invoke(app, ["sync", "import", str(tmp_path / "nope"), "--data", b])
    assert bad.exit_code == 2
    out.write_bytes(out.read_bytes()[:-20])  # truncated on the way: one line, exit code 2
    bad = runner.invoke(app, ["sync", "import", str(out), "--data", b])
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("error: bundle") and "export the bundle again" in bad.stderr
    bad = runner.invoke(app, ["sync", "peer-add", "board", "ftp://x", "--data", a])
    assert bad.exit_code == 2
