"""What an orchestrator and Prometheus ask: `/healthz` (the process answers), `/readyz` (the
store, and where configured Redis and the upstream, can be reached) and `/metrics` (keyed:
the `metrics` or `admin` scope)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from engram.server.access import ADMIN, METRICS, Forbidden, Principal
from engram.server.metrics import MEDIA_TYPE, exposition
from engram.server.problems import RESPONSES, error_response
from engram.server.service import Service

router = APIRouter(tags=["operations"])
PROBE_TIMEOUT_S = 2.0


OPEN: dict[int | str, dict[str, Any]] = {421: RESPONSES[421]}  # the gate, to keyless GETs


@router.get("/healthz", summary="The process answers (no key needed)", responses=OPEN)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The store, Redis and the upstream can be reached (no key)",
            responses={**OPEN, 503: RESPONSES[503]})
async def readyz(request: Request) -> Response:
    svc: Service = request.app.state.service
    checks: dict[str, str] = {}
    try:
        await run_in_threadpool(_touch_store, svc)
        checks["store"] = "ok"
    except Exception as exc:  # any failure means: not ready, saying which and why
        return error_response(503, "store", f"cannot be read ({exc})", "see the server's log")
    if svc.shared.remote:
        try:
            await run_in_threadpool(svc.shared.ping)
            checks["redis"] = "ok"
        except Exception as exc:
            return error_response(503, "redis", f"cannot be reached ({exc})",
                                  "start Redis or fix --redis")
    upstream = getattr(request.app.state.upstream, "base_url", "")
    if upstream.startswith("http"):
        try:
            async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
                await client.get(f"{upstream}/models")
            checks["upstream"] = "ok"
        except httpx.TransportError as exc:
            return error_response(503, "upstream", f"{upstream} cannot be reached ({exc})",
                                  "start the upstream or fix --upstream")
    return JSONResponse({"status": "ready", "checks": checks})


@router.get("/metrics", summary="Prometheus metrics (the metrics or admin scope)",
            response_class=Response, responses={
                200: {"content": {MEDIA_TYPE.split(";")[0]: {}}}, **RESPONSES})
def metrics(request: Request) -> Response:
    who: Principal = request.state.principal
    if not {METRICS, ADMIN} & who.scopes:
        raise Forbidden("scope", "this key lacks the 'metrics' scope",
                        "create a key with --scope metrics for the Prometheus scraper")
    svc: Service = request.app.state.service
    return Response(exposition(svc.reading), media_type=MEDIA_TYPE)


def _touch_store(svc: Service) -> None:
    with svc.reading() as mem:
        mem.store.heads()
