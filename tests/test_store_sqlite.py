"""Every store contract on the embedded SQLite store (a directory per store). What only the
SQLite file has (its usearch graph files, its keyword query plans, its migrations) is tested
beside the feature, on SQLite alone."""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest

from store_contract import Backend, NewStore, StoreContract, directories
from test_concurrent_writers import ConcurrentWritersContract
from test_consolidation import ConsolidationContract
from test_memory import MemoryContract
from test_recall import RecallContract
from test_server import ServerContract
from test_server_auth import ServerAuthContract
from test_tiers import TiersContract


class SQLite(Backend):
    name = "sqlite"

    def locations(self, request: pytest.FixtureRequest) -> AbstractContextManager[NewStore]:
        return directories(request.getfixturevalue("tmp_path"))


class TestStore(SQLite, StoreContract): ...


class TestMemory(SQLite, MemoryContract): ...


class TestRecall(SQLite, RecallContract): ...


class TestConsolidation(SQLite, ConsolidationContract): ...


class TestTiers(SQLite, TiersContract): ...


class TestServer(SQLite, ServerContract): ...


class TestServerAuth(SQLite, ServerAuthContract): ...


class TestConcurrentWriters(SQLite, ConcurrentWritersContract): ...
