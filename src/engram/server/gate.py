"""The gate every HTTP request passes before any route sees it (ASGI middleware).

In order: the `Host` header must name this server (a DNS-rebinding page cannot reach it under
its own name); a write from a browser must come from this server's own origin and, outside
the dashboard's forms, carry JSON (so a cross-site "simple" POST cannot plant a memory); the
body must fit `--max-body`; a JSON body must be JSON, in UTF-8, without lone surrogates and
not nested deeper than `MAX_DEPTH` (checked once here for REST, the proxy, MCP and sync);
then the caller is authenticated. The dashboard's cookie counts on the dashboard alone, and
its forms need the CSRF token (`csrf`) that the cookie of the same name holds.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engram.errors import InvalidInput, StoreError
from engram.server.access import KEY_COOKIE, Forbidden, Unauthorized
from engram.server.problems import Malformed, error_response, store_outages
from engram.server.service import LOOPBACK, Service
from engram.validate import MAX_DEPTH, check_json

OPEN_PATHS = frozenset({"/health", "/healthz", "/readyz", "/openapi.json", "/docs",
                        "/docs/oauth2-redirect", "/dashboard/login"})
OPEN_PREFIXES = ("/dashboard/static/",)
DASHBOARD = "/dashboard"
CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER = "engram_csrf", "csrf_token", "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OUTAGES = store_outages()
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def allowed_hosts(bound: str, extra: Iterable[str] = ()) -> frozenset[str] | None:
    """The host names (without port) a request may name: loopback names, the bound address
    and `--allow-host` names; None (any) when bound to every interface with no names given,
    where a key is required anyway (`engram serve` refuses it otherwise)."""
    names = {h.strip().lower().strip("[]") for h in extra if h.strip()}
    if bound in WILDCARDS and not names:
        return None
    if bound not in WILDCARDS:
        names.add(bound.lower().strip("[]"))
    return frozenset(names | LOOPBACK)


def host_name(netloc: str) -> str:
    """`example.org:8080` -> `example.org`, `[::1]:80` -> `::1`."""
    return (urlsplit(f"//{netloc}").hostname or "") if netloc else ""


class Gate:
    """ASGI middleware: the checks above, in that order; the principal lands in
    `request.state.principal`, the dashboard's CSRF token in `request.state.csrf_token`."""

    def __init__(self, app: ASGIApp, max_body_bytes: int,
                 hosts: frozenset[str] | None) -> None:
        self.app, self.max_body_bytes, self.hosts = app, max_body_bytes, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        path, method = scope["path"], scope["method"]
        refusal = self._refuse_site(headers, method, path)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        body = await self._read_body(headers, receive)
        if body is None:
            await error_response(413, "body", f"is larger than {self.max_body_bytes} bytes",
                                 "send a smaller request (split it) or start the server "
                                 "with a larger --max-body")(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        cookies = _cookies(headers)
        dashboard = path == DASHBOARD or path.startswith(DASHBOARD + "/")
        try:
            if body and _is_json(headers):
                check_json(_decode(body), too_deep=Malformed)
            if dashboard and method not in SAFE_METHODS:
                _check_csrf(cookies.get(CSRF_COOKIE), headers, body)
        except (InvalidInput, Forbidden) as exc:
            status = 403 if isinstance(exc, Forbidden) else 400 if isinstance(exc, Malformed) \
                else 422
            await error_response(status, exc.field, exc.problem, exc.fix)(scope, receive, send)
            return
        if path not in OPEN_PATHS and not path.startswith(OPEN_PREFIXES):
            svc: Service = scope["app"].state.service
            client = scope.get("client")
            token = _token(headers, cookies if dashboard else {})
            try:
                who = state["principal"] = await run_in_threadpool(
                    svc.authenticate, token, client[0] if client else None)
            except Unauthorized as exc:
                refused: Response = error_response(401, exc.field, exc.problem, exc.fix)
                if dashboard and method == "GET":
                    refused = RedirectResponse("/dashboard/login", status_code=303)
                await refused(scope, receive, send)
                return
            except Exception as exc:  # the keys live in the store, which may be down
                if not isinstance(exc, (StoreError, *OUTAGES)):
                    raise
                await error_response(503, "store", f"cannot check the key now ({exc})",
                                     "try again shortly")(scope, receive, send)
                return
            wait = await run_in_threadpool(
                svc.shared.allow, who.key_id or f"ip:{client[0] if client else '?'}")
            if wait is not None:
                await error_response(
                    429, "rate", f"this key made more than {svc.config.rate_limit} requests "
                    "this minute", f"wait {math.ceil(wait)} s (Retry-After), or ask for a "
                    "higher --rate-limit", headers={"Retry-After": str(math.ceil(wait))},
                )(scope, receive, send)
                return
        if dashboard:
            fresh = cookies.get(CSRF_COOKIE) is None
            state["csrf_token"] = cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
            if fresh:
                send = _setting_cookie(send, state["csrf_token"])
        await self.app(scope, _replay(body, receive), send)

    def _refuse_site(self, headers: dict[str, str], method: str,
                     path: str) -> Response | None:
        """A request under a name that is not ours, or a write from another site."""
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            return error_response(421, "host", f"{host or '(none)'!r} is not a name this "
                                  "server answers to", "use http://127.0.0.1:PORT, or start "
                                  "the server with --allow-host NAME for a name in front of it")
        if method in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
            return error_response(403, "origin", f"a write from {origin!r} (another site)",
                                  "send it from this server's own pages or from a program "
                                  "(no browser)")
        if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return error_response(403, "origin", "a write from another site",
                                  "send it from this server's own pages or from a program")
        declared = headers.get("content-length", "")
        has_body = (declared.isdigit() and int(declared) > 0) or \
            "transfer-encoding" in headers
        dashboard = path == DASHBOARD or path.startswith(DASHBOARD + "/")
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if has_body and not _is_json(headers) and not (dashboard and kind in FORMS):
            return error_response(415, "content-type", f"{kind or '(none)'!r} is not JSON",
                                  "send the body as JSON with Content-Type: application/json")
        return None

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


def _is_json(headers: dict[str, str]) -> bool:
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/")
                                          and kind.endswith("+json"))


