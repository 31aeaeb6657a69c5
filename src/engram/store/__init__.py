"""Stores: `open_store` picks the backend from the location (a directory or a PostgreSQL URL)."""

from __future__ import annotations

import re
from pathlib import Path

from engram.clock import Clock
from engram.errors import InvalidInput
from engram.store.base import Store

URL_SCHEMES = ("postgresql://", "postgres://")
DEFAULT_DATA = "./engram-data"  # the store when neither --data nor ENGRAM_DATA names one


def is_url(location: str | Path) -> bool:
    return str(location).startswith(URL_SCHEMES)


def check_location(location: str | Path, name: str = "data") -> None:
    """Refuse a URL of a database Engram has no store for (a `mysql://x` would otherwise
    become a directory named `mysql:`)."""
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", str(location))
    if scheme and not is_url(location):
        raise InvalidInput(name, f"{scheme.group(1)}:// is not a store Engram can open",
                           "use a directory, or a postgresql:// URL")


def open_store(location: str | Path, *, clock: Clock, device_id: str | None = None,
               synchronous: str = "NORMAL") -> Store:
    """The embedded SQLite store in a directory, or the PostgreSQL store at a
    `postgresql://` URL (imported lazily: it needs the `postgres` extra)."""
    check_location(location)
    if not is_url(location):
        from engram.store.sqlite.store import SQLiteStore

        return SQLiteStore(location, clock=clock, device_id=device_id, synchronous=synchronous)
    if synchronous.upper() != "NORMAL":
        raise InvalidInput("synchronous", "applies to the embedded SQLite store only",
                           "set synchronous_commit on the PostgreSQL server instead")
    try:
        from engram.store.postgres.store import PostgresStore
    except ImportError as exc:
        raise InvalidInput("path", f"a PostgreSQL store needs psycopg ({exc.name} is missing)",
                           "pip install 'engram-memory[postgres]'") from None
    return PostgresStore(str(location), clock=clock, device_id=device_id)
