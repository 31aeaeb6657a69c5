"""OpenAI's chat completions through the official SDK, at any base URL.

The same wire format is served by vLLM, llama.cpp's server, LM Studio and most gateways, so
`openai:MODEL@http://127.0.0.1:8000/v1` reaches them; a local server needs no key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import openai
from openai import Stream
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from engram.errors import InvalidInput
from engram.llm.base import (
    ErrorMap,
    Message,
    ProviderError,
    RetryPolicy,
    call_with_retry,
    check_messages,
    check_timeout,
    stream_with_retry,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
LOCAL_KEY = "not-needed"  # the SDK insists on a key; local servers ignore it


class OpenAIProvider:
    """A model behind an OpenAI-compatible `/chat/completions` endpoint."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 timeout_s: float = 60.0, retry: RetryPolicy | None = None) -> None:
        if not model:
            raise InvalidInput("model", "openai: needs a model name",
                               "use e.g. openai:gpt-4o-mini")
        self.model, self.name = model, f"openai:{model}"
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL")
                         or DEFAULT_BASE_URL).rstrip("/")
        self.timeout_s = check_timeout(timeout_s)
        self.retry = retry or RetryPolicy()
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if urlsplit(self.base_url).hostname == urlsplit(DEFAULT_BASE_URL).hostname:
                raise InvalidInput("OPENAI_API_KEY", f"not set, and {self.base_url} needs one",
                                   "export OPENAI_API_KEY=sk-… (or pass api_key=); for a local "
                                   "server set OPENAI_BASE_URL or use openai:MODEL@URL")
            key = LOCAL_KEY
        self._client = openai.OpenAI(api_key=key, base_url=self.base_url,
                                     timeout=self.timeout_s, max_retries=0)
        self._errors = ErrorMap(
            provider=self.name, url=self.base_url, key_env="OPENAI_API_KEY",
            timeout_s=self.timeout_s,
            unreachable_fix="start the server, or fix OPENAI_BASE_URL (or the @URL of the model)",
            timeouts=(openai.APITimeoutError,), connections=(openai.APIConnectionError,))

    def complete(self, messages: Sequence[Message], **options: Any) -> str:
        checked = check_messages(messages)
        return call_with_retry(lambda: self._complete_once(checked, options), self.retry)

    def stream(self, messages: Sequence[Message], **options: Any) -> Iterator[str]:
        checked = check_messages(messages)
        return stream_with_retry(lambda: self._stream_once(checked, options), self.retry)

    def _complete_once(self, messages: list[dict[str, str]], options: dict[str, Any]) -> str:
        try:
            answer = cast(ChatCompletion, self._client.chat.completions.create(
                model=self.model, messages=messages, stream=False, **options))  # type: ignore[arg-type]
        except openai.OpenAIError as exc:
            raise self._errors(exc) from exc
        if not answer.choices:
            raise ProviderError(self.name, self.base_url, "answered with no choices",
                                "check that the server implements /chat/completions")
        return answer.choices[0].message.content or ""

    def _stream_once(self, messages: list[dict[str, str]],
                     options: dict[str, Any]) -> Iterator[str]:
        try:
            chunks = cast(Stream[ChatCompletionChunk], self._client.chat.completions.create(
                model=self.model, messages=messages, stream=True, **options))  # type: ignore[arg-type]
            with chunks:
                for chunk in chunks:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content
        except openai.OpenAIError as exc:
            raise self._errors(exc) from exc
