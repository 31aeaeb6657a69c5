"""The `engram` command: a thin shell over `Memory`. Errors a user causes exit with code 2."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from engram.chat.terminal import chat
from engram.errors import EngramError
from engram.lifecycle import config, tiers
from engram.log.events import Event
from engram.memory import Memory
from engram.model import MemoryEntry, to_json
from engram.query import Hit
from engram.server.commands import register as register_server
from engram.store.migrate import migrate_command
from engram.validate import DEFAULT_USER

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False,
                  help="Engram: long-term memory for LLMs, in one local store.")
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
LimitOpt = Annotated[int, typer.Option("--limit", "-n", help="Most results to show.")]

_DEFAULT_DATA = "./engram-data"


def _fail(message: str) -> NoReturn:
    """Bad input: one clear line on stderr, exit code 2."""
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(2)


@contextmanager
def _memory(data: str | Path) -> Iterator[Memory]:
    """Open the store for one command; any EngramError inside becomes `_fail`."""
    try:
        mem = Memory(data)
        try:
            yield mem
        finally:
            mem.close()
    except EngramError as exc:
        _fail(str(exc))


def _emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def _memories_table(entries: Sequence[MemoryEntry], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for name in ("id", "when", "user", "type", "tier", "tags", "text"):
        table.add_column(name, overflow="fold", max_width=60 if name == "text" else None)
    for m in entries:
        table.add_row(m.id, m.occurred_at.strftime("%Y-%m-%d %H:%M"), m.user_id,
                      m.memory_type.value, m.tier.value, ", ".join(m.tags), m.content)
    return table


EXPLAINED = ("keyword", "vector", "session", "recency", "confidence")


def _hits_table(hits: Sequence[Hit], title: str, explain: bool = False) -> Table:
    table = Table(title=title)
    columns = ["#", "score", *(EXPLAINED if explain else ()), "when", "id", "text"]
    for name in columns:
        table.add_column(name, overflow="fold", max_width=70 if name == "text" else None)
    for rank, h in enumerate(hits, start=1):
        parts = [f"{h.components.get(name, 0.0):.3f}" for name in EXPLAINED] if explain else []
        table.add_row(str(rank), f"{h.score:.3f}", *parts,
                      h.memory.occurred_at.strftime("%Y-%m-%d"), h.memory.id, h.memory.content)
    return table


def _hit_json(hit: Hit) -> dict[str, Any]:
    return {"score": hit.score, "components": hit.components, "memory": hit.memory.to_dict()}


@app.command()
def init(data: DataOpt = _DEFAULT_DATA) -> None:
    """Create an empty store (opening a store also creates or upgrades it)."""
    with _memory(data) as mem:
        out.print(f"store ready at {mem.stats()['path']} (device {mem.store.device_id})")


@app.command()
def add(
    text: Annotated[str, typer.Argument(help="What to remember.")],
    data: DataOpt = _DEFAULT_DATA, user: UserOpt = DEFAULT_USER, agent: AgentOpt = None,
    session: SessionOpt = None, tag: TagOpt = None,
    memory_type: Annotated[str, typer.Option("--type")] = "fact",
    tier: Annotated[str, typer.Option("--tier")] = "short_term",
    truth: Annotated[str, typer.Option("--truth", help="absolute, contextual, ...")] =
    "contextual",
    at: Annotated[str | None, typer.Option("--at", help="When it happened (ISO 8601).")] = None,
    meta: Annotated[str | None, typer.Option("--meta", help="Metadata as a JSON object.")] =
    None,
    as_json: JsonOpt = False,
) -> None:
    """Remember one text."""
    metadata = _parse_json_object(meta, "--meta") if meta else None
    with _memory(data) as mem:
        entry = mem.add(text, user_id=user, agent_id=agent, session_id=session, tags=tag,
                        memory_type=memory_type, tier=tier, truth_category=truth, at=at,
                        metadata=metadata)
    if as_json:
        _emit_json(entry.to_dict())
    else:
        out.print(entry.id)


def _parse_json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"{option}: not valid JSON ({exc.msg}); pass an object like "
                         "'{\"key\": \"value\"}'")
    if not isinstance(value, dict):
        _fail(f"{option}: expected a JSON object; pass one like '{{\"key\": 1}}'")
    return value


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    data: DataOpt = _DEFAULT_DATA, user: UserOpt = DEFAULT_USER, limit: LimitOpt = 10,
    agent: AgentOpt = None, session: SessionOpt = None, tag: TagOpt = None,
    memory_type: TypeOpt = None, tier: TierOpt = None, since: SinceOpt = None,
    until: UntilOpt = None, as_json: JsonOpt = False,
    explain: Annotated[bool, typer.Option("--explain", help="Show what each score is made of.")]
    = False,
) -> None:
    """Recall a user's memories that best match QUERY (keyword + vector, fused)."""
    with _memory(data) as mem:
        hits = mem.search(query, user_id=user, limit=limit, agent_id=agent, session_id=session,
                          tags=tag, memory_type=memory_type, tier=tier, since=since,
                          until=until)
    if as_json:
        _emit_json([_hit_json(h) for h in hits])
    else:
        out.print(_hits_table(hits, f"{len(hits)} memories for {query!r}", explain))


