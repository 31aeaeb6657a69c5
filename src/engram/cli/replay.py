"""`engram replay SESSION`: a chat session's timeline, rebuilt from the log."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from engram.analytics.replay import replay as timeline
from engram.cli.options import DataOpt, JsonOpt, UserOpt, emit_json, open_memory, out
from engram.store import DEFAULT_DATA


def replay(session: Annotated[str, typer.Argument(metavar="SESSION",
                                                  help="The session id.")],
           user: UserOpt, data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """What happened in a session, in order: turns, what was extracted from each,
    supersessions, tier changes and feedback, with the time each was recorded."""
    with open_memory(data) as mem:
        found = timeline(mem.events(), session, user)
    if as_json:
        emit_json(found.to_dict())
        return
    table = Table(title=f"session {session} of {user}: {found.turns} turns")
    for column in ("recorded", "event", "role", "memory", "what"):
        table.add_column(column, overflow="fold")
    for step in found.steps:
        what = step.text if step.turn is None else f"{step.text}  (from turn {step.turn})"
        table.add_row(step.at[:19].replace("T", " "), step.event.removeprefix("memory."),
                      step.role, step.memory_id, what)
    out.print(table)
