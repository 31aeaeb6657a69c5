"""Ollama's own HTTP API: `/api/chat` for chat, `/api/generate` for its `context` token array.

The context array is the model's state after a prompt and answer; sending it back with the
next prompt continues the conversation without re-sending it. `generate()` returns it so a
caller can persist it per session (the distributed-memory seed's context token preservation).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx

from engram.errors import InvalidInput
from engram.llm.base import (
    Message,
    ProviderError,
    ProviderUnreachable,
    RetryPolicy,
    call_with_retry,
    check_messages,
    check_timeout,
    error_text,
    retry_after,
    status_fix,
    stream_with_retry,
)

DEFAULT_HOST = "http://127.0.0.1:11434"
TOP_LEVEL = frozenset({"format", "keep_alive", "think", "template", "raw", "images", "tools"})
RENAMED = {"max_tokens": "num_predict"}  # OpenAI's name → Ollama's option


class Generation(NamedTuple):
    """One `/api/generate` answer and the context to send with the next prompt."""

    text: str
    context: list[int]


class GenerationStream:
    """Iterate for the answer's pieces; `context` is set once the last piece has arrived."""

    def __init__(self, start: Callable[[GenerationStream], Iterator[str]],
                 retry: RetryPolicy) -> None:
        self.context: list[int] | None = None
        self._pieces = stream_with_retry(lambda: start(self), retry)

    def __iter__(self) -> Iterator[str]:
        return self._pieces


