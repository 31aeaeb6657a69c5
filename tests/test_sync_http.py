"""Sync over HTTP between real `engram serve` processes on 127.0.0.1: both ways until both
stores hold the same memories, per-user keys that can neither receive nor send another
user's events, a server killed with SIGKILL in the middle of an exchange, and one-line
errors for an unreachable peer and a wrong key."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from engram.cli.main import app as cli
from engram.log.events import canonical_json
from engram.memory import Memory
from engram.query import Filters
from engram.server.keys import KeyRing
from engram.sync.http import PeerError

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Served:
    """`engram serve` on a store, in its own process, on 127.0.0.1."""

    def __init__(self, data: str | Path) -> None:
        self.data, self.port = data, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engram", "serve", "--data", str(self.data), "--port",
             str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                if httpx.get(f"{self.url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"engram serve on {self.url} did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(60)


def make_store(path: Path, user_texts: dict[str, list[str]], keys: dict[str, str]) -> dict[str,
                                                                                            str]:
    """A store with these users' memories (some tagged, updated, forgotten) and keys (user ->
    scopes); returns the tokens by user."""
    with Memory(path, embedder=None) as mem:
        for user, texts in user_texts.items():
            made = mem.add_many([{"text": t, "user_id": user} for t in texts])
            mem.tag(made[0].id, add=["synced"])
            mem.update(made[1].id, text=f"{texts[1]} (edited)")
            mem.forget(made[2].id)
        ring = KeyRing(mem.store)
        return {user: ring.create(user, scopes, now=NOW)[0] for user, scopes in keys.items()}


def checksum(data: str | Path) -> str:
    """Every memory of any status, sorted by id, as canonical JSON."""
    with Memory(data, embedder=None) as mem:
        entries = mem.store.select(Filters(statuses=None), limit=None)
        text = canonical_json([e.to_dict() for e in sorted(entries, key=lambda e: e.id)])
    return hashlib.sha256(text.encode()).hexdigest()


def events_of(data: str | Path) -> list[str]:
    with Memory(data, embedder=None) as mem:
        return [e.id for e in mem.events()]


def verified(data: str | Path) -> bool:
    with Memory(data, embedder=None) as mem:
        return mem.verify().ok


@pytest.fixture
def two(tmp_path: Path) -> Iterator[tuple[Served, Served, dict[str, str], dict[str, str]]]:
    """Two served stores, each with a full sync key (`laptop`) and alice's sync key."""
    keys = {"laptop": "sync,any-user", "alice": "sync"}
    a_keys = make_store(tmp_path / "a", {"alice": [f"laptop note {n} about tea" for n in
                                                   range(30)],
                                         "bob": [f"bob-secret-{n}-zebra" for n in range(10)]},
                        keys)
    b_keys = make_store(tmp_path / "b", {"alice": [f"board note {n} about rain" for n in
                                                   range(30)],
                                         "bob": [f"bob-private-{n}-okapi" for n in range(10)]},
                        keys)
    a, b = Served(tmp_path / "a"), Served(tmp_path / "b")
    try:
        a.start()
        b.start()
        yield a, b, a_keys, b_keys
    finally:
        a.stop()
        b.stop()


