"""A JSON array of export records read one element at a time, so that one broken record
(a truncated conversation, a stray character) is reported with its position and skipped
while the others are read."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from engram.errors import InvalidInput
from engram.ingest.datapoint import Skipped

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"\s*")


def records(text: str, name: str, is_record: Callable[[Any], bool], what: str,
            start: int = 0) -> Iterator[tuple[str, dict[str, Any]] | Skipped]:
    """(where, record) for each element of the array at `start` ("record 3, line 40": for
    reporting a record the adapter cannot use), or a Skipped naming the line and column of
    a malformed element's error. After a broken element, reading
    resumes at the next object that `is_record` accepts (nested objects never are). A first
    element that is well-formed but not a record means the file is not `what`: an error."""
    at = _SPACE.match(text, start).end()  # type: ignore[union-attr]
    if text[at:at + 1] != "[":
        raise InvalidInput("path", f"{name} does not hold a JSON array",
                           "give the file from the export unchanged")
    at, index = at + 1, 0
    while True:
        at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
        if text[at:at + 1] == "]" or at >= len(text):
            return
        try:
            value, end = _DECODER.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            yield Skipped(name, f"line {exc.lineno} column {exc.colno}",
                          f"record {index + 1} is not valid JSON ({exc.msg})")
            value, end = None, -1
        if value is not None and not is_record(value) and index == 0:
            raise InvalidInput("path", f"{name} does not hold {what}",
                               "check the kind (engram ingest --list) and the file")
        if value is not None and not is_record(value):
            yield Skipped(name, _where(text, at, index), "not in the export's format")
        elif value is not None:
            yield _where(text, at, index), value
        index += 1
        if end < 0:
            found = _resync(text, at + 1, is_record)
            if found is None:
                return
            at = found
            continue
        at = _SPACE.match(text, end).end()  # type: ignore[union-attr]
        if text[at:at + 1] == ",":
            at += 1


def _resync(text: str, at: int, is_record: Callable[[Any], bool]) -> int | None:
    """The start of the next well-formed record after `at`, if any."""
    at = text.find("{", at)
    while at >= 0:
        try:
            value, _ = _DECODER.raw_decode(text, at)
            if is_record(value):
                return at
        except json.JSONDecodeError:
            pass
        at = text.find("{", at + 1)
    return None


def _where(text: str, at: int, index: int) -> str:
    return f"record {index + 1}, line {text.count(chr(10), 0, at) + 1}"