class OllamaProvider:
    """A model served by Ollama (default http://127.0.0.1:11434, or OLLAMA_HOST); no key needed
    locally, OLLAMA_API_KEY is sent as a Bearer token when set."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 timeout_s: float = 120.0, retry: RetryPolicy | None = None) -> None:
        if not model:
            raise InvalidInput("model", "ollama: needs a model name", "use e.g. ollama:phi3")
        self.model, self.name = model, f"ollama:{model}"
        self.base_url = ollama_url(base_url or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST)
        self.timeout_s = check_timeout(timeout_s)
        self.retry = retry or RetryPolicy()
        key = api_key or os.environ.get("OLLAMA_API_KEY")  # Ollama's cloud, or an auth proxy
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(base_url=self.base_url, timeout=self.timeout_s,
                                    headers=headers)

    def complete(self, messages: Sequence[Message], **options: Any) -> str:
        body = self._body(messages=check_messages(messages), stream=False, options=options)
        answer = call_with_retry(lambda: self._post("/api/chat", body), self.retry)
        return str(answer.get("message", {}).get("content", ""))

    def stream(self, messages: Sequence[Message], **options: Any) -> Iterator[str]:
        body = self._body(messages=check_messages(messages), stream=True, options=options)

        def start() -> Iterator[str]:
            for line in self._lines("/api/chat", body):
                if line.get("message", {}).get("content"):
                    yield str(line["message"]["content"])

        return stream_with_retry(start, self.retry)

    def generate(self, prompt: str, *, context: Sequence[int] | None = None,
                 system: str | None = None, **options: Any) -> Generation:
        """Answer `prompt` continuing from `context` (a previous Generation's); keep the new one."""
        body = self._generate_body(prompt, context, system, stream=False, options=options)
        answer = call_with_retry(lambda: self._post("/api/generate", body), self.retry)
        return Generation(str(answer.get("response", "")), _context(answer))

    def generate_stream(self, prompt: str, *, context: Sequence[int] | None = None,
                        system: str | None = None, **options: Any) -> GenerationStream:
        """As generate(), piece by piece; read `.context` after the loop."""
        body = self._generate_body(prompt, context, system, stream=True, options=options)

        def start(sink: GenerationStream) -> Iterator[str]:
            for line in self._lines("/api/generate", body):
                if line.get("response"):
                    yield str(line["response"])
                if line.get("done"):
                    sink.context = _context(line)

        return GenerationStream(start, self.retry)

    def close(self) -> None:
        self._client.close()

    def _generate_body(self, prompt: str, context: Sequence[int] | None, system: str | None,
                       *, stream: bool, options: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(prompt, str):
            raise InvalidInput("prompt", "must be a string", "pass the prompt text as a str")
        if context is not None and not all(isinstance(t, int) for t in context):
            raise InvalidInput("context", "must be a list of ints (token ids)",
                               "pass the context of a previous Generation unchanged")
        extra: dict[str, Any] = {"prompt": prompt}
        if context:
            extra["context"] = list(context)
        if system is not None:
            extra["system"] = system
        return self._body(stream=stream, options=options, **extra)

    def _body(self, *, stream: bool, options: dict[str, Any], **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, **fields, "stream": stream}
        model_options = {RENAMED.get(k, k): v for k, v in options.items() if k not in TOP_LEVEL}
        body.update({k: v for k, v in options.items() if k in TOP_LEVEL})
        if model_options:
            body["options"] = model_options
        return body

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise self._unreachable(path, exc) from exc
        if response.status_code >= 400:
            raise self._status_error(path, response)
        answer = response.json()
        if not isinstance(answer, dict):
            raise ProviderError(self.name, self._url(path), "answered with something not JSON",
                                "check that OLLAMA_HOST points at Ollama")
        return answer

    def _lines(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The NDJSON objects of a streamed answer; an `error` line raises."""
        try:
            with self._client.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._status_error(path, response)
                for raw in response.iter_lines():
                    if not raw.strip():
                        continue
                    line = json.loads(raw)
                    if "error" in line:
                        raise ProviderError(self.name, self._url(path),
                                            f"failed mid-answer: {line['error']}",
                                            "see the Ollama server's log")
                    yield line
                    if line.get("done"):
                        return
        except httpx.HTTPError as exc:
            raise self._unreachable(path, exc) from exc

    def _status_error(self, path: str, response: httpx.Response) -> ProviderError:
        try:
            text = error_text(response.json(), response.text)
        except ValueError:
            text = response.text or response.reason_phrase
        status = response.status_code
        fix = (f"run `ollama pull {self.model}` or check the model name" if status == 404
               else status_fix(status, None))
        return ProviderError(self.name, self._url(path), f"answered {status}: {text}", fix,
                             status, retry_after(response.headers))

    def _unreachable(self, path: str, exc: httpx.HTTPError) -> ProviderUnreachable:
        if isinstance(exc, httpx.TimeoutException):
            return ProviderUnreachable(self.name, self._url(path),
                                       f"gave no answer within {self.timeout_s:g} s",
                                       "raise timeout_s= (a cold model can take minutes to load)")
        return ProviderUnreachable(self.name, self._url(path), f"cannot be reached ({exc})",
                                   "start Ollama (`ollama serve`) or set OLLAMA_HOST "
                                   "(or the @URL of the model) to where it runs")

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def ollama_url(host: str) -> str:
    """OLLAMA_HOST as Ollama reads it: `host`, `host:port` or a URL; no port means 11434
    without a scheme; a bind-all address (0.0.0.0) means this machine."""
    host = host.strip().rstrip("/")
    has_scheme = "://" in host
    parts = urlsplit(host if has_scheme else f"http://{host}")
    try:
        port = parts.port
    except ValueError:
        raise InvalidInput("OLLAMA_HOST", f"{host!r} has a bad port",
                           "use host:port, e.g. 127.0.0.1:11434") from None
    if port is None:
        port = (443 if parts.scheme == "https" else 80) if has_scheme else 11434
    name = parts.hostname or "127.0.0.1"
    if name in ("0.0.0.0", "::"):
        name = "127.0.0.1"
    if ":" in name:
        name = f"[{name}]"
    return f"{parts.scheme}://{name}:{port}{parts.path.rstrip('/')}"


def _context(answer: dict[str, Any]) -> list[int]:
    return [int(t) for t in answer.get("context") or []]
