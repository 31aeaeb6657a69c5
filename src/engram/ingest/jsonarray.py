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
    """(where, record) for each element of the array at `start` ("line 40", for reporting
    a record the adapter cannot use), or a Skipped for each stretch of malformed JSON. A
    broken record has no end to find, so reading resumes at the next object that
    `is_record` accepts (nested objects never are), and the Skipped names the lines in
    between, the error's own line and column, and its message. A first element that is
    well-formed but not a record means the file is not `what`: an error."""
    at = _SPACE.match(text, start).end()  # type: ignore[union-attr]
    if text[at:at + 1] != "[":
        raise InvalidInput("path", f"{name} does not hold a JSON array",
                           "give the file from the export unchanged")
    at, first = at + 1, True
    while True:
        at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
        if text[at:at + 1] == "]" or at >= len(text):
            return
        try:
            value, end = _DECODER.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            found = _resync(text, at + 1, is_record)
            last = _line(text, found) - 1 if found is not None else text.count("\n") + 1
            yield Skipped(name, f"lines {_line(text, at)}-{max(last, _line(text, at))}",
                          f"not valid JSON ({exc.msg} at line {exc.lineno} column "
                          f"{exc.colno})")
            if found is None:
                return
            at, first = found, False
            continue
        if not is_record(value):
            if first:
                raise InvalidInput("path", f"{name} does not hold {what}",
                                   "check the kind (engram ingest --list) and the file")
            yield Skipped(name, f"line {_line(text, at)}", "not in the export's format")
        else:
            yield f"line {_line(text, at)}", value
        at, first = _SPACE.match(text, end).end(), False  # type: ignore[union-attr]
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


def _line(text: str, at: int) -> int:
    return text.count("\n", 0, at) + 1
