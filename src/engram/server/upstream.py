"""Where the proxy's chat requests go: an OpenAI-compatible server (its bytes pass through
untouched, streamed or not), or an Engram provider (`engram.llm`) whose answers are written
in OpenAI's wire format.

The proxy tells the truth about what came back: an answer that is not JSON (or not an event
stream, when one was asked for) is a 502 naming what it was; no answer within the timeout is
a 504; a stream that stops before its end (no finish_reason, no [DONE], a dropped connection)
is recorded as incomplete, and the client gets an error event after the part it was sent."""

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
from engram.llm.base import ProviderError, ProviderUnreachable
from engram.server.metrics import UPSTREAM_ERRORS, UPSTREAM_LATENCY
from engram.server.problems import UpstreamTimeout, error_body

# Called with the answer once it has been sent, and whether it is whole (a stream that
# stopped early is not; what it holds is kept as incomplete, never extracted from).
Done = Callable[[str, bool], None]
DEFAULT_TIMEOUT_S = 30.0  # to the first byte of an answer, and between bytes of a stream



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

    def __init__(self, base_url: str, api_key: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, local: bool | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._local, self.timeout_s = local, timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(base_url=self.base_url, headers=headers,
                                        timeout=httpx.Timeout(timeout_s,
                                                              connect=min(10.0, timeout_s)),
                                        limits=httpx.Limits(max_connections=256))

    @property
    def local(self) -> bool:
        return is_loopback(self.base_url) if self._local is None else self._local

    async def models(self) -> Response:
        try:
            answer = await self.client.get("/models")
        except httpx.TransportError as exc:
            raise self._failed(exc) from None
        if not _is_json(answer.headers):
            raise self._not_json(answer, "JSON")
        return _pass(answer.status_code, answer.content, answer.headers)

    async def chat(self, body: dict[str, Any], done: Done) -> Response:
        request = self.client.build_request("POST", "/chat/completions", json=body)
        started = time.perf_counter()
        try:
            answer = await self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise self._failed(exc) from None
        UPSTREAM_LATENCY.observe(time.perf_counter() - started)
        streamed = answer.status_code == 200 and bool(body.get("stream"))
        if not streamed:
            try:
                content = await answer.aread()
            except httpx.TransportError as exc:
                raise self._failed(exc) from None
            finally:
                await answer.aclose()
            if not _is_json(answer.headers):
                raise self._not_json(answer, "JSON")
            if answer.status_code == 200:
                text = _answer_text(content)
                if text is None:
                    raise ProviderError("upstream", self.base_url, "answered 200 without a "
                                        "chat completion in it", "check that --upstream is "
                                        "an OpenAI-compatible /v1 URL", status=200)
                await run_in_threadpool(done, text, True)
            return _pass(answer.status_code, content, answer.headers)
        if "text/event-stream" not in answer.headers.get("content-type", ""):
            await answer.aclose()
            raise self._not_json(answer, "an event stream (text/event-stream)")

        async def relay() -> AsyncIterator[bytes]:
            """The upstream's bytes as they come, one chunk behind: the last is held back
            until the exchange is recorded, so a client that has read the whole answer can
            already recall it. A stream that stops early ends with an error event."""
            pieces: list[str] = []
            sse, held, failure = SSEText(pieces), b"", None
            try:
                async for chunk in answer.aiter_raw():
                    sse.feed(chunk)
                    if held:
                        yield held
                    held = chunk
            except httpx.TransportError as exc:
                failure = self._failed(exc).problem
            finally:
                await answer.aclose()
            if failure is None and not sse.finished:
                failure = "ended the stream before the answer was finished (no finish_reason)"
                UPSTREAM_ERRORS.labels("incomplete").inc()
            await run_in_threadpool(done, "".join(pieces), failure is None)
            yield held
            if failure is not None:
                yield stream_error(self.base_url, failure)

        return StreamingResponse(relay(), status_code=200,
                                 media_type=answer.headers.get("content-type"),
                                 headers={"Cache-Control": "no-cache"})

    async def aclose(self) -> None:
        await self.client.aclose()

    def _failed(self, exc: httpx.TransportError) -> ProviderUnreachable:
        """What went wrong, for the client (and counted for /metrics)."""
        failure = self._failure(exc)
        UPSTREAM_ERRORS.labels(type(failure).__name__).inc()
        return failure

    def _failure(self, exc: httpx.TransportError) -> ProviderUnreachable:
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return UpstreamTimeout("upstream", self.base_url, f"gave no answer within "
                                   f"{self.timeout_s:g} s", "start the server with a larger "
                                   "--upstream-timeout, or check the upstream")
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return ProviderUnreachable("upstream", self.base_url, "dropped the connection "
                                       f"mid-answer ({exc})", "check the upstream's log")
        why = str(exc) or type(exc).__name__
        return ProviderUnreachable("upstream", self.base_url, f"cannot be reached ({why})",
                                   "start the upstream server or fix --upstream")

    def _not_json(self, answer: httpx.Response, wanted: str) -> ProviderError:
        UPSTREAM_ERRORS.labels("NotJSON").inc()
        kind = answer.headers.get("content-type", "no content type")
        return ProviderError("upstream", self.base_url, f"answered {answer.status_code} with "
                             f"{kind}, not {wanted}", "check that --upstream is an "
                             "OpenAI-compatible /v1 URL (not a web page or a login portal)",
                             status=answer.status_code)


def stream_error(url: str, problem: str) -> bytes:
    """The SSE event that tells a client its streamed answer stopped early (OpenAI's clients
    raise it as an API error)."""
    body = error_body(502, "upstream", f"{url} {problem}", "the answer above is incomplete; "
                      "ask again")
    return f"data: {json.dumps(body)}\n\n".encode()


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
            await run_in_threadpool(done, text, True)
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
            try:
                for piece in self.provider.stream(messages):
                    pieces.append(piece)
                    yield chunk({"content": piece})
            except ProviderError as exc:
                done("".join(pieces), False)
                yield stream_error(self.base_url or self.provider.name, exc.problem).decode()
                return
            done("".join(pieces), True)  # recorded before the client sees the end
            yield chunk({}, "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(iterate_in_threadpool(chunks()),
                                 media_type="text/event-stream")

    async def aclose(self) -> None:
        return None


class SSEText:
    """Collects the assistant's text from OpenAI chat-completion chunks as they pass, and
    whether the stream finished (a finish_reason, or [DONE])."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces, self._buffer, self.finished = pieces, b"", False

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            data = line.strip()
            if not data.startswith(b"data:"):
                continue
            payload = data[5:].strip()
            if payload == b"[DONE]":
                self.finished = True
                continue
            try:
                event = json.loads(payload)
                choice = event["choices"][0]
                delta = choice.get("delta") or {}
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                continue
            if choice.get("finish_reason"):
                self.finished = True
            if isinstance(delta.get("content"), str):
                self.pieces.append(delta["content"])


def _answer_text(content: bytes) -> str | None:
    try:
        text = json.loads(content)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return text if isinstance(text, str) else None


def _is_json(headers: httpx.Headers) -> bool:
    kind: str = headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def _pass(status: int, content: bytes, headers: httpx.Headers) -> Response:
    """The upstream's answer as it came (its status, body and content type)."""
    return Response(content, status_code=status,
                    media_type=headers.get("content-type", "application/json"))


def load_upstream(upstream: str | None, model: str | None, api_key: str | None,
                  local: bool | None = None,
                  timeout_s: float = DEFAULT_TIMEOUT_S) -> Upstream | None:
    if upstream:
        return OpenAIUpstream(upstream, api_key, timeout_s, local=local)
    if model:
        return ProviderUpstream(load_provider(model))
    return None
