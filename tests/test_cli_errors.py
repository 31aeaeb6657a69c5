"""The CLI says one line, never a traceback: damaged, truncated and random store files,
read-only stores (still readable), unwritable and impossible --data paths, bad --out targets,
bad serve options, a tampered log on rebuild, a bad store under `engram mcp`, foreign URLs
and missing stores for migrate, out-of-range offsets and invalid UTF-8 arguments.

Most cases run `engram.cli.entry.run` (what the console script calls) in this process; the
ones about the process itself (stdio, argv bytes) run `python -m engram`."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engram.cli.entry import run
from engram.cli.main import app
from engram.memory import Memory


def engram(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(app, list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    with Memory(tmp_path / "store", embedder=None) as mem:
        mem.add("Ana lives in Lisbon", user_id="ana")
        mem.add("Ana plays the cello", user_id="ana")
    return tmp_path / "store"


def damaged(store: Path, how: str) -> Path:
    db = store / "engram.db"
    if how == "header":
        with db.open("r+b") as fh:
            fh.write(b"NOT A SQLITE FILE")
    elif how == "truncated":
        with db.open("r+b") as fh:
            fh.truncate(db.stat().st_size // 3)
    else:
        db.write_bytes(os.urandom(db.stat().st_size))
    return store


@pytest.mark.parametrize("how", ["header", "truncated", "random"])
def test_a_damaged_store_gets_one_line_and_verify_names_it(
        store: Path, how: str, capsys: pytest.CaptureFixture[str]) -> None:
    damaged(store, how)
    for command in (["list"], ["search", "cello", "--user", "ana"], ["add", "x"], ["stats"],
                    ["export"]):
        code, _, err = engram(capsys, *command, "--data", str(store))
        assert code == 1 and "engram verify" in one_line(err), (command, err)
    code, out, err = engram(capsys, "verify", "--data", str(store))
    assert code == 1 and err == "" and "integrity check" in out
    assert ("not a database" in out or "malformed" in out), out


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A store as the CLI leaves it (with its vectors) on a read-only mount (as root: a tmpfs
    remounted read-only, since root may write through any permission), or made read-only by
    permissions (anyone else)."""
    store = tmp_path / "embedded"
    with Memory(store) as mem:
        mem.add("Ana lives in Lisbon", user_id="ana")
        mem.add("Ana plays the cello", user_id="ana")
    if os.geteuid() != 0:
        for path in (store / "engram.db", store):
            path.chmod(0o555 if path.is_dir() else 0o444)
        yield store
        store.chmod(0o755)
        return
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here to make a read-only store")
    try:
        shutil.copytree(store, mount / "store")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount / "store"
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_read_only_store_can_still_be_read(read_only: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data", str(read_only)]
    code, out, err = engram(capsys, "list", "--json", *data)
    assert code == 0 and "Lisbon" in out and err == ""
    code, out, _ = engram(capsys, "search", "cello", "--user", "ana", "--json", *data)
    assert code == 0 and "cello" in out
    code, out, _ = engram(capsys, "export", *data)
    assert code == 0 and out.count("memory.added") == 2
    code, _, err = engram(capsys, "add", "more", *data)
    assert code == 1 and "read-only" in one_line(err)
    code, _, err = engram(capsys, "add", "x", "--data", str(read_only / "new"))
    assert code == 2 and "--data" in one_line(err)


def test_impossible_data_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("not a directory")
    for data in (tmp_path / "afile" / "sub", tmp_path / "afile"):
        code, _, err = engram(capsys, "list", "--data", str(data))
        assert code == 2 and "--data" in one_line(err)


def test_export_targets(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for target in (tmp_path / "missing" / "out.jsonl", tmp_path):
        for option in ("--out", "--parquet"):
            code, _, err = engram(capsys, "export", option, str(target), "--data", str(store))
            assert code == 2 and option in one_line(err)


def test_serve_options(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["--port", "99999"], ["--port", "0"], ["--max-body", "-1"]):
        code, _, err = engram(capsys, "serve", *args, "--data", str(store))
        assert code == 2 and args[0] in one_line(err)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code, _, err = engram(capsys, "serve", "--port", port, "--data", str(store))
    assert code == 1 and "--port" in one_line(err)


def test_rebuild_refuses_a_tampered_log(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(store / "engram.db") as db:
        db.execute("UPDATE events SET payload = replace(payload, 'Lisbon', 'Porto')")
    code, _, err = engram(capsys, "rebuild", "--data", str(store))
    assert code == 1 and "--force" in one_line(err)
    code, out, _ = engram(capsys, "rebuild", "--force", "--data", str(store))
    assert code == 0 and "rebuilt" in out


def test_migrate_refuses_foreign_urls_and_missing_stores(
        store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = engram(capsys, "migrate", "--from", str(store), "--to", "mysql://x")
    assert code == 2 and "mysql://" in one_line(err) and not Path("mysql:").exists()
    code, _, err = engram(capsys, "migrate", "--from", "nowhere", "--to", "copy")
    assert code == 2 and "no store" in one_line(err)
    assert not Path("nowhere").exists() and not Path("copy").exists()


@pytest.mark.parametrize("args", [["--offset", "1e30"], ["--offset", "-5"],
                                  ["--offset", str(10**30)], ["--limit", "0"],
                                  ["--user", ""], ["--user", "  "]])
def test_out_of_range_and_blank_options(store: Path, args: list[str],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = engram(capsys, "list", *args, "--data", str(store))
    assert code == 2 and one_line(err)


def test_the_process_itself_says_one_line(tmp_path: Path, store: Path) -> None:
    """`engram mcp` on a damaged store tells the MCP client why on stderr (stdout is the
    protocol); an argument that is not UTF-8 is refused before anything runs."""
    damaged(store, "header")
    mcp = subprocess.run([sys.executable, "-m", "engram", "mcp", "--data", str(store)],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert mcp.returncode == 1 and mcp.stdout == "" and "engram verify" in one_line(mcp.stderr)
    bad = subprocess.run([sys.executable.encode(), b"-m", b"engram", b"add", b"caf\xe9",
                          b"--data", str(tmp_path / "other").encode()],
                         capture_output=True, timeout=120)
    assert bad.returncode == 2 and "not valid UTF-8" in one_line(bad.stderr.decode())
    assert not (tmp_path / "other").exists()
