"""Git: a repository's history through the git CLI: one memory per commit reachable from HEAD
(message, author, date, touched files; a merge's files are what it changed on its first
parent), merges marked, Co-authored-by trailers kept as co-authors."""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from engram.errors import InvalidInput
from engram.ingest import files
from engram.ingest.datapoint import DataPoint, Options, Read, Skipped
from engram.model import Kind

KIND = "git"
SHOWN_FILES = 20  # touched files named in the text; all of them are in the metadata
_RECORD, _FIELD = "\x1e", "\x1f"
_FORMAT = _RECORD + _FIELD.join(("%H", "%an", "%ae", "%aI", "%P", "%B")) + _FIELD
_COAUTHOR = re.compile(r"^co-authored-by:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def collection(root: Path) -> str:
    """The repository's first commit: the same for every clone, wherever it lies."""
    folder = _top(root)
    roots = _git(folder, "rev-list", "--max-parents=0", "HEAD")
    return sorted(roots.split())[0] if roots and roots.split() else folder.name


def read(root: Path, options: Options) -> Iterator[Read]:
    folder = _top(root)
    if _git(folder, "rev-parse", "--verify", "-q", "HEAD") is None:
        return  # no commits yet: nothing to ingest
    for position, record in enumerate(_log(folder)):
        yield commit(record, position, options)


def commit(record: str, position: int, options: Options) -> Read:
    """One `git log` record as a DataPoint."""
    fields = record.split(_FIELD)
    if len(fields) != 7:
        return Skipped("git log", f"commit {position}", "unreadable log record")
    sha, name, email, when, parents, message, touched = fields
    paths = [p for p in touched.strip().splitlines() if p]
    kept = [p for p in paths if not files.excluded(p, options)]
    if paths and not kept:
        return Skipped("git log", sha[:12], "touches only excluded files", error=False)
    coauthors = _COAUTHOR.findall(message)
    body = _COAUTHOR.sub("", message).strip() or "(no message)"
    merge = len(parents.split()) > 1
    people = ", ".join([name, *(c.split("<")[0].strip() for c in coauthors)])
    shown = ", ".join(kept[:SHOWN_FILES]) + \
        (f" and {len(kept) - SHOWN_FILES} more" if len(kept) > SHOWN_FILES else "")
    text = f"{body}\n\n{'Merge' if merge else 'Commit'} {sha[:10]} by {people}" + \
        (f"; files: {shown}" if kept else "")
    return DataPoint(kind=KIND, external_id=sha, text=text, ref=sha,
                     time=datetime.fromisoformat(when), author=f"{name} <{email}>",
                     memory_type=Kind.EVENT, tags=("merge",) if merge else (),
                     metadata={"parents": parents.split(), "files": kept,
                               "co_authors": coauthors})


def _log(folder: Path) -> Iterator[str]:
    """`git log`'s records as git writes them: a history of any length is never held whole."""
    command = ["git", "-C", str(folder), "log", "--no-color", "--no-renames", "--name-only",
               "--diff-merges=first-parent", f"--format={_FORMAT}"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as git:
        assert git.stdout is not None
        text = io.TextIOWrapper(git.stdout, encoding="utf-8", errors="replace", newline="")
        pending = ""
        while chunk := text.read(1 << 16):
            *records, pending = (pending + chunk).split(_RECORD)
            yield from (r for r in records if r)
        if pending:
            yield pending


def _top(root: Path) -> Path:
    """`root` when it is the top of a work tree, else one clear error."""
    folder = files.folder(root, "the repository's folder")
    top = _git(folder, "rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != folder:
        raise InvalidInput("path", f"{folder} is not the top of a git repository",
                           "give the folder that holds .git")
    return folder


def _git(folder: Path, *args: str) -> str | None:
    """git's output in `folder`, or None when it fails."""
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                              check=False, timeout=600)
    except FileNotFoundError:
        raise InvalidInput("kind", "git is not installed", "install git to ingest a "
                           "repository's history") from None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", errors="replace")