def test_two_servers_converge_both_ways(
        two: tuple[Served, Served, dict[str, str], dict[str, str]]) -> None:
    a, b, a_keys, b_keys = two
    union = set(events_of(a.data)) | set(events_of(b.data))
    done = CliRunner().invoke(cli, ["sync", "peer", b.url, "--key", b_keys["laptop"],
                                    "--batch", "25", "--data", str(a.data), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["pulled_new"] == report["pulled"] > 0 and report["pushed_new"] > 0
    with Memory(b.data, embedder=None) as mem:  # the other way, through a's server
        again = mem.sync_peer(a.url, key=a_keys["laptop"])
    assert again.pulled == again.pushed == 0 and again.batches == 0
    assert checksum(a.data) == checksum(b.data)
    assert set(events_of(a.data)) == set(events_of(b.data)) == union
    assert verified(a.data) and verified(b.data)
    status = CliRunner().invoke(cli, ["sync", "status", "--json", "--data", str(a.data)])
    [peer] = json.loads(status.stdout)["peers"]
    assert peer["url"] == b.url and peer["ahead"] == peer["behind"] == 0


def test_a_users_key_neither_receives_nor_sends_another_users_events(
        two: tuple[Served, Served, dict[str, str], dict[str, str]], tmp_path: Path) -> None:
    _, b, _, b_keys = two
    alice = {"Authorization": f"Bearer {b_keys['alice']}"}
    pulled = httpx.post(f"{b.url}/sync/pull", json={"vector": {}, "limit": 10_000},
                        headers=alice)
    assert pulled.status_code == 200
    assert b"okapi" not in pulled.content and b"board note 5" in pulled.content
    with Memory(tmp_path / "alices-phone", embedder=None) as phone:
        phone.sync_peer(b.url, key=b_keys["alice"], push=False)
        assert {m.user_id for m in phone.list(user_id=None)} == {"alice"}
        assert phone.verify().ok
    # a full replica edits one of bob's memories and tries to send it with alice's key
    with Memory(tmp_path / "full", embedder=None) as full:
        full.sync_peer(b.url, key=b_keys["laptop"])
        bobs = full.list(user_id="bob")[0]
        full.update(bobs.id, text="bob's memory, changed by alice")
        before = events_of(b.data)
        with pytest.raises(PeerError) as refused:
            full.sync_peer(b.url, key=b_keys["alice"], pull=False)
    message = str(refused.value)
    assert "403" in message and "another user" in message and "\n" not in message
    assert events_of(b.data) == before
    plain = httpx.post(f"{b.url}/sync/pull", json={}, headers={
        "Authorization": f"Bearer {token_without_sync(b)}"})
    assert plain.status_code == 403 and plain.json()["error"]["field"] == "scope"
    bobs_by_alice = httpx.post(f"{b.url}/sync/pull", json={"user": "bob"}, headers=alice)
    assert bobs_by_alice.status_code == 403 and bobs_by_alice.json()["error"]["field"] == "user"


def test_a_sync_limited_to_one_user_moves_only_that_users_memories_both_ways(
        two: tuple[Served, Served, dict[str, str], dict[str, str]], tmp_path: Path) -> None:
    """A shared family board syncs alice's memories only, with a full key: `--user`."""
    _, b, _, b_keys = two
    with Memory(tmp_path / "family-board", embedder=None) as board:
        board.sync_peer(b.url, key=b_keys["laptop"], user="alice")
        assert {m.user_id for m in board.list(user_id=None)} == {"alice"}
        kept_here = board.add("bob's board-only note about the okapi", user_id="bob")
        alices = board.add("alice's note from the family board", user_id="alice")
        sent = board.sync_peer(b.url, key=b_keys["laptop"], user="alice", pull=False)
        assert sent.pushed == sent.pushed_new == 2
        assert board.verify().ok
    with Memory(b.data, embedder=None) as server:
        assert server.get(alices.id).text == "alice's note from the family board"
        assert server.store.get(kept_here.id) is None
        assert all(e.redacted for e in server.store.history(kept_here.id))
        assert server.verify().ok


def token_without_sync(served: Served) -> str:
    with Memory(served.data, embedder=None) as mem:
        return KeyRing(mem.store).create("carol", "read,write", now=NOW)[0]


def test_a_server_killed_mid_exchange_loses_and_duplicates_nothing(
        two: tuple[Served, Served, dict[str, str], dict[str, str]]) -> None:
    a, b, _, b_keys = two
    union = set(events_of(a.data)) | set(events_of(b.data))
    pushes: list[int] = []

    def kill_in_flight(direction: str, done: int, total: int) -> None:
        if direction == "push":
            pushes.append(done)
            if len(pushes) == 3:  # while the fourth batch is on its way
                threading.Timer(0.002, b.kill).start()

    with Memory(a.data, embedder=None) as mem:
        with pytest.raises(PeerError) as died:
            mem.sync_peer(b.url, key=b_keys["laptop"], batch=2, progress=kill_in_flight)
        assert ("stopped answering" in str(died.value) or "cannot reach" in str(died.value))
        assert "run the exchange again" in str(died.value) or "engram serve" in str(died.value)
        landed = len(events_of(b.data))
        b.start()
        resumed = mem.sync_peer(b.url, key=b_keys["laptop"], batch=7)
    assert resumed.pulled == 0  # the pull had finished before the kill
    assert resumed.pushed == resumed.pushed_new == len(union) - landed > 0  # none resent
    for data in (a.data, b.data):
        ids = events_of(data)
        assert len(ids) == len(set(ids)) and set(ids) == union
        assert verified(data)
    assert checksum(a.data) == checksum(b.data)


def test_errors_are_one_line(two: tuple[Served, Served, dict[str, str], dict[str, str]],
                             tmp_path: Path) -> None:
    a, b, a_keys, b_keys = two
    batch = httpx.post(f"{b.url}/sync/pull", json={"vector": {}, "limit": 5},
                       headers={"Authorization": f"Bearer {b_keys['laptop']}"}).json()["events"]
    batch[3]["payload"]["memory"]["content"] = "tampered on the way"
    before = events_of(a.data)
    refused = httpx.post(f"{a.url}/sync/push", json={"events": batch},
                         headers={"Authorization": f"Bearer {a_keys['laptop']}"})
    assert refused.status_code == 409 and refused.json()["error"]["field"] == "events"
    assert "payload was altered" in refused.json()["error"]["message"]
    assert events_of(a.data) == before  # nothing of the batch was applied
    with Memory(tmp_path / "c", embedder=None) as mem:
        with pytest.raises(PeerError, match=r"^key: .*401.*not known") as wrong:
            mem.sync_peer(a.url, key="egm_00000000_nope")
        with pytest.raises(PeerError, match="cannot reach") as gone:
            mem.sync_peer(f"http://127.0.0.1:{free_port()}")
    for error in (wrong.value, gone.value):
        assert "\n" not in str(error)
    result = CliRunner().invoke(cli, ["sync", "peer", a.url, "--key", "egm_x", "--data",
                                      str(tmp_path / "c")])
    assert result.exit_code == 2 and result.stderr.startswith("error: key: ")
    assert os.path.isdir(tmp_path / "c")
