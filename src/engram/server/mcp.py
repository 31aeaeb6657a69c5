"""Engram as an MCP server (the official `mcp` SDK): tools remember, recall, forget, context
and feedback; resources for one memory and for a user's profile.

Two transports, one set of tools: stdio (`engram mcp --user alice`, for Claude Desktop and
other local clients; it acts as that user) and streamable HTTP at /mcp inside `engram serve`
(each request acts as its API key). Tool calls go through the same `Service` as REST, so the
same access rules hold.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError

from engram import context as ctx
from engram.errors import EngramError
from engram.server.access import Principal
from engram.server.service import Service

INSTRUCTIONS = ("Long-term memory. Call `recall` or `context` before answering questions "
                "about the user; call `remember` for durable facts and preferences they share.")
PROFILE_KINDS = ("preference", "fact", "skill", "belief")


def build_mcp(service: Service | None = None, principal: Principal | None = None) -> MCPServer:
    """The MCP server. Over stdio pass the `service` and the `principal` it acts as; over HTTP
    both come from each request (the app's service, the request's key)."""
    server: MCPServer = MCPServer("engram", instructions=INSTRUCTIONS, version="0.1.0",
                                  log_level="WARNING")

    def caller(call: Context | None) -> tuple[Service, Principal]:
        request = getattr(call.request_context, "request", None) if call else None
        if request is not None:
            return request.app.state.service, request.state.principal
        assert service is not None and principal is not None, "stdio needs a service"
        return service, principal

    def run(call: Context, fn: Any) -> Any:
        svc, who = caller(call)
        try:
            return fn(svc, who)
        except EngramError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(description="Remember a text for the user (a fact, preference, event...).")
    def remember(text: str, call: Context, memory_type: str = "fact",
                 tags: list[str] | None = None, session_id: str | None = None,
                 user_id: str | None = None) -> dict[str, Any]:
        entry = run(call, lambda svc, who: svc.remember(
            who, text, user_id, memory_type=memory_type, tags=tags, session_id=session_id))
        return {"id": entry.id, "text": entry.content, "memory_type": entry.memory_type.value}

    @server.tool(description="Recall the user's memories that best match a query, best first.")
    def recall(query: str, call: Context, limit: int = 10,
               user_id: str | None = None) -> list[dict[str, Any]]:
        hits = run(call, lambda svc, who: svc.search(who, query, user_id, limit=limit))
        return [{"id": h.memory.id, "text": h.memory.content, "score": round(h.score, 4),
                 "memory_type": h.memory.memory_type.value,
                 "occurred_at": h.memory.occurred_at.isoformat()} for h in hits]

    @server.tool(description="Forget a memory everywhere (it cannot be recalled afterwards).")
    def forget(memory_id: str, call: Context, reason: str | None = None) -> str:
        run(call, lambda svc, who: svc.forget(who, memory_id, reason))
        return f"forgot {memory_id}"

    @server.tool(description="What to know about the user for a query, within a token budget.")
    def context(query: str, call: Context, budget_tokens: int = 1500,
                style: str = "markdown", user_id: str | None = None) -> str:
        plan: ctx.ContextPlan = run(call, lambda svc, who: svc.context(
            who, query=query, user_id=user_id, budget_tokens=budget_tokens, style=style,
            via="mcp"))
        return plan.text  # the prompt the budget was measured on

    @server.tool(description="Rate a memory: good, bad, or correction (with the right text).")
    def feedback(memory_id: str, rating: str, call: Context,
                 correction: str | None = None) -> dict[str, Any]:
        entry = run(call, lambda svc, who: svc.feedback(who, memory_id, rating, correction))
        return {"id": entry.id, "text": entry.content, "confidence": entry.confidence.overall}

    @server.resource("engram://memory/{memory_id}", mime_type="application/json",
                     description="One memory and its event history.")
    def memory_resource(memory_id: str, call: Context) -> str:
        svc, who = caller(call)
        try:
            entry = svc.visible(who, memory_id)
            events = svc.history(who, memory_id)
        except EngramError as exc:
            raise ResourceError(str(exc)) from None
        return json.dumps({"memory": entry.to_dict(),
                           "history": [e.to_dict() for e in events]}, ensure_ascii=False)

    @server.resource("engram://profile/{user_id}", mime_type="text/markdown",
                     description="What Engram knows about a user, grouped by kind.")
    def profile_resource(user_id: str, call: Context) -> str:
        svc, who = caller(call)
        try:
            user = who.acting_user(user_id)
            entries = [e for kind in PROFILE_KINDS
                       for e in svc.list(who, user, memory_type=kind, limit=50)]
        except EngramError as exc:
            raise ResourceError(str(exc)) from None
        return ctx.render(entries, "markdown")

    return server
