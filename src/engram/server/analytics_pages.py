"""The dashboard's analytics page (/dashboard/analytics: tiers over time, transitions per day,
utilisation, recall hit rate, compaction) and a session's replay (/dashboard/sessions/ID),
with the memories each answer of a local model leaned on (`state.attention`). Included by
`dashboard.router`, so the same sign-in guards them."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from engram.analytics.metrics import measure
from engram.analytics.replay import Timeline, replay, sessions
from engram.errors import InvalidInput
from engram.server import flow_charts
from engram.server.access import ADMIN, Principal
from engram.server.charts import HEIGHT, PAD, WIDTH
from engram.server.service import Service
from engram.state.attention import leaned_on
from engram.store.base import Store

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
            leaned = _leaned(svc.memory.store, found)
    except InvalidInput as exc:
        return templates.TemplateResponse(request, "replay.html", {
            "session_id": session_id, "user": user, "error": str(exc), "timeline": None},
            status_code=404)
    return templates.TemplateResponse(request, "replay.html", {
        "session_id": session_id, "user": user, "error": None, "timeline": found,
        "leaned": leaned})


def _leaned(store: Store, timeline: Timeline) -> dict[str, list[tuple[str, float, str]]]:
    """Per turn whose answer reported attention: the memories it leaned on (id, share, text;
    a memory forgotten since shows without its text), largest share first."""
    turns = store.get_many(s.memory_id for s in timeline.steps if s.role == "turn")
    shares = {t: found for t, entry in turns.items() if (found := leaned_on(entry.metadata))}
    texts = store.get_many(m for found in shares.values() for m, _ in found)
    return {t: [(m, share, texts[m].content if m in texts else "(forgotten)")
                for m, share in found] for t, found in shares.items()}