@app.command("list")
def list_(
    data: DataOpt = _DEFAULT_DATA, user: OptUser = None, agent: AgentOpt = None,
    session: SessionOpt = None, tag: TagOpt = None, memory_type: TypeOpt = None,
    tier: TierOpt = None, since: SinceOpt = None, until: UntilOpt = None,
    limit: LimitOpt = 50, offset: Annotated[int, typer.Option("--offset")] = 0,
    status: Annotated[str, typer.Option(
        "--status", help="active, superseded, expired or all.")] = "active",
    as_json: JsonOpt = False,
) -> None:
    """List memories, newest first, with filters."""
    with _memory(data) as mem:
        entries = mem.list(user_id=user, agent_id=agent, session_id=session, tags=tag,
                           memory_type=memory_type, tier=tier, since=since, until=until,
                           status=status, limit=limit, offset=offset)
    if as_json:
        _emit_json([e.to_dict() for e in entries])
    else:
        out.print(_memories_table(entries, f"{len(entries)} memories"))


@app.command()
def show(memory_id: Annotated[str, typer.Argument(metavar="ID")], data: DataOpt = _DEFAULT_DATA,
         as_json: JsonOpt = False) -> None:
    """Show one memory and every event in its history."""
    with _memory(data) as mem:
        entry = mem.get(memory_id)
        events = mem.history(memory_id)
        why = tiers.why(entry, events, mem.policy)
    if as_json:
        _emit_json({"memory": entry.to_dict(), "why": why,
                    "history": [e.to_dict() for e in events]})
        return
    out.print(f"[bold]{entry.id}[/bold]  {entry.content}")
    out.print(f"  [italic]{why}[/italic]", highlight=False)
    details = {k: v for k, v in entry.to_dict().items() if k not in ("id", "content")}
    for key, value in details.items():
        out.print(f"  {key}: {json.dumps(to_json(value), ensure_ascii=False)}")
    out.print(_history_table(events))


def _history_table(events: Sequence[Event]) -> Table:
    table = Table(title="history")
    for name in ("seq", "type", "hlc", "actor", "payload"):
        table.add_column(name, overflow="fold", max_width=70 if name == "payload" else None)
    for e in events:
        payload = "(redacted)" if e.payload is None else json.dumps(e.payload, ensure_ascii=False)
        table.add_row(str(e.seq), e.type.value, str(e.hlc), e.actor, payload)
    return table


