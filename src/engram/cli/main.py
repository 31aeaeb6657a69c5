"""The `engram` command: a thin shell over `Memory`, one module per group of commands.
Errors a user causes exit with code 2."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from engram.chat.terminal import chat
from engram.cli import compact, lifecycle, log, memories, replay
from engram.cli.entry import Cli
from engram.cli.ingest import ingest
from engram.cli.memories import hits_table
from engram.cli.options import (
    DataOpt,
    open_memory,
    out,
)
from engram.cli.plm import plm_app
from engram.cli.state import state_app
from engram.cli.sync import sync_app
from engram.cli.train import train_app
from engram.server.commands import register as register_server
from engram.store import DEFAULT_DATA

app = Cli(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
          help="Engram: long-term memory for LLMs, in one local store.")

for name, command in (
        ("init", memories.init), ("add", memories.add), ("search", memories.search),
        ("list", memories.list_), ("show", memories.show), ("forget", memories.forget),
        ("tag", memories.tag), ("feedback", memories.feedback),
        ("rebuild", log.rebuild), ("reembed", log.reembed), ("verify", log.verify),
        ("export", log.export_), ("import", log.import_), ("stats", log.stats),
        ("migrate", log.migrate), ("maintain", lifecycle.maintain), ("chat", chat),
        ("compact", compact.compact), ("concepts", compact.concepts),
        ("replay", replay.replay)):
    app.command(name)(command)
app.command("ingest")(ingest)
app.add_typer(lifecycle.config_app, name="config")
app.add_typer(sync_app, name="sync")
app.add_typer(state_app, name="state")
app.add_typer(train_app, name="train")
app.add_typer(plm_app, name="plm")
register_server(app)  # serve, mcp, keys


def demo(data: DataOpt = DEFAULT_DATA,
         budget: Annotated[int, typer.Option("--budget", help="Context token budget.")] = 400
         ) -> None:
    """Remember a bundled ten-week conversation, then show what Engram recalls from it."""
    from engram.cli.demo import load_sample, remember_sample

    sample = load_sample()
    with open_memory(data) as mem:
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
            out.print(hits_table(hits, f"{q['question']}  (expected: {q['expect']})"))
        question = sample.questions[0]["question"]
        out.rule(f"context for {question!r} (claude style, {budget} tokens)")
        out.print(mem.context(question, user_id=sample.user_id, budget_tokens=budget),
                  markup=False, highlight=False)


app.command("demo")(demo)


def main() -> None:
    app()  # Cli.__call__: one line and an exit code, never a traceback
