"""Commands on memories: add, search, list, show, tag, rate and forget them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.table import Table

from engram.cli.options import (
    AgentOpt,
    DataOpt,
    IdArg,
    JsonOpt,
    LimitOpt,
    OffsetOpt,
    OptUser,
    SessionOpt,
    SinceOpt,
    TagOpt,
    TierOpt,
    TypeOpt,
    UntilOpt,
    UserOpt,
    emit_json,
    fail,
    open_memory,
    out,
)
from engram.errors import InvalidInput
from engram.lifecycle import tiers
from engram.log.events import Event
from engram.model import MemoryEntry, to_json
from engram.query import Hit
from engram.store import DEFAULT_DATA
from engram.validate import DEFAULT_USER, check_offset


def memories_table(entries: Sequence[MemoryEntry], title: str) -> Table:
    table = Table(title=title, show_lines=False)
    for name in ("id", "when", "user", "type", "tier", "tags", "text"):
        table.add_column(name, overflow="fold", max_width=60 if name == "text" else None)
    for m in entries:
        table.add_row(m.id, m.occurred_at.strftime("%Y-%m-%d %H:%M"), m.user_id,
                      m.memory_type.value, m.tier.value, ", ".join(m.tags), m.content)
    return table


EXPLAINED = ("keyword", "vector", "session", "recency", "confidence")


def hits_table(hits: Sequence[Hit], title: str, explain: bool = False) -> Table:
    table = Table(title=title)
    columns = ["#", "score", *(EXPLAINED if explain else ()), "when", "id", "text"]
    for name in columns:
        table.add_column(name, overflow="fold", max_width=70 if name == "text" else None)
    for rank, h in enumerate(hits, start=1):
        parts = [f"{h.components.get(name, 0.0):.3f}" for name in EXPLAINED] if explain else []
        table.add_row(str(rank), f"{h.score:.3f}", *parts,
                      h.memory.occurred_at.strftime("%Y-%m-%d"), h.memory.id, h.memory.content)
    return table


def hit_json(hit: Hit) -> dict[str, Any]:
    return {"score": hit.score, "components": hit.components, "memory": hit.memory.to_dict()}


def init(data: DataOpt = DEFAULT_DATA) -> None:
    """Create an empty store (opening a store also creates or upgrades it)."""
    with open_memory(data) as mem:
        out.print(f"store ready at {mem.stats()['path']} (device {mem.store.device_id})")


def add(
    text: Annotated[str, typer.Argument(help="What to remember.")],
    data: DataOpt = DEFAULT_DATA, user: UserOpt = DEFAULT_USER, agent: AgentOpt = None,
    session: SessionOpt = None, tag: TagOpt = None,
    memory_type: Annotated[str, typer.Option(
        "--type", help="fact, preference, belief, skill, event or context.")] = "fact",
    tier: Annotated[str, typer.Option(
        "--tier", help="short_term, long_term or persistent.")] = "short_term",
    truth: Annotated[str, typer.Option("--truth", help="absolute, contextual, ...")] =
    "contextual",
    at: Annotated[str | None, typer.Option("--at", help="When it happened (ISO 8601).")] = None,
    meta: Annotated[str | None, typer.Option("--meta", help="Metadata as a JSON object.")] =
    None,
    as_json: JsonOpt = False,
) -> None:
    """Remember one text."""
    metadata = _parse_json_object(meta, "--meta") if meta else None
    with open_memory(data) as mem:
        entry = mem.add(text, user_id=user, agent_id=agent, session_id=session, tags=tag,
                        memory_type=memory_type, tier=tier, truth_category=truth, at=at,
                        metadata=metadata)
    if as_json:
        emit_json(entry.to_dict())
    else:
        out.print(entry.id)


def _parse_json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{option}: not valid JSON ({exc.msg}); pass an object like "
                         "'{\"key\": \"value\"}'")
    if not isinstance(value, dict):
        fail(f"{option}: expected a JSON object; pass one like '{{\"key\": 1}}'")
    return value


def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    data: DataOpt = DEFAULT_DATA, user: UserOpt = DEFAULT_USER, limit: LimitOpt = 10,
    agent: AgentOpt = None, session: SessionOpt = None, tag: TagOpt = None,
    memory_type: TypeOpt = None, tier: TierOpt = None, since: SinceOpt = None,
    until: UntilOpt = None, as_json: JsonOpt = False,
    explain: Annotated[bool, typer.Option("--explain", help="Show what each score is made of.")]
    = False,
) -> None:
    """Recall a user's memories that best match QUERY (keyword + vector, fused)."""
    with open_memory(data) as mem:
        hits = mem.search(query, user_id=user, limit=limit, agent_id=agent, session_id=session,
                          tags=tag, memory_type=memory_type, tier=tier, since=since,
                          until=until)
    if as_json:
        emit_json([hit_json(h) for h in hits])
    else:
        out.print(hits_table(hits, f"{len(hits)} memories for {query!r}", explain))


