"""The FastAPI application: the gate (body limit, authentication), errors as JSON naming the
field and the fix, and the parts mounted together (REST, proxy, MCP, dashboard)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engram.errors import EngramError, InvalidInput, NotFound, StoreError
from engram.llm.base import ProviderError
from engram.memory import Memory
from engram.server.access import KEY_COOKIE, Forbidden, Unauthorized
from engram.server.service import ServerConfig, Service

OPEN_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect",
                        "/dashboard/login"})
OPEN_PREFIXES = ("/dashboard/static/",)


def error_body(status: int, field: str, problem: str, fix: str) -> dict[str, Any]:
    """One error shape for the REST API and the OpenAI proxy: OpenAI's, plus field and fix."""
    kind = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
            404: "not_found_error", 413: "invalid_request_error",
            422: "invalid_request_error"}.get(status, "api_error")
    return {"error": {"message": f"{field}: {problem}; {fix}", "type": kind, "param": field,
                      "code": None, "field": field, "problem": problem, "fix": fix}}


def error_response(status: int, field: str, problem: str, fix: str) -> JSONResponse:
    return JSONResponse(error_body(status, field, problem, fix), status_code=status)


class Gate:
    """ASGI middleware: bodies over the limit get 413, then every request is authenticated
    (the principal lands in `request.state.principal`)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        body = await self._read_body(headers, receive)
        if body is None:
            await self._refuse(scope, receive, send, error_response(
                413, "body", f"is larger than {self.max_body_bytes} bytes",
                "send a smaller request (split it) or start the server with a larger "
                "--max-body"))
            return
        path = scope["path"]
        if path not in OPEN_PATHS and not path.startswith(OPEN_PREFIXES):
            svc: Service = scope["app"].state.service
            client = scope.get("client")
            try:
                who = await run_in_threadpool(svc.authenticate, _token(headers),
                                              client[0] if client else None)
            except Unauthorized as exc:
                refusal: Response = error_response(401, exc.field, exc.problem, exc.fix)
                if path.startswith("/dashboard") and scope["method"] == "GET":
                    refusal = RedirectResponse("/dashboard/login", status_code=303)
                await self._refuse(scope, receive, send, refusal)
                return
            scope.setdefault("state", {})["principal"] = who
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes | None:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return None
        if not declared and "transfer-encoding" not in headers:
            return b""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, response: Response) -> None:
        await response(scope, receive, send)


def _token(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    if headers.get("x-api-key"):
        return headers["x-api-key"].strip()
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == KEY_COOKIE and value:
            return value
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body the gate already read, then the real stream
    (so long-lived requests still see the client disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _install_errors(app: FastAPI) -> None:
    statuses: list[tuple[type[EngramError], int]] = [
        (Unauthorized, 401), (Forbidden, 403), (InvalidInput, 422)]

    for cls, status in statuses:
        def handler(request: Request, exc: Exception, status: int = status) -> JSONResponse:
            return error_response(status, getattr(exc, "field", "request"),
                                  getattr(exc, "problem", str(exc)), getattr(exc, "fix", ""))
        app.add_exception_handler(cls, handler)

    def not_found(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, NotFound)
        return error_response(404, "id", f"no memory {exc.memory_id!r} that this key can see",
                              "list ids with GET /memories")

    def upstream(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProviderError)
        return error_response(502, "upstream", f"{exc.url} {exc.problem}", exc.fix)

    def store(request: Request, exc: Exception) -> JSONResponse:
        return error_response(503, "store", str(exc), "see the server's log")

    def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc) or "body"
        if first.get("type") == "json_invalid":
            return error_response(400, "body", "is not valid JSON",
                                  "send a JSON object with Content-Type: application/json")
        problem = str(first.get("msg", "is not valid"))
        return error_response(422, field, problem[0].lower() + problem[1:],
                              "see /openapi.json for the field's type and an example")

    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(ProviderError, upstream)
    app.add_exception_handler(StoreError, store)
    app.add_exception_handler(RequestValidationError, invalid)


async def _maintain_periodically(svc: Service, every_s: float) -> None:
    """Promotions, expiries and decay once they are due, off the request path."""
    while True:
        await asyncio.sleep(every_s)
        await run_in_threadpool(svc.maintain_if_due)


def create_app(config: ServerConfig, memory: Memory | None = None) -> FastAPI:
    """The service over `memory` (one connection for everything), or over the store at
    `config.data`, opened at startup with `config.readers` extra connections for reads."""
    from engram.server import dashboard, proxy, routes, sync_routes, train_dashboard
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
    app.add_middleware(Gate, max_body_bytes=config.max_body_bytes)
    _install_errors(app)
    app.include_router(routes.router)
    app.include_router(sync_routes.router)
    app.include_router(proxy.router)
    app.include_router(dashboard.router)
    app.include_router(train_dashboard.router)  # training candidates (issue 16)
    app.mount("/dashboard/static", dashboard.static_files(), name="static")
    mcp_app = mcp.streamable_http_app(streamable_http_path="/mcp", host=config.host)
    app.router.routes.extend(mcp_app.routes)
    return app
