"""How `engram` runs a command: whatever goes wrong comes out as one line on stderr and an
exit code (2: the input, 1: the store or the system), never a traceback. ENGRAM_DEBUG=1
shows the traceback of an unexpected error."""

from __future__ import annotations

import os
import re
import sqlite3
import sys
import traceback
from collections.abc import Sequence

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer vendors click

from engram.errors import EngramError, StoreError

_SURROGATE = re.compile("[\ud800-\udfff]")


class Cli(typer.Typer):
    """The `engram` Typer app, run through `run` (the console script and `python -m engram`
    call the app itself)."""

    def __call__(self, args: Sequence[str] | None = None, prog_name: str | None = None,
                 **_: object) -> None:
        sys.exit(run(self, list(sys.argv[1:] if args is None else args), prog_name))


def run(app: typer.Typer, args: list[str], prog_name: str | None = "engram") -> int:
    """Run `engram ARGS`; the exit code."""
    for i, arg in enumerate(args, start=1):
        if _SURROGATE.search(arg):
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            return _say(f"argument {i} ({shown!r}) is not valid UTF-8; pass text in the "
                        "terminal's encoding (UTF-8)", 2)
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name=prog_name or "engram",
                              standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        return _say("interrupted", 130)
    except NoArgsIsHelpError as exc:
        sys.stdout.write(exc.format_message() + "\n")
        return 2
    except UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        return _say(" ".join(exc.format_message().split()) + hint, 2)
    except typer.TyperException as exc:
        return _say(" ".join(exc.format_message().split()), exc.exit_code)
    except EngramError as exc:
        return _say(str(exc), 1 if isinstance(exc, StoreError) else 2)
    except KeyboardInterrupt:
        return _say("interrupted", 130)
    except (OSError, sqlite3.Error) as exc:
        return _say(f"{exc}; check the paths and permissions given", 1)
    except Exception as exc:  # the last net: one line, the traceback on request
        if os.environ.get("ENGRAM_DEBUG"):
            traceback.print_exc()
        return _say(f"unexpected {type(exc).__name__}: {exc} (run with ENGRAM_DEBUG=1 for "
                    "the traceback, and report it)", 1)
    return result if isinstance(result, int) else 0


def _say(message: str, code: int) -> int:
    sys.stderr.write(f"error: {message}\n")
    return code
