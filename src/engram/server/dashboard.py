"""The dashboard at /dashboard: server-rendered HTML (Jinja2) with inline SVG charts; nothing
is loaded from the internet. It shows the whole store, so it needs the admin scope (or a
request from 127.0.0.1 while the store has no key); a browser signs in once at
/dashboard/login, which keeps the key in an HTTP-only cookie."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from engram.errors import EngramError, NotFound
from engram.model import MemoryEntry
from engram.server import analytics_pages, charts
from engram.server.access import ADMIN, KEY_COOKIE, Forbidden, Principal
from engram.server.insights import gather
from engram.server.service import Service

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/dashboard", include_in_schema=False)
router.include_router(analytics_pages.router)  # /dashboard/analytics, /dashboard/sessions/ID
BROWSE = 50  # memories a browse page shows


def static_files() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")


class NotAdmin(Forbidden):
    """A signed-in key without the admin scope: a page saying so, not JSON."""


def _caller(request: Request) -> tuple[Service, Principal]:
    who: Principal = request.state.principal
    if ADMIN not in who.scopes:
        raise NotAdmin("scope", "this key lacks the 'admin' scope the dashboard needs",
                       "sign in with an admin key (engram keys create --scope read,admin)")
    svc: Service = request.app.state.service
    return svc, who


def install(app: FastAPI) -> None:
    """The dashboard's routes, static files and its own 403 page."""
    app.include_router(router)
    app.mount("/dashboard/static", static_files(), name="static")

    def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NotAdmin)
        return templates.TemplateResponse(request, "forbidden.html", {"error": exc.problem,
                                                                      "fix": exc.fix},
                                          status_code=403)

    app.add_exception_handler(NotAdmin, refused)


def shown(value: object) -> str:
    """A field as a person reads it: lists joined, objects as JSON with their own letters."""
    if isinstance(value, list | tuple):
        return ", ".join(shown(v) for v in value) if value else "—"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else "—"
    return "—" if value is None else str(value)


templates.env.filters["shown"] = shown
templates.env.filters["json_text"] = lambda value: json.dumps(value, ensure_ascii=False,
                                                              sort_keys=True)


@router.get("", response_class=HTMLResponse)
def overview(request: Request) -> Response:
    svc, _ = _caller(request)
    with svc.lock:
        found = gather(svc.memory.events())
        top_ids = [i for i, _ in found.recalls.most_common(10)]
        top = svc.memory.store.get_many(top_ids)
        stats = svc.memory.stats()
        usage = svc.usage.summary()
    tier_lines, tier_top = charts.lines(found.by_tier)
    type_lines, type_top = charts.lines(found.by_type)
    moves, moves_top = charts.bars(found.days, {"promotions": found.promotions,
                                                "expiries": found.expiries})
    days = sorted(usage["days"])
    used = {d: usage["days"][d][1] for d in days}
    budget = {d: usage["days"][d][2] for d in days}
    usage_bars, usage_top = charts.bars(days, {"tokens used": used, "budget": budget})
    samples = usage["samples"]
    share = (sum(s["tokens_used"] for s in samples) / sum(s["budget_tokens"] for s in samples)
             if samples else None)
    context: dict[str, Any] = {
        "stats": stats, "days": found.days, "tier_lines": tier_lines, "tier_top": tier_top,
        "type_lines": type_lines, "type_top": type_top, "moves": moves, "moves_top": moves_top,
        "promoted": sum(found.promotions.values()), "expired": sum(found.expiries.values()),
        "edges": charts.transitions(found.transitions), "nodes": charts.NODES,
        "top": [(top[i], found.recalls[i]) for i in top_ids if i in top],
        "usage_bars": usage_bars, "usage_top": usage_top, "usage_days": days,
        "contexts": len(samples), "share": share, "recent": samples[-10:][::-1],
        "width": charts.WIDTH, "height": charts.HEIGHT, "pad": charts.PAD,
        "arrow": charts.ARROW,
    }
    return templates.TemplateResponse(request, "overview.html", context)


@router.get("/memories", response_class=HTMLResponse)
def browse(request: Request, q: str = "", user: str = "") -> Response:
    """Search or list one user's memories, or, with no user named, every user's (the list
    shows every user, so the search does too)."""
    svc, who = _caller(request)
    error: str | None = None
    hits: list[tuple[MemoryEntry, float | None]] = []
    try:
        if q.strip():
            users = [user] if user.strip() else sorted(
                {m.user_id for m in svc.list(who, None, limit=None)})
            found = [h for u in users for h in svc.search(who, q, u, limit=BROWSE)]
            found.sort(key=lambda h: h.score, reverse=True)
            hits = [(h.memory, h.score) for h in found[:BROWSE]]
        else:
            hits = [(m, None) for m in svc.list(who, user or None, limit=BROWSE)]
    except EngramError as exc:
        error = str(exc)
    return templates.TemplateResponse(request, "browse.html",
                                      {"q": q, "user": user, "hits": hits, "error": error})


@router.get("/memories/{memory_id}", response_class=HTMLResponse)
def memory(request: Request, memory_id: str) -> Response:
    svc, who = _caller(request)
    try:
        entry = svc.visible(who, memory_id)
    except NotFound:
        return templates.TemplateResponse(request, "missing.html", {"id": memory_id},
                                          status_code=404)
    events = svc.history(who, memory_id)
    return templates.TemplateResponse(request, "memory.html", {
        "m": entry, "fields": entry.to_dict(), "events": events})


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, key: str = Form(...), csrf_token: str = Form("")) -> Response:
    """Sign in (the gate has checked `csrf_token`): the key goes into a cookie that is sent
    to the dashboard's paths alone, never to another site's requests."""
    svc: Service = request.app.state.service
    try:
        if ADMIN not in svc.authenticate(key, None).scopes:
            raise Forbidden("scope", "this key lacks the 'admin' scope the dashboard needs",
                            "sign in with an admin key (engram keys create --scope read,admin)")
    except EngramError as exc:
        return templates.TemplateResponse(request, "login.html", {"error": str(exc)},
                                          status_code=401)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(KEY_COOKIE, key, httponly=True, samesite="strict", path="/dashboard")
    return response
