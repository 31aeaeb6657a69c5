"""Where the proxy's chat requests go: an OpenAI-compatible server (its bytes pass through
untouched, streamed or not), or an Engram provider (`engram.llm`) whose answers are written
in OpenAI's wire format."""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from engram.llm import Provider, load_provider
from engram.llm.base import ProviderUnreachable

Done = Callable[[str], None]  # called with the whole answer once it has been sent


class Upstream(Protocol):
    @property
    def local(self) -> bool:
        """True when the model runs on this machine (loopback): sensitive memories may go."""
        ...

    async def models(self) -> Response: ...

    async def chat(self, body: dict[str, Any], done: Done) -> Response: ...

    async def aclose(self) -> None: ...


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OpenAIUpstream:
    """Any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, LM Studio, Ollama's /v1)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 300.0,
                 local: bool | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._local = local
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(base_url=self.base_url, headers=headers,
                                        timeout=httpx.Timeout(timeout_s, connect=10.0),
                                        limits=httpx.Limits(max_connections=256))

    @property
    def local(self) -> bool:
        return is_loopback(self.base_url) if self._local is None else self._local

    async def models(self) -> Response:
        try:
            answer = await self.client.get("/models")
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        return _pass(answer.status_code, answer.content, answer.headers)

    async def chat(self, body: dict[str, Any], done: Done) -> Response:
        request = self.client.build_request("POST", "/chat/completions", json=body)
        try:
            answer = await self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if answer.status_code != 200 or not body.get("stream"):
            content = await answer.aread()
            await answer.aclose()
            text = _answer_text(content) if answer.status_code == 200 else None
            if text is not None:
                await run_in_threadpool(done, text)
            return _pass(answer.status_code, content, answer.headers)

        async def relay() -> AsyncIterator[bytes]:
            """The upstream's bytes as they come, one chunk behind: the last is held back
            until the exchange is recorded, so a client that has read the whole answer can
            already recall it."""
            pieces: list[str] = []
            sse, held = SSEText(pieces), b""
            try:
                async for chunk in answer.aiter_raw():
                    sse.feed(chunk)
                    if held:
                        yield held
                    held = chunk
            finally:
                await answer.aclose()
            await run_in_threadpool(done, "".join(pieces))
            yield held

        return StreamingResponse(relay(), status_code=200,
                                 media_type=answer.headers.get("content-type"),
                                 headers={"Cache-Control": "no-cache"})

    async def aclose(self) -> None:
        await self.client.aclose()

    def _unreachable(self, exc: Exception) -> ProviderUnreachable:
        return ProviderUnreachable("upstream", self.base_url, f"cannot be reached ({exc})",
                                   "start the upstream server or fix --upstream")


class ProviderUpstream:
    """An Engram provider (Ollama, Anthropic, LiteLLM…) behind the OpenAI wire format."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.base_url = str(getattr(provider, "base_url", "") or "")

    @property
    def local(self) -> bool:
        return bool(self.base_url) and is_loopback(self.base_url)

    async def models(self) -> Response:
        return JSONResponse({"object": "list", "data": [
            {"id": self.provider.name, "object": "model", "created": 0, "owned_by": "engram"}]})

    async def chat(self, body: dict[str, Any], done: Done) -> Response:
        messages = [m for m in body["messages"] if isinstance(m.get("content"), str)]
        head = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()),
                "model": body.get("model") or self.provider.name}
        if not body.get("stream"):
            text = await run_in_threadpool(self.provider.complete, messages)
            await run_in_threadpool(done, text)
            return JSONResponse({**head, "object": "chat.completion", "choices": [
                {"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": text}}]})

        def chunk(delta: dict[str, str], finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return "data: " + json.dumps({**head, "object": "chat.completion.chunk",
                                         "choices": [choice]}) + "\n\n"

        def chunks() -> Iterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            pieces = []
            for piece in self.provider.stream(messages):
                pieces.append(piece)
                yield chunk({"content": piece})
            done("".join(pieces))  # recorded before the client sees the end
            yield chunk({}, "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(iterate_in_threadpool(chunks()),
                                 media_type="text/event-stream")

    async def aclose(self) -> None:
        return None


class SSEText:
    """Collects the assistant's text from OpenAI chat-completion chunks as they pass."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces, self._buffer = pieces, b""

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            data = line.strip()
            if not data.startswith(b"data:"):
                continue
            payload = data[5:].strip()
            if payload == b"[DONE]":
                continue
            try:
                event = json.loads(payload)
                delta = event["choices"][0].get("delta") or {}
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                continue
            if isinstance(delta.get("content"), str):
                self.pieces.append(delta["content"])


def _answer_text(content: bytes) -> str | None:
    try:
        text = json.loads(content)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return text if isinstance(text, str) else None


def _pass(status: int, content: bytes, headers: httpx.Headers) -> Response:
    """The upstream's answer as it came (its status, body and content type)."""
    return Response(content, status_code=status,
                    media_type=headers.get("content-type", "application/json"))


def load_upstream(upstream: str | None, model: str | None, api_key: str | None,
                  local: bool | None = None) -> Upstream | None:
    if upstream:
        return OpenAIUpstream(upstream, api_key, local=local)
    if model:
        return ProviderUpstream(load_provider(model))
    return None