@app.command()
def forget(memory_id: Annotated[str, typer.Argument(metavar="ID")],
           data: DataOpt = _DEFAULT_DATA,
           reason: Annotated[str | None, typer.Option("--reason")] = None) -> None:
    """Forget a memory everywhere: projections, indexes, WAL and earlier event payloads."""
    with _memory(data) as mem:
        mem.forget(memory_id, reason=reason)
    out.print(f"forgot {memory_id}")


@app.command()
def tag(memory_id: Annotated[str, typer.Argument(metavar="ID")],
        add: Annotated[list[str] | None, typer.Option("--add", "-a")] = None,
        remove: Annotated[list[str] | None, typer.Option("--remove", "-r")] = None,
        data: DataOpt = _DEFAULT_DATA) -> None:
    """Add or remove tags on a memory."""
    with _memory(data) as mem:
        entry = mem.tag(memory_id, add=add or (), remove=remove or ())
    out.print(f"{entry.id} tags: {', '.join(entry.tags) or '(none)'}")


@app.command()
def rebuild(data: DataOpt = _DEFAULT_DATA) -> None:
    """Drop every projection and replay the event log into fresh ones."""
    with _memory(data) as mem:
        started = time.perf_counter()
        count = mem.rebuild()
    out.print(f"rebuilt {count} memories in {time.perf_counter() - started:.2f} s")


@app.command()
def reembed(
    embedder: Annotated[str, typer.Option("--embedder", help="minilm, local:PATH, "
                                          "openai:MODEL[@URL] or ollama:MODEL[@URL]")],
    data: DataOpt = _DEFAULT_DATA,
) -> None:
    """Switch the store to another embedding model; old vectors serve until it finishes."""
    from rich.progress import Progress

    with _memory(data) as mem, Progress(transient=True) as progress:
        task = progress.add_task("embedding", total=None)
        done = mem.reembed(embedder, progress=lambda n: progress.update(task, completed=n))
    out.print(f"embedded {done} texts with {embedder}; the store now uses it")


