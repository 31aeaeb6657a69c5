"""Several processes writing to one store at once: no error reaches them, nothing is lost.

Three `writer_process.py` processes (eight on PostgreSQL, where writers may sit on several
machines) open the same, not yet created, store together (so they also race on creating it),
wait at a start line, then each add 200 memories in a seeded mix of `add` and `add_many`.
Every write is one transaction that serializes with the others (SQLite: IMMEDIATE with
busy-timeout and retry; PostgreSQL: a transaction-level advisory lock), so they must all
succeed, and the log must come out as one intact chain with gapless per-device sequences.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from engram import Memory
from engram.log.events import GENESIS_HASH, chain_problem
from store_contract import Backend

WRITER = Path(__file__).with_name("writer_process.py")
WRITERS = {"sqlite": 3, "postgres": 8}
PER_WRITER = 200


def _wait_ready(logs: list[Path], writers: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    while not all("# ready" in log.read_text() for log in logs):
        for writer in writers:
            assert writer.poll() is None, f"a writer exited before the start line: {writer.args!r}"
        assert time.monotonic() < deadline, "writers did not open the store within 60 s"
        time.sleep(0.01)


class ConcurrentWritersContract(Backend):
    """Concurrent writers on every backend; run by test_store_*.py."""

    def test_concurrent_writers_share_one_intact_log(self, tmp_path: Path, store_dir: Path,
                                                     backend: str) -> None:
        store, go, writer_count = store_dir, tmp_path / "go", WRITERS[backend]
        logs = [tmp_path / f"writer-{n}.out" for n in range(writer_count)]
        writers = []
        for n, log in enumerate(logs):
            with log.open("w") as out:
                writers.append(subprocess.Popen(
                    [sys.executable, str(WRITER), str(store), "--name", f"w{n}",
                     "--count", str(PER_WRITER), "--seed", str(n), "--go", str(go),
                     "--pause-ms", "3"],
                    stdout=out, stderr=subprocess.PIPE))
        try:
            _wait_ready(logs, writers)
            go.touch()
            errors = [w.communicate(timeout=120)[1].decode() for w in writers]
        finally:
            for writer in writers:
                if writer.poll() is None:
                    writer.kill()
                    writer.wait()

        for writer, err in zip(writers, errors, strict=True):
            assert writer.returncode == 0, err
            assert err == "", err  # no traceback, no warning
        printed = [[line for line in log.read_text().splitlines() if not line.startswith("#")]
                   for log in logs]
        for lines, log in zip(printed, logs, strict=True):
            assert len(lines) == PER_WRITER, log.read_text()[-500:]
            assert log.read_text().endswith("# done\n")
        ids = [memory_id for lines in printed for memory_id in lines]
        assert len(set(ids)) == writer_count * PER_WRITER

        with Memory(store) as mem:
            assert mem.count() == writer_count * PER_WRITER
            assert all(mem.get(memory_id).id == memory_id for memory_id in ids)
            report = mem.verify()
            assert report.ok, report
            events = list(mem.events())
            assert report.checked == len(events) == writer_count * PER_WRITER

            expected_prev = GENESIS_HASH
            seqs: dict[str, list[int]] = defaultdict(list)
            for before, event in zip([None, *events], events, strict=False):
                assert chain_problem(event, expected_prev) is None
                expected_prev = event.hash
                if before is not None:
                    assert event.hlc > before.hlc, "hybrid logical clock went backwards"
                seqs[event.device_id].append(event.seq)
            for device, numbers in seqs.items():
                assert numbers == list(range(1, len(numbers) + 1)), f"{device}: seq gap or repeat"
            assert len({event.id for event in events}) == len(events)
            assert {event.memory_id for event in events} == set(ids)

            assert mem.rebuild() == writer_count * PER_WRITER
            assert mem.verify().ok
