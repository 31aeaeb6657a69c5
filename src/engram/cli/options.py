"""What every `engram` command shares: the options (`--data` defined once, with the one
default store path), opening the store, and failing with one line and exit code 2."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from engram.errors import EngramError
from engram.memory import Memory

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


def fail(message: str) -> NoReturn:
    """Bad input: one clear line on stderr, exit code 2."""
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(2)


@contextmanager
def open_memory(data: str | Path) -> Iterator[Memory]:
    """Open the store for one command; any EngramError inside becomes `_fail`."""
    try:
        mem = Memory(data)
        try:
            yield mem
        finally:
            mem.close()
    except EngramError as exc:
        fail(str(exc))


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")
