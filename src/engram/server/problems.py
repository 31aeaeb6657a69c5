"""One error shape for every answer that is not a success: OpenAI's `error` object (so OpenAI
clients show it), plus `field`, `problem` and `fix`. Engram's own errors, FastAPI's and
Starlette's (404 for an unknown path, 405, an unreadable body) all come out in it, and
`RESPONSES` documents it in /openapi.json for every status a route can answer."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from engram.errors import EngramError, InvalidInput, NotFound, StoreError
from engram.llm.base import ProviderError, ProviderUnreachable
from engram.server.access import Forbidden, Unauthorized

log = logging.getLogger("engram.server")
KINDS = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
         429: "rate_limit_error"}  # every other 4xx: invalid_request_error


class Malformed(InvalidInput):
    """A body that cannot be read at all (not JSON, not UTF-8, nested too deeply): 400."""


class UpstreamTimeout(ProviderUnreachable):
    """The upstream took the request but gave no answer in time: 504."""


class Conflict(InvalidInput):
    """Well-formed input that does not fit the store's state (a pushed batch whose events do
    not verify against its log): 409."""


class Problem(BaseModel):
    message: str = Field(description="`field: problem; fix` in one line")
    type: str = Field(description="OpenAI's error type, e.g. invalid_request_error")
    param: str | None
    code: str | None
    field: str = Field(description="What was wrong: a body field, a parameter, or a header")
    problem: str
    fix: str


class ErrorBody(BaseModel):
    error: Problem


def error_body(status: int, field: str, problem: str, fix: str) -> dict[str, Any]:
    kind = KINDS.get(status, "invalid_request_error" if status < 500 else "api_error")
    return {"error": {"message": f"{field}: {problem}; {fix}", "type": kind, "param": field,
                      "code": None, "field": field, "problem": problem, "fix": fix}}


def error_response(status: int, field: str, problem: str, fix: str,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, field, problem, fix), status_code=status,
                        headers=headers)


def _documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    meaning = {400: "The body is not JSON (or not UTF-8, or nested too deeply)",
               401: "No usable API key", 403: "The key lacks a scope, or the request came "
               "from another site", 404: "No such memory (or not one this key can see)",
               409: "The events do not fit this store's log (nothing was applied)",
               413: "The body is larger than --max-body",
               415: "A write whose body is not application/json",
               421: "The Host header names no address this server answers to",
               422: "A field is invalid (the error names it and the fix)",
               429: "Over this key's --rate-limit (see Retry-After)",
               500: "A bug: the server failed unexpectedly (see its log)",
               502: "The upstream failed, or answered with something that is not JSON",
               503: "The store cannot be used now",
               504: "The upstream gave no answer within --upstream-timeout"}
    return {s: {"model": ErrorBody, "description": meaning[s]} for s in statuses}


# What any route may answer (the gate's refusals), then what routes of a kind add.
RESPONSES = _documented(400, 401, 403, 413, 415, 421, 422, 429, 503)
BY_ID = _documented(404)
CONFLICT = _documented(409)
UPSTREAM = _documented(502, 504)


def install(app: FastAPI) -> None:
    """Every error as `error_response`: Engram's by their kind, FastAPI's validation errors
    as 422 (400 when the body is no JSON at all), Starlette's HTTP errors by their status."""
    statuses: list[tuple[type[EngramError], int]] = [
        (Unauthorized, 401), (Forbidden, 403), (InvalidInput, 422), (Malformed, 400),
        (Conflict, 409)]

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
        status = 504 if isinstance(exc, UpstreamTimeout) else 502
        return error_response(status, "upstream", f"{exc.url} {exc.problem}", exc.fix)

    def store(request: Request, exc: Exception) -> JSONResponse:
        return error_response(503, "store", str(exc), "see the server's log")

    def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":
            return error_response(400, "body", "is not valid JSON",
                                  "send a JSON object with Content-Type: application/json")
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        problem = str(first.get("msg", "is not valid"))
        return error_response(422, ".".join(loc) or "body", problem[0].lower() + problem[1:],
                              "see /openapi.json for the field's type and an example")

    def http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only its first route's
            headers["Allow"] = _methods(request, headers.get("Allow", ""))
        field, problem, fix = {
            404: ("path", f"{request.url.path} is not a route of this server",
                  "see /openapi.json for the routes (an id holds no '/')"),
            405: ("method", f"{request.method} is not allowed on {request.url.path}",
                  f"use {headers.get('Allow', 'another method')}"),
            400: ("body", "could not be read", "send a JSON object in UTF-8"),
        }.get(exc.status_code, ("request", str(exc.detail), "see /openapi.json"))
        return error_response(exc.status_code, field, problem, fix, headers=headers)

    def unavailable(request: Request, exc: Exception) -> JSONResponse:
        return error_response(503, "store", f"cannot be used now ({_first_line(exc)})",
                              "try again shortly; see the server's log")

    def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return error_response(500, "server", f"failed unexpectedly ({type(exc).__name__})",
                              "see the server's log, and report it")

    for outage in store_outages():
        app.add_exception_handler(outage, unavailable)
    app.add_exception_handler(Exception, internal)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(ProviderError, upstream)
    app.add_exception_handler(StoreError, store)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http)


def store_outages() -> tuple[type[Exception], ...]:
    """The errors of a store that is there but cannot answer now (a full disk, a database
    server restarting): 503, not 500."""
    import sqlite3

    found: list[type[Exception]] = [sqlite3.OperationalError]
    try:
        import psycopg
    except ImportError:
        return tuple(found)
    return (*found, psycopg.OperationalError)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _methods(request: Request, fallback: str) -> str:
    """The methods /openapi.json documents for this request's path (Starlette names only the
    first route's when several routes share a path), else what Starlette said."""
    found: set[str] = set()
    for template, item in request.app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)),
                        request.url.path):
            found |= {m.upper() for m in item}
    if not found:
        return fallback
    if "GET" in found:
        found.add("HEAD")
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return ", ".join(sorted(found, key=lambda m: order.index(m) if m in order else 9))
