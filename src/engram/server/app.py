"""The FastAPI application: the gate (`gate`: names, origins, bodies, keys), errors in one
shape (`problems`), and the parts mounted together (REST, proxy, MCP, dashboard)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from engram.memory import Memory
from engram.server import problems
from engram.server.gate import Gate, allowed_hosts
from engram.server.metrics import Instrument
from engram.server.service import ServerConfig, Service


async def _maintain_periodically(svc: Service, every_s: float) -> None:
    """Promotions, expiries and decay once they are due, off the request path."""
    while True:
        await asyncio.sleep(every_s)
        await run_in_threadpool(svc.maintain_if_due)


def create_app(config: ServerConfig, memory: Memory | None = None) -> FastAPI:
    """The service over `memory` (one connection for everything), or over the store at
    `config.data`, opened at startup with `config.readers` extra connections for reads."""
    from engram.server import dashboard, probes, proxy, routes, sync_routes, train_dashboard
    from engram.server.mcp import build_mcp

    mcp = build_mcp()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if memory is None:
            svc = Service(Memory(config.data), config,
                          [Memory(config.data) for _ in range(config.readers)])
        else:
            svc = Service(memory, config)
        app.state.service = svc
        app.state.upstream = proxy.upstream_of(config)
        upkeep = asyncio.create_task(_maintain_periodically(svc, config.maintenance_check_s))
        try:
            async with mcp.session_manager.run():
                yield
        finally:
            upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upkeep
            if app.state.upstream is not None:
                await app.state.upstream.aclose()
            svc.close()

    app = FastAPI(title="Engram", version="0.1.0", lifespan=lifespan,
                  description="Long-term memory for LLMs: REST API, OpenAI-compatible memory "
                  "proxy (/v1), MCP (/mcp) and a dashboard (/dashboard). Send "
                  "`Authorization: Bearer egm_…`; requests from 127.0.0.1 need no key while "
                  "the store has none.")
    app.add_middleware(Gate, max_body_bytes=config.max_body_bytes,
                       hosts=allowed_hosts(config.host, config.allowed_hosts))
    app.add_middleware(Instrument)  # outermost: the gate's refusals are counted too
    problems.install(app)
    app.include_router(routes.router)
    app.include_router(probes.router)
    app.include_router(sync_routes.router)
    app.include_router(proxy.router)
    dashboard.install(app)
    app.include_router(train_dashboard.router)  # training candidates (issue 16)
    mcp_app = mcp.streamable_http_app(streamable_http_path="/mcp", host=config.host)
    app.router.routes.extend(mcp_app.routes)
    return app


CONFIG_ENV = "ENGRAM_SERVE_CONFIG"  # how `engram serve --workers N` hands each worker its config


def from_environment() -> FastAPI:
    """The app of one worker of `engram serve --workers N` (uvicorn's factory): the config
    the parent wrote to ENGRAM_SERVE_CONFIG as JSON."""
    fields = json.loads(os.environ[CONFIG_ENV])
    fields["allowed_hosts"] = tuple(fields.get("allowed_hosts", ()))
    return create_app(ServerConfig(**fields))
