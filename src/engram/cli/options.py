"""What every `engram` command shares: the options (`--data` defined once, with the one
default store path), opening the store, and failing with one line and exit code 2."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from engram.errors import EngramError, ReadOnly, StoreError
from engram.memory import Memory
from engram.validate import MAX_OFFSET

out = Console()

DataOpt = Annotated[str, typer.Option("--data", envvar="ENGRAM_DATA",
                                      help="Store directory or postgresql:// URL "
                                           "(env ENGRAM_DATA).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
UserOpt = Annotated[str, typer.Option("--user", "-u", help="User the memories belong to.")]
OptUser = Annotated[str | None, typer.Option("--user", "-u", help="Only this user.")]
AgentOpt = Annotated[str | None, typer.Option("--agent", help="Agent id.")]
SessionOpt = Annotated[str | None, typer.Option("--session", help="Session id.")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", "-t", help="Tag (repeatable).")]
TypeOpt = Annotated[str | None, typer.Option("--type", help="Memory type: fact, preference...")]
TierOpt = Annotated[str | None, typer.Option("--tier", help="short_term, long_term, persistent.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="Happened at or after (ISO 8601).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Happened before (ISO 8601).")]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="The memory's id.")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", help="Most results to show.")]
OffsetOpt = Annotated[int, typer.Option("--offset", help=f"Skip this many first (0-{MAX_OFFSET}).")]


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear line on stderr; exit code 2 for bad input, 1 for a store that cannot serve."""
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code)


def exit_code(exc: EngramError) -> int:
    return 1 if isinstance(exc, StoreError) else 2


@contextmanager
def open_memory(data: str | Path) -> Iterator[Memory]:
    """Open the store for one command; an EngramError inside, or on closing, becomes `fail`.
    A read-only store serves reads; the recall counts it cannot keep are dropped."""
    try:
        mem = Memory(data)
    except EngramError as exc:
        fail(str(exc), exit_code(exc))
    try:
        yield mem
    except EngramError as exc:
        with contextlib.suppress(EngramError):
            _close(mem)
        fail(str(exc), exit_code(exc))
    try:
        _close(mem)
    except EngramError as exc:
        fail(str(exc), exit_code(exc))


def _close(mem: Memory) -> None:
    try:
        mem.close()
    except ReadOnly:
        mem.store.close()


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")
