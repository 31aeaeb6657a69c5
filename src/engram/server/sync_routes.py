"""Replication over HTTP: `/sync/heads`, `/sync/pull` and `/sync/push`, for keys with the
`sync` scope (`engram sync peer` is the client, `engram.sync.http`); saved model states beside
them: `/sync/states/pull` and `/sync/states/push` (`engram.state.peer`).

A key with `any-user` or `admin` beside `sync` replicates the whole log. A key of one user
pulls that user's events in full and every other event redacted (`sync.scope`: chains are
gap-free, so the stubs travel, verify and fold to nothing), and may push only events of that
user's memories: a batch that touches another user's memory is refused whole (403)."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from engram.errors import InvalidInput, StoreError
from engram.log.events import Event, EventType
from engram.log.projection import targets
from engram.server.access import SYNC, Forbidden, Principal
from engram.server.problems import CONFLICT, RESPONSES, Conflict
from engram.server.routes import principal, service
from engram.server.schemas import WHOLE
from engram.server.service import Service
from engram.state import peer as state_peer
from engram.state.store import StateStore, state_root
from engram.sync import scope
from engram.sync import vector as vectors
from engram.sync.http import parse_events

router = APIRouter(prefix="/sync", tags=["sync"], responses=RESPONSES)
Svc = Annotated[Service, Depends(service)]
Who = Annotated[Principal, Depends(principal)]
MAX_BATCH = 10_000


class PullRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    vector: dict[str, Annotated[int, Field(ge=0), WHOLE]] = Field(
        default_factory=dict, description="What the caller holds: device id -> last seq",
        examples=[{"01HV3K9Q2M8X": 120}])
    limit: Annotated[int, Field(ge=1, le=MAX_BATCH, description="Most events in the answer"),
                     WHOLE] = 1000
    user: str | None = Field(None, min_length=1, description="Only this user's memories in "
                             "full, every other event redacted (a key of one user may name "
                             "only its own)")


HEX64 = r"^[0-9a-f]{64}$"
EventKind = Literal["memory.added", "memory.updated", "memory.tagged", "memory.linked",
                    "memory.tier_changed", "memory.corroborated", "memory.accessed",
                    "memory.forgotten", "memory.superseded", "memory.contradicted",
                    "memory.expired", "memory.feedback"]  # EventType's values (a test says so)


class WireEvent(BaseModel):
    """An event as it travels (`Event.to_dict`); whether it fits the log is the store's to
    say (409 when it does not)."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    id: str = Field(min_length=1)
    type: EventKind
    version: Annotated[int, Field(alias="schema", ge=1), WHOLE]
    device_id: str = Field(min_length=1)
    seq: Annotated[int, Field(ge=1), WHOLE]
    hlc: str = Field(pattern=r"^[0-9]{15}\.[0-9]{5}$")
    actor: str
    memory_id: str | None = None
    payload: dict[str, Any] | None
    payload_hash: str = Field(pattern=HEX64)
    prev_hash: str
    hash: str = Field(pattern=HEX64)


class PushRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    events: list[WireEvent] = Field(
        max_length=MAX_BATCH, description="Exported events (`Event.to_dict`), any order; a "
        "batch that does not verify against this store's log is refused whole (409)")


def _reach(who: Principal) -> str | None:
    """The one user whose events `who` may move, or None for every user's."""
    who.require(SYNC)
    return None if who.any_user else who.user_id


@router.get("/heads", summary="This store's device id and version vector (sync)")
def heads(svc: Svc, who: Who) -> dict[str, Any]:
    _reach(who)
    with svc.reading() as mem:
        held = vectors.of_heads(mem.store.heads())
        return {"device_id": mem.store.device_id, "vector": held,
                "max_body": svc.config.max_body_bytes}


@router.post("/pull", summary="The next batch of events the caller lacks (sync)")
def pull(body: PullRequest, svc: Svc, who: Who) -> dict[str, Any]:
    """At most `limit` events past the caller's `vector`, device by device in chain order; the
    answer's `vector` is what the caller holds once it has applied them (ask again with it
    while `remaining` is not 0)."""
    user = _asked(who, body.user)
    with svc.reading() as mem:
        held = vectors.of_heads(mem.store.heads())
        batch = list(islice(mem.store.events_after(body.vector), body.limit))
        if user is not None:
            batch = list(scope.scoped(batch, scope.owned(mem.store, user)))
    reached = vectors.merged(body.vector, {e.device_id: e.seq for e in batch})
    return {"events": [e.to_dict() for e in batch], "vector": reached,
            "remaining": vectors.ahead(held, reached)}


