"""Real processes for the tests of a served store: Debian's redis-server on a free port, and
`engram serve` (any options) until it answers /healthz. Used by test_server_workers.py and
test_faults.py."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

REDIS = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(REDIS is None, reason="Debian's redis-server is not "
                                 "installed (apt-get install -y redis-server; .ci/run does it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.TransportError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"not ready within {timeout_s:.0f} s")


class RedisServer:
    """redis-server in a folder of its own, without persistence; `kill` it to test what the
    server does without it, `start` it again."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS is not None
        self.process = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: _answers(self.port), 20)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


def _answers(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(16).startswith(b"+PONG")


@contextmanager
def redis_server(folder: Path) -> Iterator[RedisServer]:
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@contextmanager
def engram_serve(data: str | Path, *options: str, log: Path | None = None) -> Iterator[str]:
    """`engram serve --data DATA OPTIONS` on a free port until /healthz answers; stopped with
    SIGINT (graceful: what was acknowledged is written) afterwards. Its stderr goes to `log`
    (or nowhere): a pipe nobody reads would stall it once full."""
    port = free_port()
    err = log.open("w") if log is not None else subprocess.DEVNULL
    server = subprocess.Popen(
        [sys.executable, "-m", "engram", "serve", "--data", str(data), "--port", str(port),
         *options], stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: server.poll() is None and
                   httpx.get(f"{url}/healthz", timeout=2).status_code == 200)
        yield url
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        if log is not None:
            err.close()  # type: ignore[union-attr]
