"""Schemathesis against /openapi.json with every check it has, not only "no 5xx": generated
valid requests are accepted, invalid ones refused with a documented status, every answer
(errors included) matches its documented schema and content type, unknown methods get 405
with `Allow`. A live server on 127.0.0.1 with a proxy upstream (the OpenAI double). Example
counts are kept small so the suite stays quick (ENGRAM_SCHEMA_EXAMPLES raises them)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, get_args

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from engram.llm.openai_double import OpenAIDouble
from engram.memory import Memory
from engram.model import Kind, Tier, Truth
from engram.server import schemas
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.service import ServerConfig

if TYPE_CHECKING:  # a typing-only alias in schemathesis: Case[OpenApiOperation]
    from schemathesis.specs.openapi.schemas import OpenApiCase

EXAMPLES = int(os.environ.get("ENGRAM_SCHEMA_EXAMPLES", "5"))  # per operation and phase
# 413 is a refusal too: a generated batch of 10,000 events is larger than --max-body.
REFUSED = [400, 401, 403, 404, 405, 409, 413, 415, 422, 429]
schema = schemathesis.openapi.from_dict(create_app(ServerConfig()).openapi(),
                                        config=SchemathesisConfig.from_dict({"checks": {
    "negative_data_rejection": {"expected-statuses": REFUSED},
    "positive_data_acceptance": {"expected-statuses": ["2xx", 404, 409, 413]}}}))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("schema") / "store"
    mem = Memory(data, embedder=None)
    mem.add("Alice adopted a puppy named Oscar", user_id="default")
    with OpenAIDouble(model="double-1") as upstream, serving(create_app(
            ServerConfig(data=data, upstream=upstream.base_url), mem)) as url:
        yield url


def test_the_schema_has_examples() -> None:
    spec = create_app(ServerConfig()).openapi()
    body = spec["components"]["schemas"]["MemoryCreate"]
    assert body["examples"][0]["text"]
    assert spec["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"][
        "application/json"]["example"]["messages"]


def test_the_schema_enums_are_the_models() -> None:
    for literal, enum in ((schemas.MemoryType, Kind), (schemas.TierName, Tier),
                          (schemas.TruthName, Truth)):
        assert set(get_args(literal)) == {m.value for m in enum}


def test_every_error_status_is_documented_in_one_shape() -> None:
    spec = create_app(ServerConfig()).openapi()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            documented = set(operation["responses"])
            assert "421" in documented, (path, method)
            if path not in ("/healthz", "/readyz"):  # open, and without a body
                assert {"400", "401", "403", "413", "415", "422"} <= documented, path
            if "{memory_id}" in path:
                assert "404" in documented
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"]["$ref"].endswith(
                        "/ErrorBody")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_schema(case: OpenApiCase, live: str) -> None:
    case.call_and_validate(base_url=live)


def test_pushed_event_types_are_the_logs() -> None:
    from engram.log.events import EventType
    from engram.server.sync_routes import EventKind

    assert set(get_args(EventKind)) == {t.value for t in EventType}
