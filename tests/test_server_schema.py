"""Schemathesis against /openapi.json: generated requests (valid and invalid) to a live server
on 127.0.0.1 never get a 5xx. Example counts are kept modest so the suite stays quick."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from engram.memory import Memory
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.service import ServerConfig

if TYPE_CHECKING:  # a typing-only alias in schemathesis: Case[OpenApiOperation]
    from schemathesis.specs.openapi.schemas import OpenApiCase

schema = schemathesis.openapi.from_dict(create_app(ServerConfig()).openapi())
EXAMPLES = int(os.environ.get("ENGRAM_SCHEMA_EXAMPLES", "6"))  # per operation; 60 found none


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("schema") / "store"
    mem = Memory(data, embedder=None)
    mem.add("Alice adopted a puppy named Oscar", user_id="default")
    with serving(create_app(ServerConfig(data=data), mem)) as url:
        yield url


def test_the_schema_has_examples() -> None:
    spec = create_app(ServerConfig()).openapi()
    body = spec["components"]["schemas"]["MemoryCreate"]
    assert body["examples"][0]["text"]
    assert spec["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"][
        "application/json"]["example"]["messages"]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: OpenApiCase, live: str) -> None:
    response = case.call(base_url=live)
    case.validate_response(response, checks=[not_a_server_error])
