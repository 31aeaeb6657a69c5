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
from engram.plm.teacher import logged
from engram.server.access import READ, WRITE, Principal
from engram.server.service import ServerConfig, Service
from engram.server.upstream import Upstream, load_upstream

router = APIRouter(prefix="/v1", tags=["openai proxy"])
OPTIONS = {"session_id": str, "budget_tokens": int, "include_sensitive": bool, "remember": bool}
DEFAULT_SESSION = "openai-proxy"
log = logging.getLogger("engram.server")


def upstream_of(config: ServerConfig) -> Upstream | None:
    return load_upstream(config.upstream, config.model, config.upstream_key,
                         config.upstream_local)


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
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                 "schema": {"type": "object", "required": ["model", "messages"], "properties": {
                     "model": {"type": "string"}, "messages": {"type": "array"},
                     "stream": {"type": "boolean"}, "user": {"type": "string"},
                     "engram": {"type": "object"}}},
                 "example": {"model": "gpt-4o-mini", "messages": [
                     {"role": "user", "content": "What should I cook tonight?"}],
                     "engram": {"session_id": "s1"}}}}}})
async def chat_completions(request: Request) -> Response:
    svc: Service = request.app.state.service
    who: Principal = request.state.principal
    who.require(READ)
    body = _parse(await request.body())
    options = _options(body.pop("engram", None))
    upstream = _upstream(request)
    user = who.acting_user(body.get("user") if isinstance(body.get("user"), str) else None)
    said = _last_user_text(body["messages"])
    if said:
        include = upstream.local or svc.config.send_sensitive or \
            bool(options.get("include_sensitive", False))
        plan = await run_in_threadpool(
            svc.context, who, query=said, user_id=user,
            budget_tokens=options.get("budget_tokens", svc.config.proxy_budget_tokens),
            style="openai", include_sensitive=include, via="proxy")
        if plan.memories:
            body["messages"] = _with_memories(body["messages"],
                                              ctx.render(plan.memories, "openai"))
    session = options.get("session_id") or request.headers.get("x-engram-session") \
        or DEFAULT_SESSION
    record = bool(said) and options.get("remember", True) and WRITE in who.scopes

    def done(answer: str) -> None:
        """Record the exchange; a turn that cannot be kept must not cost the user the answer."""
        if not record:
            return
        try:
            turn = svc.turn(who, said, answer or None, user_id=user, session_id=session)
            svc.locked(lambda: logged(svc.memory, turn, body.get("model")))
        except EngramError as exc:
            log.warning("proxy: the exchange was answered but not recorded: %s", exc)

    return await upstream.chat(body, done)


def _parse(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidInput("body", "is not valid JSON",
                           "send a chat completion request as a JSON object") from None
    if not isinstance(body, dict):
        raise InvalidInput("body", "is not a JSON object", "send {model, messages, …}")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or \
            not all(isinstance(m, dict) for m in messages):
        raise InvalidInput("messages", "must be a non-empty list of message objects",
                           'send e.g. [{"role": "user", "content": "hello"}]')
    return body


def _options(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("engram", "must be an object",
                           f"use keys: {', '.join(OPTIONS)}")
    for key, item in value.items():
        kind = OPTIONS.get(key)
        if kind is None:
            raise InvalidInput(f"engram.{key}", "is not an option",
                               f"use keys: {', '.join(OPTIONS)}")
        if not isinstance(item, kind) or (kind is int and isinstance(item, bool)):
            raise InvalidInput(f"engram.{key}", f"must be a {kind.__name__}",
                               f"pass a {kind.__name__} value")
    return dict(value)


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
