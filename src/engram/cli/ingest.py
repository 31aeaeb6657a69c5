"""`engram ingest KIND PATH`: a person's notes, code history, chat exports, social archives,
mail and photos as memories (docs/ingest.md), with a progress bar and a summary."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from engram.cli.options import DataOpt, JsonOpt, UserOpt, emit_json, fail, open_memory, out
from engram.ingest import ADAPTERS
from engram.ingest.pipeline import Summary
from engram.store import DEFAULT_DATA
from engram.validate import DEFAULT_USER

SHOWN_PROBLEMS = 20  # malformed items listed after the summary (--json lists them all)


def ingest(
    kind: Annotated[str | None, typer.Argument(
        help="The kind of source: notes, git, chatgpt, claude, chat-jsonl, twitter, "
             "mastodon, mbox, photos (--list says what PATH each reads).")] = None,
    path: Annotated[Path | None, typer.Argument(
        help="The folder or file to read; nothing outside it is read.")] = None,
    user: UserOpt = DEFAULT_USER,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", help="Leave out paths matching this glob, e.g. 'journal/*' "
                          "(repeatable).")] = None,
    prune: Annotated[bool, typer.Option(
        "--prune", help="Forget the memories of items the source no longer holds.")] = False,
    private_tag: Annotated[list[str] | None, typer.Option(
        "--private-tag", help="A note with this tag is kept out (repeatable; default: "
                              "private).")] = None,
    caption_model: Annotated[str | None, typer.Option(
        "--caption-model", help="photos: a local image-to-text model folder (BLIP style) "
                                "that captions each photo (default: none).")] = None,
    list_kinds: Annotated[bool, typer.Option(
        "--list", help="Name the kinds of source and what PATH each reads.")] = False,
    data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """Turn a source into memories: new items added, changed ones updated, unchanged ones
    left alone; a re-run adds nothing. Each batch is one transaction, so a killed run
    continues where it stopped."""
    if list_kinds:
        _list(as_json)
        return
    if kind is None or path is None:
        fail("ingest needs KIND and PATH, e.g. `engram ingest notes ~/vault --user me` "
             "(engram ingest --list names the kinds)")
    seen: list[Summary] = []

    def progress(s: Summary) -> None:
        seen[:] = [s]
        bar.update(task, completed=s.read, counts=_counts(s))

    try:
        with open_memory(data) as mem, _bar(as_json) as bar:
            task = bar.add_task(f"{kind} {path}", total=None, counts="")
            summary = mem.ingest(kind, path, user_id=user, exclude=exclude or (), prune=prune,
                                 private_tags=private_tag or ("private",),
                                 caption_model=caption_model, progress=progress)
    except KeyboardInterrupt:
        done = f" ({_counts(seen[0]).lstrip('· ')})" if seen else ""
        sys.stderr.write(f"interrupted: the batches written so far are kept{done}; run the "
                         "same command again to continue\n")
        raise typer.Exit(130) from None
    if as_json:
        emit_json(summary.to_dict())
        return
    out.print(_table(summary))
    for problem in summary.problems[:SHOWN_PROBLEMS]:
        out.print(f"  [yellow]skipped[/yellow] {problem}", highlight=False)
    if len(summary.problems) > SHOWN_PROBLEMS:
        out.print(f"  … and {len(summary.problems) - SHOWN_PROBLEMS} more (--json lists all)")
    if summary.deleted and not prune:
        out.print(f"{len(summary.deleted)} items are gone from the source; "
                  "--prune forgets their memories", highlight=False)


def _bar(quiet: bool) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                    TextColumn("{task.completed} read {task.fields[counts]}"),
                    TimeElapsedColumn(), console=out, transient=True, disable=quiet)


def _counts(s: Summary) -> str:
    return (f"· {s.added} added · {s.updated} updated · {s.unchanged} unchanged · "
            f"{s.skipped} skipped · {s.errors} errors")


def _table(s: Summary) -> Table:
    table = Table(title=f"ingested {s.kind} from {s.path}")
    table.add_column("items")
    table.add_column("count", justify="right")
    for name in ("added", "updated", "unchanged", "skipped", "errors"):
        table.add_row(name, str(getattr(s, name)))
    table.add_row("facts extracted", str(s.extracted))
    table.add_row("wiki links", str(s.linked))
    table.add_row("gone from the source", str(len(s.deleted)))
    table.add_row("pruned", str(s.pruned))
    return table


def _list(as_json: bool) -> None:
    if as_json:
        emit_json({kind: what for kind, (_, what) in ADAPTERS.items()})
        return
    table = Table(title="kinds of source (engram ingest KIND PATH)")
    table.add_column("kind")
    table.add_column("PATH")
    for kind, (_, what) in ADAPTERS.items():
        table.add_row(kind, what)
    out.print(table)
