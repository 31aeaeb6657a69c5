"""`engram serve`, `engram mcp` and `engram keys`: registered on the main CLI by `register`.
FastAPI, uvicorn and the MCP SDK are imported only when a command that needs them runs."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated

import typer

from engram.cli.options import DataOpt, JsonOpt, exit_code, fail
from engram.errors import EngramError
from engram.memory import Memory
from engram.server.access import SCOPE_HELP
from engram.server.keys import KeyRing
from engram.server.service import DEFAULT_MAX_BODY, LOOPBACK, ServerConfig
from engram.store import DEFAULT_DATA

keys_app = typer.Typer(no_args_is_help=True, help="API keys for `engram serve` (stored hashed "
                       "in the store, so every server on it sees them).")


def _need_server_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import mcp  # noqa: F401
        import uvicorn  # noqa: F401
    except ModuleNotFoundError as exc:
        fail(f"{exc.name} is not installed; pip install 'engram-memory[server]'")


@contextmanager
def _keyring(data: str) -> Iterator[tuple[Memory, KeyRing]]:
    try:
        with Memory(data, embedder=None) as mem:
            yield mem, KeyRing(mem.store)
    except EngramError as exc:
        fail(str(exc), exit_code(exc))


def serve(
    data: DataOpt = DEFAULT_DATA,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535,
                                      help="Port to listen on.")] = 8765,
    upstream: Annotated[str | None, typer.Option(
        "--upstream", envvar="ENGRAM_UPSTREAM",
        help="OpenAI-compatible base URL the proxy forwards to, e.g. "
             "http://127.0.0.1:8000/v1.")] = None,
    upstream_key: Annotated[str | None, typer.Option(
        "--upstream-key", envvar="ENGRAM_UPSTREAM_KEY", help="API key for the upstream.")]
    = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="Or an Engram provider spec, e.g. ollama:phi3.")] = None,
    route: Annotated[str | None, typer.Option(
        "--route", help="Send each chat to the edge or the laptop upstream by how hard it is, "
        "e.g. edge=http://board:8080/v1,laptop=http://127.0.0.1:8000/v1[,threshold=…]"
        "[,timeout=…] (docs/state.md).")] = None,
    require_key: Annotated[bool, typer.Option(
        "--require-key", help="Authenticate loopback requests too, even with no key yet.")]
    = False,
    max_body: Annotated[int, typer.Option("--max-body", min=1024, max=1 << 30,
                                          help="Largest request body in bytes.")]
    = DEFAULT_MAX_BODY,
    send_sensitive: Annotated[bool, typer.Option(
        "--send-sensitive", help="Let sensitive memories into contexts for remote upstreams.")]
    = False,
    readers: Annotated[int, typer.Option(
        "--readers", min=0, max=32, help="Extra store connections serving reads in parallel.")]
    = 2,
    upstream_timeout: Annotated[float, typer.Option(
        "--upstream-timeout", min=1.0, max=3600.0,
        help="Seconds to wait for the upstream's first byte (and between bytes of a stream) "
        "before answering 504.")] = 30.0,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, max=64, help="Processes serving the store (a PostgreSQL store; "
        "with --redis they share rate limits and the session cache).")] = 1,
    redis: Annotated[str | None, typer.Option(
        "--redis", envvar="ENGRAM_REDIS", help="redis:// URL of what workers share: rate "
        "limits and the cache of hot session windows.")] = None,
    rate_limit: Annotated[int | None, typer.Option(
        "--rate-limit", min=1, help="Requests per minute per API key (429 with Retry-After "
        "beyond it).")] = None,
    allow_host: Annotated[list[str] | None, typer.Option(
        "--allow-host", help="A name clients may reach the server by besides the address it "
        "listens on (repeatable), e.g. a reverse proxy's; other Host headers get 421.")]
    = None,
) -> None:
    """Serve the REST API, the OpenAI-compatible proxy (/v1), MCP (/mcp) and /dashboard."""
    _need_server_extra()
    import uvicorn

    from engram.server.app import create_app

    if route is not None:
        if model is not None or upstream is not None:
            fail("--route: it chooses the upstream itself; give it alone, without --model "
                 "or --upstream")
        model = f"route:{route}"
    with _keyring(data) as (_, keys):
        has_key = keys.exist()
    if host not in LOOPBACK and not has_key:
        fail(f"--host: refusing to listen on {host} while the store has no API key (anyone "
              "who can reach it could read every memory); create one with `engram keys "
              "create --user NAME --scope read,write`, or listen on 127.0.0.1")
    config = ServerConfig(data=data, host=host, port=port, upstream=upstream,
                          upstream_key=upstream_key, model=model, require_key=require_key,
                          max_body_bytes=max_body, send_sensitive=send_sensitive,
                          readers=readers, allowed_hosts=tuple(allow_host or ()),
                          upstream_timeout_s=upstream_timeout, redis=redis,
                          rate_limit=rate_limit, workers=workers)
    if workers > 1 and rate_limit is not None and redis is None:
        fail("--rate-limit: with several --workers the counts must be shared; give --redis "
             "URL (or serve with one worker)")
    _check_port(host, port)
    sys.stderr.write(f"engram: serving {data} on http://{host}:{port} with {workers} "
                     f"worker{'s' if workers > 1 else ''} (dashboard: http://{host}:{port}"
                     f"/dashboard, MCP: http://{host}:{port}/mcp)\n")
    if workers > 1:
        _serve_workers(config)
        return
    try:
        app = create_app(config)
    except EngramError as exc:
        fail(str(exc))
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _serve_workers(config: ServerConfig) -> None:
    """uvicorn's worker processes, each building the app from the config in the environment;
    Prometheus counts every worker's samples in one folder (removed afterwards)."""
    import tempfile

    import uvicorn

    from engram.server.app import CONFIG_ENV

    with tempfile.TemporaryDirectory(prefix="engram-metrics-") as counts:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = counts
        os.environ[CONFIG_ENV] = json.dumps({**asdict(config), "data": str(config.data)})
        uvicorn.run("engram.server.app:from_environment", factory=True, host=config.host,
                    port=config.port, workers=config.workers, log_level="warning")


