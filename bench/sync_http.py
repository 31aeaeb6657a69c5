"""Sync over loopback HTTP: events/s pulled and pushed between a store and a real
`engram serve` process, and a re-sync with nothing new. Prints a markdown table.

    .venv/bin/python bench/sync_http.py --memories 5000 --batch 1000
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from engram.memory import Memory
from engram.sync.http import sync_peer


def fill(path: Path, label: str, n: int) -> None:
    with Memory(path, embedder=None) as mem:
        for start in range(0, n, 1000):
            mem.add_many([{"text": f"{label} memory {i}: the kettle is on shelf {i % 97}",
                           "user_id": f"user{i % 5}"} for i in range(start, min(n, start + 1000))])


def serve(path: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "engram", "serve", "--data", str(path),
                               "--port", str(port), "--max-body", str(8 * 1024 * 1024)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return server, url
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("engram serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memories", type=int, default=5000, help="memories on each side")
    parser.add_argument("--batch", type=int, default=1000, help="events per request")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="engram-sync-http-"))
    fill(root / "server", "board", args.memories)
    fill(root / "laptop", "laptop", args.memories)
    server, url = serve(root / "server")
    try:
        with Memory(root / "laptop", embedder=None) as mem:
            t = time.perf_counter()
            pulled = sync_peer(mem, url, push=False, batch=args.batch)
            pull_s = time.perf_counter() - t
            t = time.perf_counter()
            pushed = sync_peer(mem, url, pull=False, batch=args.batch)
            push_s = time.perf_counter() - t
            idle = []
            for _ in range(7):
                t = time.perf_counter()
                sync_peer(mem, url, batch=args.batch)
                idle.append((time.perf_counter() - t) * 1000)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
        shutil.rmtree(root, ignore_errors=True)
    print(f"| over loopback HTTP ({args.memories:,} memories a side, batch {args.batch}) "
          "| value |")
    print("|---|---|")
    print(f"| pull: events/s applied here | {pulled.pulled_new / pull_s:,.0f} "
          f"({pulled.pulled_new:,} events in {pull_s:.2f} s) |")
    print(f"| push: events/s applied by the server | {pushed.pushed_new / push_s:,.0f} "
          f"({pushed.pushed_new:,} events in {push_s:.2f} s) |")
    print(f"| re-sync with nothing new (median of 7) | {statistics.median(idle):.1f} ms |")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{os.cpu_count()} CPUs, load average at the end {load}")


if __name__ == "__main__":
    main()
