"""Commands on the tiers: run maintenance now, show and change the policy."""

from __future__ import annotations

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
from engram.lifecycle import config
from engram.store import DEFAULT_DATA


def maintain(data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """Apply the tier rules now: promotions, expiries and recency decay."""
    with open_memory(data) as mem:
        report = mem.maintain().to_dict()
    if as_json:
        emit_json(report)
    else:
        out.print(", ".join(f"{k} {v}" for k, v in report.items()))


config_app = typer.Typer(no_args_is_help=True, help="Tier and maintenance settings (TOML).")


@config_app.command("show")
def config_show(data: DataOpt = DEFAULT_DATA, as_json: JsonOpt = False) -> None:
    """Every setting with its value and what it does."""
    rows = config.show(config.load(config.path_for(data)))
    if as_json:
        emit_json({key: value for key, value, _ in rows})
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
               data: DataOpt = DEFAULT_DATA) -> None:
    """Change one setting (written to the store's engram.toml)."""
    path = config.path_for(data)
    try:
        policy = config.set_value(config.load(path), key, value)
    except EngramError as exc:
        fail(str(exc))
    config.save(path, policy)
    out.print(f"{key} = {value}  ({path})")


