"""Routing in the OpenAI-compatible proxy: `engram serve --model route:edge=…,laptop=…` sends
each chat request to the edge or the laptop upstream by its complexity score (`route.py`), to
the other when the chosen one is unreachable, times out or fails (5xx, 429), and says where
and why in the response headers (`x-engram-route`, `-model`, `-score`, `-reason`, `-fallback`).
A side is an OpenAI-compatible base URL (its bytes pass through) or an Engram model spec.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from fastapi import Response

from engram.llm import load_provider
from engram.llm.base import RETRYABLE, ProviderError
from engram.server.upstream import OpenAIUpstream, ProviderUpstream, Upstream
from engram.state.route import (
    SIDES,
    Decision,
    RouteSpec,
    choose,
    complexity,
    falls_back,
    parse_route,
)

Record = Callable[..., None]  # the proxy's `done(answer, model=…)`


class RoutedUpstream:
    """Two upstreams, the edge and the laptop, behind the proxy's Upstream protocol."""

    def __init__(self, spec: RouteSpec, api_key: str | None = None) -> None:
        self.spec = spec
        self.sides: dict[str, Upstream] = {}
        self.models_of: dict[str, str] = {}
        for name in SIDES:
            target = spec.side(name)
            if target.startswith(("http://", "https://")):
                self.sides[name] = OpenAIUpstream(target, api_key,
                                                  timeout_s=spec.timeout_s or 300.0)
                self.models_of[name] = target
            else:
                options: dict[str, Any] = {} if spec.timeout_s is None else \
                    {"timeout_s": spec.timeout_s}
                provider = load_provider(target, **options)
                self.sides[name] = ProviderUpstream(provider)
                self.models_of[name] = provider.name

    @classmethod
    def from_spec(cls, text: str, api_key: str | None = None) -> RoutedUpstream:
        return cls(parse_route(text), api_key)

    @property
    def local(self) -> bool:
        return all(side.local for side in self.sides.values())

    async def models(self) -> Response:
        return await self.sides["laptop"].models()

    async def chat(self, body: dict[str, Any], done: Record) -> Response:
        return await self.routed(body, done, 0)

    async def routed(self, body: dict[str, Any], done: Record, memories: int) -> Response:
        text = _last_user_text(body.get("messages") or [])
        score = complexity(text, memories)
        chosen, reason = choose(score, self.spec.threshold)
        other = "edge" if chosen == "laptop" else "laptop"
        fallback = ""
        for side in (chosen, other):
            model = self._model(side, body)
            try:
                response = await self.sides[side].chat(body, partial(done, model=model))
            except ProviderError as exc:
                if side == other or not falls_back(exc):
                    raise
                fallback = f"{chosen} failed ({exc.problem}), answered by {other}"
                continue
            if side == chosen and response.status_code in RETRYABLE:
                fallback = f"{chosen} answered {response.status_code}, answered by {other}"
                continue
            decision = Decision(side, model, score.value, reason, fallback)
            response.headers.update(decision.headers())
            return response
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def aclose(self) -> None:
        for side in self.sides.values():
            await side.aclose()

    def _model(self, side: str, body: dict[str, Any]) -> str:
        target = self.models_of[side]
        if target.startswith(("http://", "https://")):
            return f"{body.get('model', '')}@{target}"
        return target


async def chat_through(upstream: Upstream, body: dict[str, Any], done: Record,
                       memories: int) -> Response:
    """The proxy's one call into its upstream: routed ones also weigh how many memories
    the request was given."""
    if isinstance(upstream, RoutedUpstream):
        return await upstream.routed(body, done, memories)
    return await upstream.chat(body, done)


def routed_upstream(model: str | None, api_key: str | None) -> RoutedUpstream | None:
    """The routed upstream a `--model route:…` spec names, or None for any other model."""
    if model and model.startswith("route:"):
        return RoutedUpstream.from_spec(model, api_key)
    return None


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""
