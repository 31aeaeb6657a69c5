"""Commands on the log and the store: rebuild, re-embed, verify, export, import, stats,
migrate."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from engram.cli.options import (
    DataOpt,
    JsonOpt,
    emit_json,
    fail,
    open_memory,
    out,
)
from engram.errors import EngramError
from engram.store import DEFAULT_DATA, is_url
from engram.store.migrate import copy_store
from engram.store.sqlite.files import integrity_problems


def rebuild(data: DataOpt = DEFAULT_DATA,
            force: Annotated[bool, typer.Option(
                "--force", help="Replay even a log that `engram verify` finds broken.")]
            = False) -> None:
    """Drop every projection and replay the event log into fresh ones."""
    with open_memory(data) as mem:
        report = mem.verify()
        if not report.ok and not force:
            fail(f"the log is broken at event #{report.broken_at} ({report.event_id}: "
                 f"{report.problem}), and a rebuild would replay it; restore the store from a "
                 "backup or an export, or pass --force to rebuild from it anyway", 1)
        started = time.perf_counter()
        count = mem.rebuild()
    out.print(f"rebuilt {count} memories in {time.perf_counter() - started:.2f} s")


def reembed(
    embedder: Annotated[str, typer.Option("--embedder", help="minilm, minilm-int8 (twice as "
                                          "fast, the onnx extra), local:PATH, "
                                          "openai:MODEL[@URL] or ollama:MODEL[@URL]")],
    data: DataOpt = DEFAULT_DATA,
) -> None:
    """Switch the store to another embedding model; old vectors serve until it finishes."""
    from rich.progress import Progress

    with open_memory(data) as mem, Progress(transient=True) as progress:
        task = progress.add_task("embedding", total=None)
        done = mem.reembed(embedder, progress=lambda n: progress.update(task, completed=n))
    out.print(f"embedded {done} texts with {embedder}; the store now uses it")


def verify(data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """Check the file (SQLite's integrity check), then walk the hash chain; exit 1 and name
    the first problem if there is one."""
    damaged = [] if is_url(data) else integrity_problems(data)
    if damaged:
        if as_json:
            emit_json({"ok": False, "checked": 0, "broken_at": None, "event_id": None,
                       "problem": "; ".join(damaged), "damaged": damaged})
        else:
            out.print(f"[red]damaged[/red]: SQLite's integrity check of {data} found: "
                      f"{'; '.join(damaged)}; restore the store from a backup or an export",
                      highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    with open_memory(data) as mem:
        report = mem.verify()
    if as_json:
        emit_json({"ok": report.ok, "checked": report.checked, "broken_at": report.broken_at,
                    "event_id": report.event_id, "problem": report.problem})
    elif report.ok:
        out.print(f"ok: {report.checked} events, chain intact")
    else:
        out.print(f"[red]broken[/red] at event #{report.broken_at} ({report.event_id}): "
                  f"{report.problem}; {report.checked} events before it are intact")
    if not report.ok:
        raise typer.Exit(1)


def export_(
    data: DataOpt = DEFAULT_DATA,
    output: Annotated[Path | None, typer.Option("--out", "-o",
                                                help="File to write (default stdout).")] = None,
    parquet: Annotated[Path | None, typer.Option("--parquet",
                                                 help="Write the memories table as Parquet "
                                                      "to this file instead.")] = None,
) -> None:
    """Export the event log as JSONL (lossless), or the memories table as Parquet."""
    from engram.log.export import write_events, write_parquet

    for option, target in (("--out", output), ("--parquet", parquet)):
        if target is not None and (target.is_dir() or not target.parent.is_dir()):
            why = "is a directory" if target.is_dir() else "is in a directory that does not exist"
            fail(f"{option}: {target} {why}; name a file in an existing directory")
    with open_memory(data) as mem:
        if parquet is not None:
            count = write_parquet(mem.list(limit=None), parquet)
            out.print(f"wrote {count} memories to {parquet}", highlight=False)
        elif output is None:
            write_events(mem.events(), sys.stdout)
        else:
            try:
                with output.open("w", encoding="utf-8") as fh:
                    count = write_events(mem.events(), fh)
            except OSError as exc:
                fail(f"--out: cannot write {output} ({exc.strerror or exc}); name a file in "
                     "a directory that exists and can be written")
            out.print(f"wrote {count} events to {output}", highlight=False)


def import_(file: Annotated[Path, typer.Argument(help="A JSONL export.")],
            data: DataOpt = DEFAULT_DATA) -> None:
    """Import an event export (all or nothing); already present events are skipped."""
    from engram.log.export import read_events

    if not file.is_file():
        fail(f"FILE: {file} does not exist; give the path of a JSONL export")
    with open_memory(data) as mem:
        events = read_events(file.read_bytes())
        added = mem.import_events(events)
    out.print(f"imported {added} events ({len(events) - added} already present)")


def stats(data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False,
          user: Annotated[str | None, typer.Option(
              "--user", "-u", help="The metrics of this user only (the store's counts stay "
                                   "the whole store's).")] = None,
          parquet: Annotated[Path | None, typer.Option(
              "--parquet", help="Also write the metrics over time as Parquet (metric, day, "
                                "series, value) to this file.")] = None) -> None:
    """Counts by tier and type, events, bytes on disk; and how memory is used: tiers, types
    and statuses over time, promotions, expiries, transitions, utilisation, recall hit rate,
    compaction (`--json` for all of it)."""
    from engram.analytics.metrics import measure, write_parquet

    with open_memory(data) as mem:
        numbers = mem.stats()
        metrics = measure(mem.store, user)
    if parquet is not None:
        rows = write_parquet(metrics, parquet)
        sys.stderr.write(f"wrote {rows} metric rows to {parquet}\n")
    if as_json:
        emit_json({**numbers, **metrics.to_dict()})
        return
    table = Table(title="engram stats" + (f" of {user}" if user else ""), show_header=False)
    for key, value in numbers.items():
        shown = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) \
            else str(value)
        table.add_row(key, shown)
    share = metrics.utilisation.get("share")
    table.add_row("promotions", str(sum(metrics.promotions.values())))
    table.add_row("expiries", str(sum(metrics.expiries.values())))
    table.add_row("utilisation", f"{share:.0%} of the budget over "
                  f"{metrics.utilisation['contexts']} contexts" if share is not None else "-")
    table.add_row("recall hit rate", f"{metrics.recall_hit_rate:.0%}"
                  if metrics.recall_hit_rate is not None else "-")
    c = metrics.compaction
    table.add_row("compaction", f"{c['concepts']} concepts over {c['members']} of "
                  f"{c['memories']} memories, {c['ratio']}x")
    out.print(table)


def migrate(
    source: Annotated[str, typer.Option("--from", help="Store to copy: directory or URL.")],
    target: Annotated[str, typer.Option("--to", help="Where to: directory or postgresql:// "
                                                     "URL (empty, or a partial copy).")],
    no_vectors: Annotated[bool, typer.Option("--no-vectors",
                                             help="Skip embedding the copy.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Copy a store to another backend by replaying its events; checksums prove the copy."""
    def progress(line: str) -> None:
        sys.stderr.write(f"... {line}\n")

    try:
        done = copy_store(source, target, vectors=not no_vectors, progress=progress)
    except EngramError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(2) from None
    if as_json:
        sys.stdout.write(json.dumps(asdict(done), indent=2) + "\n")
        return
    sys.stdout.write(f"copied {done.events_copied} of {done.events_total} events, "
                     f"{done.memories} memories, {done.vectors_embedded} embedded; "
                     f"checksum {done.checksum[:16]} matches\n")
