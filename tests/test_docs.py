"""Docs that cannot drift: every `engram` command and option has help text and is in the docs,
and docs/cli.md is the reference the command tree generates.

Regenerate the reference with `make docs-cli` (or `python tests/test_docs.py`).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main

from engram.cli.main import app

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "cli.md"


def commands(command: Any = None, path: tuple[str, ...] = ("engram",)
             ) -> Iterator[tuple[str, Any]]:
    """Every visible command and group of the tree, depth first, as ("engram a b", command)."""
    command = command if command is not None else typer.main.get_command(app)
    yield " ".join(path), command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not sub.hidden:
            yield from commands(sub, (*path, name))


def options(command: Any) -> list[Any]:
    return [p for p in command.params if p.param_type_name == "option" and not p.hidden]


def arguments(command: Any) -> list[Any]:
    return [p for p in command.params if p.param_type_name == "argument"]


def help_of(thing: Any) -> str:
    return inspect.cleandoc(thing.help or getattr(thing, "short_help", None) or "")


def flags(option: Any) -> str:
    return ", ".join(f"`{flag}`" for flag in [*option.opts, *option.secondary_opts])


def default_of(option: Any) -> str:
    value = option.default
    if option.is_flag or value is None or callable(value) or value == ():
        return ""
    if isinstance(value, str | int | float | Path):
        return f"`{value}`"
    return ""


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def usage(path: str, command: Any) -> str:
    pieces = [path]
    if getattr(command, "commands", None):
        pieces.append("COMMAND")
    elif options(command):
        pieces.append("[OPTIONS]")
    for arg in arguments(command):
        name = arg.name.upper()
        pieces.append(name if arg.required else f"[{name}]")
    return " ".join(pieces)


def reference() -> str:
    """docs/cli.md as the command tree describes it."""
    lines = ["# The `engram` command", "",
             "Every command and option, generated from the command tree by `make docs-cli`",
             "(tests/test_docs.py fails when this file is out of date). `engram COMMAND --help`",
             "prints the same. The store is chosen by `--data` (a directory or a `postgresql://`",
             "URL), else the `ENGRAM_DATA` environment variable, else `./engram-data`.", ""]
    for path, command in commands():
        lines += [f"## {path}", "", help_of(command), "", f"Usage: `{usage(path, command)}`", ""]
        subs = [(name, sub) for name, sub in commands(command, tuple(path.split()))
                if name.count(" ") == path.count(" ") + 1]
        if subs:
            lines += ["| Command | What it does |", "| --- | --- |"]
            lines += [f"| `{name}` | {cell(help_of(sub).split(chr(10) * 2)[0])} |"
                      for name, sub in subs]
            lines.append("")
        rows = [f"| `{a.name.upper()}` | {cell(getattr(a, 'help', None) or '')} | "
                f"{'required' if a.required else ''} |" for a in arguments(command)]
        rows += [f"| {flags(o)} | {cell(o.help or '')} | {default_of(o)} |"
                 for o in options(command)]
        if rows:
            lines += ["| Argument or option | What it does | Default |", "| --- | --- | --- |",
                      *rows, ""]
    return "\n".join(lines).rstrip() + "\n"


def documentation() -> str:
    return "\n".join(p.read_text() for p in [ROOT / "README.md",
                                             *sorted((ROOT / "docs").glob("*.md"))])


def test_every_command_and_option_has_help_text() -> None:
    missing = [path for path, command in commands() if not help_of(command)]
    missing += [f"{path} {option.opts[0]}" for path, command in commands()
                for option in options(command) if not (option.help or "").strip()]
    assert not missing, "give these a help text (a docstring, or help= on the option):\n" + \
        "\n".join(missing)


def test_every_command_and_option_is_in_the_docs() -> None:
    docs = documentation()
    missing = [path for path, _ in commands() if f"{path}" not in docs]
    missing += [f"{path} {flag}" for path, command in commands() for option in options(command)
                for flag in option.opts if flag.startswith("--") and f"`{flag}`" not in docs]
    assert not missing, "not in README.md or docs/*.md (run `make docs-cli`):\n" + \
        "\n".join(missing)


def test_the_cli_reference_is_current() -> None:
    assert REFERENCE.exists(), "docs/cli.md is missing: run `make docs-cli`"
    assert REFERENCE.read_text() == reference(), \
        "docs/cli.md is out of date with the command tree: run `make docs-cli`"


if __name__ == "__main__":
    REFERENCE.write_text(reference())
    print(f"wrote {REFERENCE.relative_to(ROOT)}", file=sys.stderr)
