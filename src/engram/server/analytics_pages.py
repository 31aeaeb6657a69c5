"""The dashboard's analytics page (/dashboard/analytics: tiers over time, transitions per day,
utilisation, recall hit rate, compaction) and a session's replay (/dashboard/sessions/ID).
Included by `dashboard.router`, so the same sign-in guards them."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from engram.analytics.metrics import measure
from engram.analytics.replay import replay, sessions
from engram.errors import InvalidInput
from engram.server import flow_charts
from engram.server.access import ADMIN, Principal
from engram.server.charts import HEIGHT, PAD, WIDTH
from engram.server.service import Service

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
router = APIRouter()


def _service(request: Request) -> Service:
    who: Principal = request.state.principal
    who.require(ADMIN)
    svc: Service = request.app.state.service
    return svc


@router.get("/analytics", response_class=HTMLResponse)
def analytics(request: Request, user: str = "") -> Response:
    svc = _service(request)
    with svc.lock:
        svc.usage.flush()
        metrics = measure(svc.memory.store, user or None)
        recent = sessions(svc.memory.events(), user or None)
    tiers, tiers_top = flow_charts.stacked_areas(metrics.tiers)
    moves, moves_top = flow_charts.stacked_bars(metrics.days, metrics.transitions)
    return templates.TemplateResponse(request, "analytics.html", {
        "user": user, "m": metrics, "tiers": tiers, "tiers_top": tiers_top, "moves": moves,
        "moves_top": moves_top, "sessions": recent, "days": metrics.days, "width": WIDTH,
        "height": HEIGHT, "pad": PAD})


@router.get("/sessions/{session_id}", response_class=HTMLResponse)
def session(request: Request, session_id: str, user: str = "") -> Response:
    svc = _service(request)
    try:
        with svc.lock:
            found = replay(svc.memory.events(), session_id, user)
    except InvalidInput as exc:
        return templates.TemplateResponse(request, "replay.html", {
            "session_id": session_id, "user": user, "error": str(exc), "timeline": None},
            status_code=404)
    return templates.TemplateResponse(request, "replay.html", {
        "session_id": session_id, "user": user, "error": None, "timeline": found})
