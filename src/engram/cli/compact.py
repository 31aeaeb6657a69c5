"""`engram compact` and `engram concepts`: cluster a user's memories into concepts, and list
them (docs/compaction.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from engram.cli.options import DataOpt, JsonOpt, UserOpt, emit_json, open_memory, out
from engram.store import DEFAULT_DATA

ModelOpt = Annotated[str | None, typer.Option(
    "--model", envvar="ENGRAM_COMPACT_MODEL",
    help="Write abstractive summaries with this model (ollama:MODEL, openai:MODEL...; env "
         "ENGRAM_COMPACT_MODEL); extractive without one, or when it fails.")]


def compact(user: UserOpt, data: DataOpt = DEFAULT_DATA, model: ModelOpt = None,
            as_json: JsonOpt = False) -> None:
    """Cluster a user's memories into concepts and write their summaries (one transaction
    per concept); rerun it any time: unchanged concepts are kept, changed ones redone."""
    with open_memory(data) as mem, Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            transient=True, disable=as_json) as bar:
        task = bar.add_task("compacting", total=None)

        def progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total or None)

        report = mem.compact(user, model=model, progress=progress)
    if as_json:
        emit_json(report.to_dict())
        return
    if report.note.startswith("nothing to compact"):
        out.print(report.note, highlight=False)
        return
    out.print(f"{report.user_id}: {report.examined} memories → {len(report.concepts)} concepts "
              f"({report.added} new, {report.redone} redone, {report.kept} unchanged, "
              f"{report.dropped} dropped); summaries: {report.method}", highlight=False)
    if report.note:
        out.print(report.note, highlight=False)


def concepts(user: UserOpt, data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """List a user's concepts with their members (`--json`: id, name, summary, members)."""
    with open_memory(data) as mem:
        found = mem.concepts(user)
    if as_json:
        emit_json([c.to_dict() for c in found])
        return
    if not found:
        out.print(f"no concepts for {user!r} yet; run `engram compact --user {user}`",
                  highlight=False)
        return
    table = Table(title=f"concepts of {user}")
    for column in ("id", "name", "members", "summary"):
        table.add_column(column, overflow="fold")
    for c in found:
        table.add_row(c.id, c.name, str(len(c.members)), c.summary)
    out.print(table)
