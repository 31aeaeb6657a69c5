"""The OpenAI-compatible memory proxy: any OpenAI client gains memory by changing its base_url.

POST /v1/chat/completions recalls the user's memories for the last user message, adds them
as a system message, forwards the request to the upstream and hands back its answer exactly
as it came (streamed or not); then the exchange is recorded and extracted from. The request
may carry an `engram` object (removed before forwarding): `session_id`, `budget_tokens`,
`include_sensitive`, `remember`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from engram import context as ctx
from engram.errors import EngramError, InvalidInput
from engram.model import check_id
from engram.plm.teacher import logged
from engram.server.access import READ, WRITE, Principal
from engram.server.problems import RESPONSES, UPSTREAM, Malformed
from engram.server.schemas import NON_BLANK
from engram.server.service import ServerConfig, Service
from engram.server.upstream import Upstream, load_upstream
from engram.state.route_proxy import chat_through, routed_upstream

router = APIRouter(prefix="/v1", tags=["openai proxy"], responses={**RESPONSES, **UPSTREAM})
OPTIONS = {"session_id": str, "budget_tokens": int, "include_sensitive": bool, "remember": bool}
BUDGET = (16, 1_000_000)  # budget_tokens, as for POST /context
_TEXT = {"type": "string", "minLength": 1, "pattern": r"\S"}
# What the proxy itself checks; other fields pass to the upstream as they are.
CHAT_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["model", "messages"], "properties": {
        "model": _TEXT, "stream": {"type": "boolean"},
        "user": {**_TEXT, "type": ["string", "null"], "maxLength": 256,
                 "description": "The end user (any-user keys)"},
        "messages": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["role"], "properties": {
                "role": _TEXT, "content": {"type": ["string", "array", "null"]}}}},
        "engram": {"type": ["object", "null"], "additionalProperties": False, "properties": {
            "session_id": {**_TEXT, "maxLength": 256, "pattern": NON_BLANK},  # as check_id
            "budget_tokens": {"type": "integer", "minimum": BUDGET[0], "maximum": BUDGET[1]},
            "include_sensitive": {"type": "boolean"}, "remember": {"type": "boolean"}}}}}
DEFAULT_SESSION = "openai-proxy"
log = logging.getLogger("engram.server")


def upstream_of(config: ServerConfig) -> Upstream | None:
    routed = routed_upstream(config.model, config.upstream_key)  # --model route:edge=…,laptop=…
    if routed is not None:
        return routed
    return load_upstream(config.upstream, config.model, config.upstream_key,
                         config.upstream_local, config.upstream_timeout_s)


def _upstream(request: Request) -> Upstream:
    upstream: Upstream | None = request.app.state.upstream
    if upstream is None:
        raise InvalidInput("upstream", "this server has no model to forward to",
                           "start it with --upstream URL (any OpenAI-compatible server) or "
                           "--model SPEC (e.g. ollama:phi3)")
    return upstream


@router.get("/models", summary="The upstream's models")
async def models(request: Request) -> Response:
    who: Principal = request.state.principal
    who.require(READ)
    return await _upstream(request).models()


@router.post("/chat/completions", summary="Chat through the upstream, with memory",
             responses={200: {"description": "The upstream's answer, as it came", "content": {
                 "application/json": {}, "text/event-stream": {}}}},
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": CHAT_SCHEMA, "example": {"model": "gpt-4o-mini", "messages": [
                     {"role": "user", "content": "What should I cook tonight?"}],
                     "engram": {"session_id": "s1"}}}}}})
async def chat_completions(request: Request) -> Response:
    svc: Service = request.app.state.service
    who: Principal = request.state.principal
    who.require(READ)
    body = _parse(await request.body())
    asked = body.pop("engram", None)
    options = _options({} if asked is None else asked)
    upstream = _upstream(request)
    user = who.acting_user(body.get("user"))
    said = _last_user_text(body["messages"])
    recalled = 0
    if said:
        include = upstream.local or svc.config.send_sensitive or \
            bool(options.get("include_sensitive", False))
        plan = await run_in_threadpool(
            svc.context, who, query=said, user_id=user,
            budget_tokens=options.get("budget_tokens", svc.config.proxy_budget_tokens),
            style="openai", include_sensitive=include, via="proxy")
        recalled = len(plan.memories)
        if plan.memories:
            body["messages"] = _with_memories(body["messages"],
                                              ctx.render(plan.memories, "openai"))
    session = _session(options, request.headers.get("x-engram-session"))
    record = bool(said) and options.get("remember", True) and WRITE in who.scopes

    def done(answer: str, whole: bool, model: str | None = None) -> None:
        """Record the exchange (an answer cut short as incomplete, with nothing extracted; a
        routed one with the model that answered, as its agent_id);
        a turn that cannot be kept must not cost the user the answer."""
        if not record:
            return
        try:
            turn = svc.turn(who, said, answer or None, user_id=user, session_id=session,
                            agent_id=model, complete=whole)
            if whole:  # an answer cut short teaches nothing
                svc.locked(lambda: logged(svc.memory, turn, model or body.get("model")))
        except EngramError as exc:
            log.warning("proxy: the exchange was answered but not recorded: %s", exc)

    return await chat_through(upstream, body, done, recalled)


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise Malformed("body", "is not valid JSON",
                        "send a chat completion request as a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidInput("body", "is not a JSON object", "send {model, messages, …}")
    if not isinstance(body.get("model"), str) or not body["model"].strip():
        raise InvalidInput("model", "is missing or blank", "name the upstream's model")
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise InvalidInput("user", "must be a string", "send the end user's id as text")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise InvalidInput("stream", "must be true or false", "send a JSON boolean")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or \
            not all(isinstance(m, dict) for m in messages):
        raise InvalidInput("messages", "must be a non-empty list of message objects",
                           'send e.g. [{"role": "user", "content": "hello"}]')
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not role.strip():
            raise InvalidInput(f"messages[{i}].role", "is missing or blank",
                               "give each message a role: system, user, assistant...")
        if content is not None and not isinstance(content, str | list):
            raise InvalidInput(f"messages[{i}].content", "must be text or a list of parts",
                               'send e.g. "hello"')
    return body


def _options(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput("engram", "must be an object",
                           f"use keys: {', '.join(OPTIONS)}")
    options: dict[str, Any] = {}
    for key, item in value.items():
        kind = OPTIONS.get(key)
        if kind is None:
            raise InvalidInput(f"engram.{key}", "is not an option",
                               f"use keys: {', '.join(OPTIONS)}")
        if kind is int and isinstance(item, float) and item.is_integer():
            item = int(item)  # 1500.0 is an integer to JSON
        if not isinstance(item, kind) or (kind is int and isinstance(item, bool)):
            raise InvalidInput(f"engram.{key}", f"must be a {kind.__name__}",
                               f"pass a {kind.__name__} value")
        options[key] = item
    budget = options.get("budget_tokens", BUDGET[0])
    if not BUDGET[0] <= budget <= BUDGET[1]:
        raise InvalidInput("engram.budget_tokens", f"{budget} is out of range",
                           f"give a whole number {BUDGET[0]}-{BUDGET[1]}")
    return options


def _session(options: dict[str, Any], header: str | None) -> str:
    """The session the exchange is recorded in: `engram.session_id`, else the
    X-Engram-Session header, else one shared proxy session. A blank one is refused."""
    if "session_id" in options:
        return str(check_id(options["session_id"], "engram.session_id"))
    if header is not None:
        return str(check_id(header, "x-engram-session"))
    return DEFAULT_SESSION


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    """The last user message's text (string content, or the text parts of a list)."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content.strip()
        if isinstance(content, list):
            return " ".join(p.get("text", "") for p in content
                            if isinstance(p, dict) and p.get("type") == "text").strip()
        return ""
    return ""


def _with_memories(messages: list[dict[str, Any]], block: str) -> list[dict[str, Any]]:
    """The client's messages with the memory block as a system message after its own
    leading system messages (its instructions stay first)."""
    lead = 0
    while lead < len(messages) and messages[lead].get("role") in ("system", "developer"):
        lead += 1
    return [*messages[:lead], {"role": "system", "content": block}, *messages[lead:]]
