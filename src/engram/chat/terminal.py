"""`engram chat`: the terminal around `engram.chat.session.Chat`. Rich writes, plain `input()` reads
(so it works in any terminal or pseudo-terminal); everything else lives in `chat.py`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from engram.chat.session import Chat, Command, Outcome, load_model, parse
from engram.cli.options import DataOpt
from engram.errors import EngramError
from engram.llm import Provider
from engram.memory import Memory
from engram.model import MemoryEntry
from engram.store import DEFAULT_DATA
from engram.validate import DEFAULT_USER

PROMPT = "you> "


def chat(
    model: Annotated[str | None, typer.Option(
        "--model", "-m", envvar="ENGRAM_MODEL",
        help="KIND:MODEL or KIND:MODEL@URL, e.g. ollama:phi3 or openai:gpt-4o-mini "
             "(env ENGRAM_MODEL).")]
    = None,
    user: Annotated[str, typer.Option("--user", "-u", help="Whose memory.")] = DEFAULT_USER,
    session: Annotated[str | None, typer.Option(
        "--session", help="Resume this conversation (default: a new one).")] = None,
    data: DataOpt = DEFAULT_DATA,
    budget: Annotated[int, typer.Option("--budget", help="Context token budget per turn.")]
    = 2000,
    route: Annotated[str | None, typer.Option(
        "--route", help="Send each message to an edge or a laptop model by how hard it looks, "
                        "the other when one is down: edge=SPEC,laptop=SPEC[,threshold=0.5]"
                        "[,timeout=S].")] = None,
    extractive: Annotated[bool, typer.Option(
        "--extractive-summaries",
        help="Summarise turns older than the window from their first sentences instead of "
             "asking the model (one extra model call every 10 turns).")] = False,
) -> None:
    """Chat with a model that remembers: recall, context, answer, and the turn remembered."""
    console = Console(highlight=False)
    try:
        provider = load_model(f"route:{route}" if route else model or "", data)
        mem = Memory(data)
    except EngramError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(2) from None
    try:
        conversation = Chat(mem, provider, user_id=user, budget_tokens=budget,
                            model_summaries=not extractive,
                            load=lambda spec: load_model(spec, data))
        opening = (conversation.resume(session) if session
                   else f"new session {conversation.session_id}")
        console.print(f"[bold]engram chat[/bold] · {provider.name} · user {user} · {opening}"
                      " · /help for commands")
        _loop(conversation, console)
    except EngramError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise typer.Exit(2) from None
    finally:
        mem.close()
    console.print(f"bye · resume with --session {conversation.session_id}")


def _loop(conversation: Chat, console: Console) -> None:
    while True:
        try:
            line = input(PROMPT)
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        try:
            parsed = parse(line)
            if isinstance(parsed, Command):
                outcome = conversation.run(parsed)
                if outcome.quit:
                    return
                _show(outcome, console)
            elif parsed:
                _answer(conversation, parsed, console)
        except EngramError as exc:
            console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)


def _answer(conversation: Chat, text: str, console: Console) -> None:
    """Stream the answer as it is written; Ctrl-C stops it (and it is not remembered)."""
    provider: Provider = conversation.provider
    console.print(f"[cyan]{provider.name}>[/cyan] ", end="")
    try:
        for piece in conversation.send(text):
            console.print(piece, end="", markup=False, soft_wrap=True)
        if conversation.notice:
            console.print(f"\n[dim]{escape(conversation.notice)}[/dim]", end="")
    except KeyboardInterrupt:
        console.print(" [dim](stopped; not remembered)[/dim]")
        return
    except EngramError:
        console.print()
        raise
    console.print()


def _show(outcome: Outcome, console: Console) -> None:
    if outcome.message:
        console.print(outcome.message, markup=False, soft_wrap=True)
    if outcome.memories:
        console.print(_table(outcome.memories, outcome.attention))


def _table(entries: Sequence[MemoryEntry], attention: dict[str, float] | None = None) -> Table:
    table = Table(show_lines=False)
    columns = ("id", "when", "type", "text", *(("attention",) if attention is not None else ()))
    for name in columns:
        table.add_column(name, overflow="fold", max_width=70 if name == "text" else None)
    for m in entries:
        share = () if attention is None else (f"{attention.get(m.id, 0.0):.1%}",)
        table.add_row(m.id, m.occurred_at.strftime("%Y-%m-%d"), m.memory_type.value, m.content,
                      *share)
    return table
