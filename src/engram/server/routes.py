"""The REST API over `Memory`: memories, search, context, history, feedback, turns,
maintenance, stats and export. Handlers are plain functions (FastAPI runs them in a thread
pool); every check is the `Service`'s."""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from engram.log.events import canonical_json
from engram.query import Hit
from engram.server.access import ADMIN, READ, Principal
from engram.server.problems import BY_ID, RESPONSES
from engram.server.schemas import (
    NON_BLANK,
    ContextRequest,
    FeedbackRequest,
    Label,
    MemoryCreate,
    MemoryType,
    MemoryUpdate,
    SearchRequest,
    TierName,
    TurnRequest,
)
from engram.server.service import Service
from engram.validate import MAX_OFFSET

router = APIRouter(responses=RESPONSES)


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def principal(request: Request) -> Principal:
    who: Principal = request.state.principal
    return who


Svc = Annotated[Service, Depends(service)]
Who = Annotated[Principal, Depends(principal)]
MEMORIES: list[str | Enum] = ["memories"]
RECALL: list[str | Enum] = ["recall"]
ADMIN_TAG: list[str | Enum] = ["store"]
IdParam = Annotated[str | None, Query(min_length=1, max_length=256, pattern=NON_BLANK)]
WhenParam = Annotated[str | None, Query(json_schema_extra={"format": "date-time"})]


def hit_json(hit: Hit, explain: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"score": hit.score, "memory": hit.memory.to_dict()}
    if explain:
        out["components"] = hit.components
    return out


@router.get("/health", tags=ADMIN_TAG, summary="Liveness (no key needed)")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.post("/memories", tags=MEMORIES, status_code=201, summary="Remember a text")
def create_memory(body: MemoryCreate, svc: Svc, who: Who) -> dict[str, Any]:
    fields = body.model_dump(exclude_none=True, exclude={"text", "user_id"})
    return svc.remember(who, body.text, body.user_id, **fields).to_dict()


@router.get("/memories", tags=MEMORIES, summary="List memories, newest first, with filters")
def list_memories(
    svc: Svc, who: Who, user_id: IdParam = None, agent_id: IdParam = None,
    session_id: IdParam = None, tag: Annotated[list[Label] | None, Query()] = None,
    memory_type: Annotated[MemoryType | None, Query()] = None,
    tier: Annotated[TierName | None, Query()] = None,
    since: WhenParam = None, until: WhenParam = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[dict[str, Any]]:
    entries = svc.list(who, user_id, agent_id=agent_id, session_id=session_id, tags=tag,
                       memory_type=memory_type, tier=tier, since=since, until=until,
                       limit=limit, offset=offset)
    return [e.to_dict() for e in entries]


@router.get("/memories/{memory_id}", tags=MEMORIES, responses=BY_ID, summary="One memory")
def read_memory(memory_id: str, svc: Svc, who: Who) -> dict[str, Any]:
    return svc.visible(who, memory_id).to_dict()


@router.patch("/memories/{memory_id}", tags=MEMORIES, responses=BY_ID, summary="Change a memory")
def update_memory(memory_id: str, body: MemoryUpdate, svc: Svc, who: Who) -> dict[str, Any]:
    changes = body.model_dump(exclude_none=True, exclude={"add_tags", "remove_tags"})
    return svc.update(who, memory_id, add_tags=body.add_tags or (),
                      remove_tags=body.remove_tags or (), **changes).to_dict()


@router.delete("/memories/{memory_id}", tags=MEMORIES, responses=BY_ID, status_code=204,
               summary="Forget a memory everywhere")
def forget_memory(memory_id: str, svc: Svc, who: Who, reason: str | None = None) -> Response:
    svc.forget(who, memory_id, reason)
    return Response(status_code=204)


@router.get("/memories/{memory_id}/history", tags=MEMORIES, responses=BY_ID,
            summary="Every event that touched a memory, oldest first")
def memory_history(memory_id: str, svc: Svc, who: Who) -> list[dict[str, Any]]:
    return [e.to_dict() for e in svc.history(who, memory_id)]


@router.post("/memories/{memory_id}/feedback", tags=MEMORIES, responses=BY_ID,
             summary="Say a memory was right, wrong, or how to correct it")
def memory_feedback(memory_id: str, body: FeedbackRequest, svc: Svc,
                    who: Who) -> dict[str, Any]:
    return svc.feedback(who, memory_id, body.rating, body.correction).to_dict()


@router.get("/sessions/{session_id}", tags=RECALL, responses=BY_ID,
            summary="A session's recorded turns, oldest first (cached while hot)")
def session_window(session_id: str, svc: Svc, who: Who,
                   user_id: IdParam = None) -> dict[str, Any]:
    turns = svc.window(who, session_id, user_id)
    return {"session_id": session_id, "turns": turns}


@router.post("/search", tags=RECALL, summary="Recall the memories that best match a query")
def search(body: SearchRequest, svc: Svc, who: Who) -> list[dict[str, Any]]:
    options = body.model_dump(exclude_none=True, exclude={"query", "user_id", "explain"})
    hits = svc.search(who, body.query, body.user_id, **options)
    return [hit_json(h, body.explain) for h in hits]


@router.post("/context", tags=RECALL, summary="A budgeted context for a model")
def context(body: ContextRequest, svc: Svc, who: Who) -> dict[str, Any]:
    conversation = [m.model_dump() for m in body.conversation]
    if body.session_id is not None and not conversation:
        conversation = svc.window(who, body.session_id, body.user_id)
    plan = svc.context(who, query=body.query, user_id=body.user_id,
                       conversation=conversation, session_id=body.session_id,
                       budget_tokens=body.budget_tokens, style=body.style, limit=body.limit,
                       include_sensitive=body.include_sensitive)
    return {"text": plan.text, "prompt": plan.prompt.payload(),
            "memory_ids": list(plan.memory_ids), "tokens_used": plan.tokens_used,
            "budget_tokens": plan.budget_tokens, "left_out_memories": plan.left_out_memories}


@router.post("/turns", tags=MEMORIES, status_code=201,
             summary="Record a chat exchange and extract memories from it")
def remember_turn(body: TurnRequest, svc: Svc, who: Who) -> dict[str, Any]:
    done = svc.turn(who, body.user_msg, body.assistant_msg, user_id=body.user_id,
                    session_id=body.session_id, agent_id=body.agent_id, at=body.at)
    return {"turn": done.turn.to_dict(), "extracted": [e.to_dict() for e in done.extracted]}


@router.post("/maintain", tags=ADMIN_TAG, summary="Promote, expire and decay now (admin)")
def maintain(svc: Svc, who: Who) -> dict[str, Any]:
    return svc.maintain(who)


@router.get("/stats", tags=ADMIN_TAG, summary="Counts: the store's (admin) or your own")
def stats(svc: Svc, who: Who) -> dict[str, Any]:
    who.require(READ)
    if ADMIN in who.scopes:
        return dict(svc.locked(svc.memory.stats))
    assert who.user_id is not None
    user = who.user_id
    return {"user_id": user, "memories": svc.locked(lambda: svc.memory.count(user_id=user))}


@router.get("/export", tags=ADMIN_TAG, summary="The event log as JSON lines (admin)",
            response_class=StreamingResponse)
def export(svc: Svc, who: Who) -> StreamingResponse:
    who.require(ADMIN)
    lines = svc.locked(lambda: [canonical_json(e.to_dict()) + "\n"
                                for e in svc.memory.events()])

    def body() -> Iterator[str]:
        yield from lines

    return StreamingResponse(body(), media_type="application/x-ndjson")
