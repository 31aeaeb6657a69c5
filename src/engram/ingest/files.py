"""Reading inside the given path only: walking a folder without leaving it (symlinks that
point outside are skipped), honouring --exclude globs, and decoding text strictly."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from engram.errors import InvalidInput
from engram.ingest.datapoint import Options, Skipped

HIDDEN_DIRS = frozenset({".git", ".obsidian", ".trash", ".stfolder", "node_modules"})


def existing(path: str | Path) -> Path:
    """The resolved path, or one clear error if it does not exist."""
    root = Path(path).expanduser()
    if not root.exists():
        raise InvalidInput("path", f"{root} does not exist", "give the folder or file to ingest")
    return root.resolve()


def folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise InvalidInput("path", f"{path} is a file, not a folder", f"give {what}")
    return path


def file(path: Path, what: str, inside: str | None = None) -> Path:
    """`path` itself if it is a file; in a folder, its `inside` file (an export's folder)."""
    if path.is_dir() and inside is not None and (path / inside).is_file():
        return path / inside
    if not path.is_file():
        raise InvalidInput("path", f"{path} is a folder, not a file", f"give {what}")
    return path


def excluded(relative: str, options: Options) -> bool:
    """Whether a path relative to the root matches an --exclude glob (or any folder does)."""
    parts = relative.split("/")
    candidates = [relative, *("/".join(parts[:i]) for i in range(1, len(parts)))]
    return any(fnmatch.fnmatch(c, glob) or fnmatch.fnmatch(parts[-1], glob)
               for glob in options.exclude for c in candidates)


def walk(root: Path, suffixes: frozenset[str], options: Options) -> Iterator[tuple[str, Path]]:
    """(path relative to root, path) of the files under root with these suffixes, sorted;
    never outside root (a symlink is followed only when it stays inside; os.walk does not
    enter linked folders), never hidden tool folders, never excluded."""
    for current, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in HIDDEN_DIRS and not d.startswith("."))
        base = os.path.relpath(current, root)
        for name in sorted(names):
            if os.path.splitext(name)[1].lower() not in suffixes:
                continue
            relative = name if base == "." else f"{base}/{name}".replace(os.sep, "/")
            path = Path(current, name)
            if excluded(relative, options) or (path.is_symlink() and not inside(path, root)):
                continue
            yield relative, path


def inside(path: Path, root: Path) -> bool:
    """Whether `path`, with symlinks resolved, is still under `root`."""
    return path.resolve().is_relative_to(root)


def stamp(path: Path, salt: str = "") -> str:
    """What changes when the file changes (its modification time and size), for skipping an
    unchanged file on the next run; `salt` folds in what else its reading depends on."""
    info = path.stat()
    return f"{info.st_mtime_ns}:{info.st_size}:{salt}"


def text(path: Path, relative: str) -> str | Skipped:
    """The file as UTF-8 (a BOM dropped), or why it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Skipped(relative, "", f"cannot read ({exc.strerror})")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        return Skipped(relative, f"line {line}", f"not UTF-8 (byte {exc.start})")


def modified(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
