"""The training candidates page of the dashboard (/dashboard/train): a user's candidates with
score and reason, and accept/reject buttons that write the same tag events as `engram train
accept|reject`. Admin scope, like the rest of the dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from engram.errors import EngramError
from engram.server.dashboard import _caller, templates
from engram.train import candidates as cands

router = APIRouter(prefix="/dashboard/train", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
def page(request: Request, user: str = "", state: str = "", error: str = "") -> Response:
    svc, _ = _caller(request)
    found: list[cands.Candidate] = []
    if user:
        try:
            with svc.lock:
                found = cands.candidates(svc.memory, user, state=state or None)
        except EngramError as exc:
            error = str(exc)
    return templates.TemplateResponse(request, "train.html", {
        "user": user, "state": state, "states": cands.STATES, "candidates": found,
        "error": error or None})


@router.post("", response_class=HTMLResponse)
def curate(request: Request, user: Annotated[str, Form()],
           memory_id: Annotated[list[str], Form()], action: Annotated[str, Form()]) -> Response:
    svc, _ = _caller(request)
    problem = ""
    try:
        with svc.lock:
            cands.curate(svc.memory, memory_id, action == "accept", user)
    except EngramError as exc:
        problem = str(exc)
    query = {"user": user, **({"error": problem} if problem else {})}
    target = request.url_for("page").include_query_params(**query)
    return RedirectResponse(str(target), status_code=303)