def _decode(body: bytes) -> object:
    """The body as JSON, or InvalidInput(body) saying why not."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("body", "is not valid UTF-8",
                           "encode the JSON body as UTF-8") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise Malformed("body", f"is nested deeper than {MAX_DEPTH} levels",
                           "flatten the JSON") from None
    except ValueError as exc:
        raise Malformed("body", f"is not valid JSON ({exc})",
                           "send a JSON object with Content-Type: application/json") from None


def _check_csrf(expected: str | None, headers: dict[str, str], body: bytes) -> None:
    """A dashboard write must echo the CSRF cookie in its form (or the X-CSRF-Token header):
    another site can make the browser send the cookie, but cannot read it."""
    sent = headers.get(CSRF_HEADER)
    if sent is None and body:
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == FORMS[0]:
            sent = next(iter(parse_qs(body.decode("utf-8", "replace")).get(CSRF_FIELD, [])),
                        None)
    if not expected or not sent or not secrets.compare_digest(expected, sent):
        raise Forbidden("csrf_token", "is missing or does not match this browser's",
                           "reload the dashboard page and send its form again")


def _cookies(headers: dict[str, str]) -> dict[str, str]:
    out = {}
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name and value:
            out[name] = value
    return out


def _token(headers: dict[str, str], cookies: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    if headers.get("x-api-key"):
        return headers["x-api-key"].strip()
    return cookies.get(KEY_COOKIE)


def _setting_cookie(send: Send, token: str) -> Send:
    """`send` that adds the CSRF cookie to the response's headers."""
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message).append(
                "set-cookie", f"{CSRF_COOKIE}={token}; Path={DASHBOARD}; HttpOnly; "
                "SameSite=Strict")
        await send(message)

    return sending


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