def _check_port(host: str, port: int) -> None:
    """Fail with one line now if the address cannot be listened on (in use, not ours),
    rather than with uvicorn's traceback later."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            fail(f"--port: cannot listen on {host}:{port} ({exc.strerror or exc}); choose "
                 "another --port, or stop what holds it", 1)


def mcp(
    data: DataOpt = DEFAULT_DATA,
    user: Annotated[str, typer.Option("--user", "-u", help="The user the tools act for.")]
    = "default",
) -> None:
    """Run the MCP server over stdio (for Claude Desktop and other local MCP clients)."""
    _need_server_extra()
    from engram.server.access import READ, WRITE, Principal
    from engram.server.mcp import build_mcp
    from engram.server.service import Service

    try:  # a bad store: one line on stderr, where an MCP client shows it
        mem = Memory(data)
    except EngramError as exc:
        fail(str(exc), exit_code(exc))
    service = Service(mem, ServerConfig(data=data))
    try:  # the person at the machine, as one user
        build_mcp(service, Principal(user, frozenset({READ, WRITE}))).run("stdio")
    finally:
        service.close()


@keys_app.command("create")
def keys_create(
    user: Annotated[str, typer.Option("--user", "-u", help="The user the key acts for.")],
    scope: Annotated[str, typer.Option("--scope", help="Comma-separated: " + "; ".join(
        f"{k} ({v})" for k, v in SCOPE_HELP.items()))] = "read,write",
    label: Annotated[str | None, typer.Option("--label", help="A note: who or what uses it.")]
    = None,
    data: DataOpt = DEFAULT_DATA,
) -> None:
    """Create a key; the token is printed once and only its hash is kept."""
    with _keyring(data) as (mem, keys):
        try:
            token, key = keys.create(user, scope, now=mem.clock.now(), label=label)
        except EngramError as exc:
            fail(str(exc))
    sys.stderr.write(f"key {key.id} for {key.user_id} ({', '.join(key.scopes)}); "
                     "store the token now, it is not shown again:\n")
    sys.stdout.write(token + "\n")


@keys_app.command("list")
def keys_list(data: DataOpt = DEFAULT_DATA,
              as_json: JsonOpt = False) -> None:
    """Every key: id, user, scopes, created, revoked (never the token)."""
    with _keyring(data) as (_, keys):
        found = keys.all()
    if as_json:
        sys.stdout.write(json.dumps([k.public() for k in found], indent=2) + "\n")
        return
    for k in found:
        state = f"revoked {k.revoked_at}" if k.revoked_at else "active"
        sys.stdout.write(f"{k.id}  {k.user_id:<16} {','.join(k.scopes):<24} "
                         f"created {k.created_at}  {state}  {k.label or ''}\n")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(
                    metavar="KEY_ID", help="The key's id (see engram keys list).")],
                data: DataOpt = DEFAULT_DATA) -> None:
    """Revoke a key at once, for every server on this store."""
    with _keyring(data) as (mem, keys):
        try:
            key = keys.revoke(key_id, now=mem.clock.now())
        except EngramError as exc:
            fail(str(exc))
    sys.stdout.write(f"revoked {key.id} ({key.user_id})\n")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(mcp)
    app.add_typer(keys_app, name="keys")