def list_(
    data: DataOpt = DEFAULT_DATA, user: OptUser = None, agent: AgentOpt = None,
    session: SessionOpt = None, tag: TagOpt = None, memory_type: TypeOpt = None,
    tier: TierOpt = None, since: SinceOpt = None, until: UntilOpt = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    status: Annotated[str, typer.Option(
        "--status", help="active, superseded, expired or all.")] = "active",
    as_json: JsonOpt = False,
) -> None:
    """List memories, newest first, with filters."""
    try:
        check_offset(offset)
    except InvalidInput as exc:
        fail(str(exc))
    with open_memory(data) as mem:
        entries = mem.list(user_id=user, agent_id=agent, session_id=session, tags=tag,
                           memory_type=memory_type, tier=tier, since=since, until=until,
                           status=status, limit=limit, offset=offset)
    if as_json:
        emit_json([e.to_dict() for e in entries])
    else:
        out.print(memories_table(entries, f"{len(entries)} memories"))


def show(memory_id: IdArg, data: DataOpt = DEFAULT_DATA,
         as_json: JsonOpt = False) -> None:
    """Show one memory and every event in its history."""
    with open_memory(data) as mem:
        entry = mem.get(memory_id)
        events = mem.history(memory_id)
        why = tiers.why(entry, events, mem.policy)
    if as_json:
        emit_json({"memory": entry.to_dict(), "why": why,
                    "history": [e.to_dict() for e in events]})
        return
    out.print(f"[bold]{entry.id}[/bold]  {entry.content}")
    out.print(f"  [italic]{why}[/italic]", highlight=False)
    details = {k: v for k, v in entry.to_dict().items() if k not in ("id", "content")}
    for key, value in details.items():
        out.print(f"  {key}: {json.dumps(to_json(value), ensure_ascii=False)}")
    out.print(history_table(events))


def history_table(events: Sequence[Event]) -> Table:
    table = Table(title="history")
    for name in ("seq", "type", "hlc", "actor", "payload"):
        table.add_column(name, overflow="fold", max_width=70 if name == "payload" else None)
    for e in events:
        payload = "(redacted)" if e.payload is None else json.dumps(e.payload, ensure_ascii=False)
        table.add_row(str(e.seq), e.type.value, str(e.hlc), e.actor, payload)
    return table


def forget(memory_id: IdArg,
           data: DataOpt = DEFAULT_DATA,
           reason: Annotated[str | None, typer.Option(
               "--reason", help="Why, kept in the log.")] = None) -> None:
    """Forget a memory everywhere: projections, indexes, WAL and earlier event payloads."""
    with open_memory(data) as mem:
        mem.forget(memory_id, reason=reason)
    out.print(f"forgot {memory_id}")


def tag(memory_id: IdArg,
        add: Annotated[list[str] | None, typer.Option(
            "--add", "-a", help="Tag to add (repeatable).")] = None,
        remove: Annotated[list[str] | None, typer.Option(
            "--remove", "-r", help="Tag to remove (repeatable).")] = None,
        data: DataOpt = DEFAULT_DATA) -> None:
    """Add or remove tags on a memory."""
    with open_memory(data) as mem:
        entry = mem.tag(memory_id, add=add or (), remove=remove or ())
    out.print(f"{entry.id} tags: {', '.join(entry.tags) or '(none)'}")


def feedback(memory_id: IdArg,
             rating: Annotated[str, typer.Argument(help="good, bad or correction.")],
             correction: Annotated[str | None, typer.Argument(
                 help="The corrected text (with 'correction').")] = None,
             data: DataOpt = DEFAULT_DATA) -> None:
    """Rate a memory; a correction replaces its text."""
    with open_memory(data) as mem:
        entry = mem.feedback(memory_id, rating, correction)
    out.print(f"{entry.id}: confidence {entry.confidence.overall:.2f}, "
              f"training weight {entry.training_weight:g}")
