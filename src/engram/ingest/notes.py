"""Notes: a folder of Markdown or text files, Obsidian style. One memory per section (the
text under a heading), with the file's front matter and #tags; [[wiki links]] become links
between memories. A note with `private: true` or a private tag is kept out."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from engram.ingest import files
from engram.ingest.datapoint import DataPoint, Kept, Options, Read, Skipped
from engram.model import Kind

KIND = "notes"
SUFFIXES = frozenset({".md", ".markdown", ".txt"})
_WHAT = "the folder of notes (a vault)"
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_TAG = re.compile(r"(?<![\w&/#])#([A-Za-z_][\w/-]*)")
_LINK = re.compile(r"!?\[\[([^\]|#]+)(?:#[^\]|]*)?(?:\|([^\]]*))?\]\]")
# What a note says about its owner is said in the first person; the rest is about the world,
# and extraction (which only keeps what the speaker says of themselves) would find nothing.
_FIRST_PERSON = re.compile(r"\b(?:I|I'm|I've|I'd|I'll|me|my|mine|myself|we|our|us)\b",
                           re.IGNORECASE)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 20x faster when built


def collection(root: Path) -> str:
    """The vault's folder name: notes keep their ids when the vault moves."""
    return files.folder(root, _WHAT).name


def read(root: Path, options: Options) -> Iterator[Read]:
    folder = files.folder(root, _WHAT)
    found = list(files.walk(folder, SUFFIXES, options))
    names = _names(relative for relative, _ in found)
    # A note's links depend on which notes exist: a file added or renamed reads them all.
    layout = hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:12]
    for relative, path in found:
        stamp = files.stamp(path, layout)
        if options.stamps.get(relative) == stamp:
            yield Kept(relative, stamp)
            continue
        body = files.text(path, relative)
        if isinstance(body, Skipped):
            yield body
            continue
        yield from note(relative, body, files.modified(path), names, options, stamp)


def note(relative: str, body: str, modified: datetime, names: dict[str, str],
         options: Options, stamp: str | None = None) -> Iterator[Read]:
    """The sections of one note as DataPoints (or why the note is left out)."""
    front, offset, problem = _front_matter(body)
    if problem:
        yield Skipped(relative, "line 1", problem)
        return
    lines = body.splitlines()[offset:]
    tags = tuple(dict.fromkeys(_tags(front.get("tags")) + tuple(_TAG.findall(_prose(lines)))))
    if front.get("private") is True or set(options.private_tags) & {t.lower() for t in tags}:
        yield Skipped(relative, "", "private note", error=False)
        return
    title = str(front.get("title") or Path(relative).stem)
    when = _when(front.get("date") or front.get("created")) or modified
    meta: dict[str, Any] = {"title": title}
    for key in ("aliases", "source"):
        if key in front:
            meta[key] = front[key]
    author = str(front["author"]) if "author" in front else None
    seen: dict[str, int] = {}
    for index, (line, path, text) in enumerate(_sections(lines)):
        slug = "/".join(_slug(h) for h in path)
        seen[slug] = seen.get(slug, 0) + 1
        anchor = slug if seen[slug] == 1 else f"{slug}~{seen[slug]}"
        shown = path[1:] if path[:1] == [title] else path  # "# Title" repeats the title
        heading = " > ".join([title, *shown])
        links = tuple(dict.fromkeys(
            target for name, _ in _LINK.findall(text)
            if (target := names.get(name.strip().lower())) is not None and target != relative))
        plain = _LINK.sub(lambda m: (m.group(2) or m.group(1)).strip(), text)
        yield DataPoint(kind=KIND, external_id=f"{relative}#{anchor}",
                        text=f"{heading}\n\n{plain}", ref=f"{relative}:{line + offset}",
                        time=when, author=author, memory_type=Kind.FACT,
                        said=plain if _FIRST_PERSON.search(plain) else None,
                        tags=tags, document=relative, links=links,
                        metadata={**meta, "section": list(path),
                                  **({"first": True} if index == 0 else {})}, stamp=stamp)


def _front_matter(body: str) -> tuple[dict[str, Any], int, str | None]:
    """(front matter, lines it takes, problem) of a note."""
    if not body.startswith("---\n"):
        return {}, 0, None
    end = body.find("\n---", 3)
    if end < 0:
        return {}, 0, "front matter is not closed by a '---' line"
    try:
        front = yaml.load(body[4:end], Loader=_LOADER) or {}
    except yaml.YAMLError as exc:
        return {}, 0, f"front matter is not YAML ({str(exc).splitlines()[0]})"
    if not isinstance(front, dict):
        return {}, 0, "front matter is not a mapping of keys to values"
    return front, body[:end + 4].count("\n") + 1, None


def _sections(lines: list[str]) -> Iterator[tuple[int, list[str], str]]:
    """(first line number, heading path, text) of every non-empty section."""
    path: list[tuple[int, str]] = []
    start, fenced = 1, False
    chunk: list[str] = []

    def flush() -> Iterator[tuple[int, list[str], str]]:
        text = "\n".join(chunk).strip()
        if text:
            yield start, [h for _, h in path], text

    for number, line in enumerate(lines, 1):
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading is None:
            chunk.append(line)
            continue
        yield from flush()
        level = len(heading.group(1))
        path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, heading.group(2))]
        start, chunk = number, []
    yield from flush()


def _prose(lines: list[str]) -> str:
    """The lines outside code blocks and not headings (where #tags are tags)."""
    kept, fenced = [], False
    for line in lines:
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and not _HEADING.match(line):
            kept.append(line)
    return "\n".join(kept)


def _tags(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = re.split(r"[,\s]+", value)
    if not isinstance(value, list):
        return ()
    return tuple(dict.fromkeys(str(v).strip().lstrip("#") for v in value if str(v).strip("# ")))


def _when(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _when(datetime.fromisoformat(value.strip()))
        except ValueError:
            return None
    return None


def _names(relatives: Iterator[str]) -> dict[str, str]:
    """Link targets a [[wiki link]] may use (file name or path, without the suffix) → file."""
    names: dict[str, str] = {}
    for relative in relatives:
        stem = relative.rsplit(".", 1)[0]
        names.setdefault(stem.rsplit("/", 1)[-1].lower(), relative)
        names[stem.lower()] = relative
    return names


def _slug(heading: str) -> str:
    return re.sub(r"[^\w]+", "-", heading.lower()).strip("-") or "section"