@app.command()
def verify(data: DataOpt = _DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """Walk the hash chain; exit 1 and name the first broken link if there is one."""
    with _memory(data) as mem:
        report = mem.verify()
    if as_json:
        _emit_json({"ok": report.ok, "checked": report.checked, "broken_at": report.broken_at,
                    "event_id": report.event_id, "problem": report.problem})
    elif report.ok:
        out.print(f"ok: {report.checked} events, chain intact")
    else:
        out.print(f"[red]broken[/red] at event #{report.broken_at} ({report.event_id}): "
                  f"{report.problem}; {report.checked} events before it are intact")
    if not report.ok:
        raise typer.Exit(1)


@app.command("export")
def export_(
    data: DataOpt = _DEFAULT_DATA,
    output: Annotated[Path | None, typer.Option("--out", "-o",
                                                help="File to write (default stdout).")] = None,
    parquet: Annotated[Path | None, typer.Option("--parquet",
                                                 help="Write the memories table as Parquet "
                                                      "to this file instead.")] = None,
) -> None:
    """Export the event log as JSONL (lossless), or the memories table as Parquet."""
    from engram.log.export import write_events, write_parquet

    with _memory(data) as mem:
        if parquet is not None:
            count = write_parquet(mem.list(limit=None), parquet)
            out.print(f"wrote {count} memories to {parquet}", highlight=False)
        elif output is None:
            write_events(mem.events(), sys.stdout)
        else:
            with output.open("w", encoding="utf-8") as fh:
                count = write_events(mem.events(), fh)
            out.print(f"wrote {count} events to {output}", highlight=False)


@app.command("import")
def import_(file: Annotated[Path, typer.Argument(help="A JSONL export.")],
            data: DataOpt = _DEFAULT_DATA) -> None:
    """Import an event export (all or nothing); already present events are skipped."""
    from engram.log.export import read_events

    if not file.is_file():
        _fail(f"FILE: {file} does not exist; give the path of a JSONL export")
    with _memory(data) as mem:
        events = read_events(file.read_bytes())
        added = mem.import_events(events)
    out.print(f"imported {added} events ({len(events) - added} already present)")


@app.command()
def stats(data: DataOpt = _DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """Counts by tier and type, events, and bytes on disk."""
    with _memory(data) as mem:
        numbers = mem.stats()
    if as_json:
        _emit_json(numbers)
        return
    table = Table(title="engram stats", show_header=False)
    for key, value in numbers.items():
        shown = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) \
            else str(value)
        table.add_row(key, shown)
    out.print(table)


@app.command()
def demo(data: DataOpt = _DEFAULT_DATA,
         budget: Annotated[int, typer.Option("--budget", help="Context token budget.")] = 400
         ) -> None:
    """Remember a bundled ten-week conversation, then show what Engram recalls from it."""
    from engram.cli.demo import load_sample, remember_sample

    sample = load_sample()
    with _memory(data) as mem:
        started = time.perf_counter()
        written = remember_sample(mem, sample)
        took = time.perf_counter() - started
        if written:
            out.print(f"remembered {written} turns over {len(sample.sessions)} sessions "
                      f"in {took:.2f} s → {mem.stats()['path']}")
        else:
            out.print(f"the sample is already in {mem.stats()['path']}; recalling from it")
        for q in sample.questions:
            hits = mem.search(q["question"], user_id=sample.user_id, limit=3)
            out.print(_hits_table(hits, f"{q['question']}  (expected: {q['expect']})"))
        question = sample.questions[0]["question"]
        out.rule(f"context for {question!r} (claude style, {budget} tokens)")
        out.print(mem.context(question, user_id=sample.user_id, budget_tokens=budget),
                  markup=False, highlight=False)


app.command()(chat)  # engram chat: in chat_cli.py


@app.command()
def maintain(data: DataOpt = _DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """Apply the tier rules now: promotions, expiries and recency decay."""
    with _memory(data) as mem:
        report = mem.maintain().to_dict()
    if as_json:
        _emit_json(report)
    else:
        out.print(", ".join(f"{k} {v}" for k, v in report.items()))


@app.command()
def feedback(memory_id: Annotated[str, typer.Argument(metavar="ID")],
             rating: Annotated[str, typer.Argument(help="good, bad or correction.")],
             correction: Annotated[str | None, typer.Argument(
                 help="The corrected text (with 'correction').")] = None,
             data: DataOpt = _DEFAULT_DATA) -> None:
    """Rate a memory; a correction replaces its text."""
    with _memory(data) as mem:
        entry = mem.feedback(memory_id, rating, correction)
    out.print(f"{entry.id}: confidence {entry.confidence.overall:.2f}, "
              f"training weight {entry.training_weight:g}")


config_app = typer.Typer(no_args_is_help=True, help="Tier and maintenance settings (TOML).")
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(data: DataOpt = _DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """Every setting with its value and what it does."""
    rows = config.show(config.load(config.path_for(data)))
    if as_json:
        _emit_json({key: value for key, value, _ in rows})
        return
    table = Table(title=str(config.path_for(data)))
    for name in ("setting", "value", "meaning"):
        table.add_column(name)
    for key, value, doc in rows:
        table.add_row(key, str(value), doc)
    out.print(table)


@config_app.command("set")
def config_set(key: Annotated[str, typer.Argument(help="e.g. short_term.ttl_hours")],
               value: Annotated[str, typer.Argument(help="e.g. 48")],
               data: DataOpt = _DEFAULT_DATA) -> None:
    """Change one setting (written to the store's engram.toml)."""
    path = config.path_for(data)
    try:
        policy = config.set_value(config.load(path), key, value)
    except EngramError as exc:
        _fail(str(exc))
    config.save(path, policy)
    out.print(f"{key} = {value}  ({path})")


register_server(app)  # serve, mcp, keys
app.command("migrate")(migrate_command)  # engram migrate --from A --to B: in migrate.py


def main() -> None:
    app()