@router.post("/push", summary="Apply a batch of events in one transaction (sync)",
             responses=CONFLICT)
def push(body: PushRequest, svc: Svc, who: Who) -> dict[str, Any]:
    """Admit the events (verified, idempotent, all or nothing); answers how many were new and
    this store's vector after them."""
    user = _reach(who)
    try:
        events = parse_events([e.model_dump(by_alias=True) for e in body.events])
    except InvalidInput as exc:
        raise Conflict(exc.field, exc.problem, exc.fix) from None
    with svc.lock:
        if user is not None:
            touched = {m for e in events for m in targets(e)}
            _check_owner(events, user, {e.id: e.user_id for e in
                                        svc.memory.store.get_many(touched).values()})
        try:
            added = svc.memory.import_events(events)
        except StoreError as exc:
            raise Conflict("events", str(exc), "nothing of this batch was applied; run "
                           "`engram verify` on the sending store") from None
        held = vectors.of_heads(svc.memory.store.heads())
    return {"received": len(events), "added": added, "vector": held}


class StatesPull(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    held: list[Annotated[str, Field(pattern=HEX64)]] = Field(
        default_factory=list, description="The chunk addresses the caller holds (not sent)")
    user: str | None = Field(None, min_length=1, description="Only this user's chats' states")
    send: bool = Field(True, description="False: answer only which chunks this store holds")


class StatesPush(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    tar: str = Field(pattern=r"^[A-Za-z0-9+/]*={0,2}$",
                     description="base64 of a tar in `engram state export`'s format")


@router.post("/states/pull", summary="Saved model states, the chunks the caller lacks (sync)")
def states_pull(body: StatesPull, svc: Svc, who: Who) -> dict[str, Any]:
    """A tar of this store's saved states (of one user's chats, with `user` or a key of one
    user) and Ollama contexts, without the chunks the caller holds; and what this store holds,
    so the caller pushes only what it lacks."""
    user = _asked(who, body.user)
    states = _states(svc)
    with svc.reading() as mem:
        tar = state_peer.packed(states, mem.store, user, body.held)[0] if body.send else ""
    return {"tar": tar, "held": state_peer.held(states)}


@router.post("/states/push", summary="Take in saved model states, checked whole (sync)",
             responses=CONFLICT)
def states_push(body: StatesPush, svc: Svc, who: Who) -> dict[str, Any]:
    """Check the tar whole (checksums, addresses, every chunk a session needs: 409 when it is
    not; a key of one user may send only that user's chats: 403), then write it; nothing is
    written otherwise."""
    user = _reach(who)
    try:
        with svc.lock:
            carried = state_peer.unpacked(_states(svc), svc.memory.store, body.tar, user)
    except state_peer.NotTheirs as exc:
        raise Forbidden(exc.field, exc.problem, exc.fix) from None
    except InvalidInput as exc:
        raise Conflict(exc.field, exc.problem, exc.fix) from None
    return carried.to_dict() if carried else {"sessions": [], "chunks": 0, "bytes": 0,
                                              "contexts": 0}


def _states(svc: Service) -> StateStore:
    return StateStore(state_root(svc.config.data))


def _asked(who: Principal, asked: str | None) -> str | None:
    """The user whose events (or states) a request moves: the one it asks for, which a key of
    one user may name only as itself; None for every user's."""
    user = _reach(who)
    if asked is not None and user is not None and asked != user:
        raise Forbidden("user", f"this key replicates {user!r}'s memories only, not "
                        f"{asked!r}'s", "ask for the key's own user, or use a key with "
                        "the any-user scope")
    return asked or user


def _check_owner(events: list[Event], user: str, owners: Mapping[str, str]) -> None:
    """Refuse the batch unless every event is about `user`'s memories: held here for them,
    or added for them earlier in the batch (the client sends in merge order). An event of a
    memory this store does not hold passes only when it carries nothing (a redacted stub or a
    forget): it folds to nothing."""
    known = dict(owners)
    for event in sorted(events, key=lambda e: (e.hlc, e.device_id, e.seq)):
        if event.type is EventType.ADDED and event.payload is not None:
            known.setdefault(event.memory_id or "", str(event.payload["memory"]["user_id"]))
        for memory_id in targets(event):
            owner = known.get(memory_id)
            if owner == user or (owner is None and (
                    event.redacted or event.type is EventType.FORGOTTEN)):
                continue
            raise Forbidden("events", f"event {event.id} touches memory {memory_id}, which "
                            f"{'belongs to another user' if owner else 'this store lacks'}",
                            f"this key may send only {user!r}'s events; nothing was applied "
                            "(sync this device with a key that has the any-user scope)")
