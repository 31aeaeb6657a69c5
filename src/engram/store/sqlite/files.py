"""The store's file: where it lives, whether it may be written, how SQLite opens it, and what
is wrong with it when it cannot be opened (one line for a person, never SQLite's traceback)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from engram.errors import InvalidInput, StoreError

DB_FILE = "engram.db"
# Reads map the file instead of copying each page through a system call: about a tenth
# off a search's CPU time at 100k memories (docs/benchmarks.md). Address space only; the
# pages are the OS file cache's.
MMAP_BYTES = 1 << 30


def read_only(directory: Path, path: Path) -> bool:
    """An existing store Engram may read but not write (a read-only mount, no permission)."""
    return path.is_file() and not (os.access(directory, os.W_OK) and os.access(path, os.W_OK))


def prepare(directory: Path, path: Path, read_only: bool) -> str:
    """The SQLite URI to open, the directory created first; errors name --data and the fix.
    A read-only store whose directory cannot be written is opened immutable (SQLite cannot
    create the WAL's shared-memory file beside it, and nothing can change it meanwhile)."""
    if directory.exists() and not directory.is_dir():
        raise InvalidInput("data", f"{directory} is a file, not a directory",
                           "point --data / ENGRAM_DATA at a directory")
    if path.exists() and not path.is_file():
        raise InvalidInput("data", f"{path} is not a file", f"move it out of {directory}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput("data", f"{directory} cannot be created ({exc.strerror})",
                           "point --data / ENGRAM_DATA at a directory you can write") from None
    if not path.exists() and not os.access(directory, os.W_OK):
        raise InvalidInput("data", f"{directory} cannot be written, so no store can be made "
                           "there", "point --data / ENGRAM_DATA at a directory you can write")
    uri = f"file:{quote(str(path.absolute()))}"
    if read_only:
        uri += "?mode=ro" + ("&immutable=1" if not os.access(directory, os.W_OK) else "")
    return uri


def unusable(path: Path, exc: sqlite3.Error) -> StoreError:
    """Why SQLite could not use the store's file, for a person."""
    if isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc):
        return StoreError(f"store: {path} cannot be opened ({exc}); check that it and its "
                          "directory can be read")
    return StoreError(f"store: {path} is damaged or not an Engram store ({exc}); see "
                      f"`engram verify --data {path.parent}`, then restore it from a backup or "
                      "an export (engram import)")


def failed_write(path: Path, exc: sqlite3.OperationalError) -> StoreError:
    """A write SQLite could not make (it rolled back, so nothing of it is kept)."""
    text = str(exc)
    if "full" in text:
        return StoreError(f"store: the disk holding {path} is full ({text}); nothing of this "
                          "write was kept: free some space, then try again")
    return StoreError(f"store: {path} could not be written ({text}); nothing of this write "
                      "was kept")


def integrity_problems(directory: str | Path, most: int = 5) -> list[str]:
    """What SQLite's integrity check finds wrong with the store's file (empty when it is
    sound), read without opening the store (which a damaged file would stop)."""
    path = Path(directory) / DB_FILE
    if not path.is_file():
        return []
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.absolute()))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return [str(exc)]
    try:
        rows = [str(r[0]) for r in conn.execute(f"PRAGMA integrity_check({most})")]
    except sqlite3.Error as exc:
        return [str(exc)]
    finally:
        conn.close()
    return [] if rows == ["ok"] else rows
