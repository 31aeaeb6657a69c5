"""Anthropic's Messages API through the official SDK.

System messages become the `system` parameter (Claude takes no system role in `messages`),
and `max_tokens`, which the API requires, defaults to 1024.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import anthropic

from engram.errors import InvalidInput
from engram.llm.base import (
    ErrorMap,
    Message,
    RetryPolicy,
    call_with_retry,
    check_messages,
    check_timeout,
    stream_with_retry,
)

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MAX_TOKENS = 1024


class AnthropicProvider:
    """A Claude model behind `/v1/messages`."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 timeout_s: float = 60.0, retry: RetryPolicy | None = None,
                 max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        if not model:
            raise InvalidInput("model", "anthropic: needs a model name",
                               "use e.g. anthropic:claude-sonnet-4-5")
        self.model, self.name, self.max_tokens = model, f"anthropic:{model}", max_tokens
        self.base_url = (base_url or os.environ.get("ANTHROPIC_BASE_URL")
                         or DEFAULT_BASE_URL).rstrip("/")
        self.timeout_s = check_timeout(timeout_s)
        self.retry = retry or RetryPolicy()
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise InvalidInput("ANTHROPIC_API_KEY", f"not set, and {self.base_url} needs one",
                               "export ANTHROPIC_API_KEY=sk-ant-… or pass api_key=")
        self._client = anthropic.Anthropic(api_key=key, base_url=self.base_url,
                                           timeout=self.timeout_s, max_retries=0)
        self._errors = ErrorMap(
            provider=self.name, url=self.base_url, key_env="ANTHROPIC_API_KEY",
            timeout_s=self.timeout_s,
            unreachable_fix="check the network, or fix ANTHROPIC_BASE_URL (or the @URL)",
            timeouts=(anthropic.APITimeoutError,), connections=(anthropic.APIConnectionError,))

    def complete(self, messages: Sequence[Message], **options: Any) -> str:
        request = self._request(messages, options)
        return call_with_retry(lambda: self._complete_once(request), self.retry)

    def stream(self, messages: Sequence[Message], **options: Any) -> Iterator[str]:
        request = self._request(messages, options)
        return stream_with_retry(lambda: self._stream_once(request), self.retry)

    def _request(self, messages: Sequence[Message], options: dict[str, Any]) -> dict[str, Any]:
        system, turns = split_system(check_messages(messages))
        if not turns:
            raise InvalidInput("messages", "only system messages; Claude needs a user turn",
                               'add {"role": "user", "content": …}')
        request: dict[str, Any] = {"model": self.model, "messages": turns,
                                   "max_tokens": self.max_tokens, **options}
        if system:
            request["system"] = system
        return request

    def _complete_once(self, request: dict[str, Any]) -> str:
        try:
            answer = self._client.messages.create(**request, stream=False)
        except anthropic.AnthropicError as exc:
            raise self._errors(exc) from exc
        return "".join(block.text for block in answer.content if block.type == "text")

    def _stream_once(self, request: dict[str, Any]) -> Iterator[str]:
        try:
            events = self._client.messages.create(**request, stream=True)
            with events:
                for event in events:
                    if event.type == "content_block_delta" and event.delta.type == "text_delta":
                        yield event.delta.text
        except anthropic.AnthropicError as exc:
            raise self._errors(exc) from exc


def split_system(messages: list[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
    """(the system messages joined by blank lines, the user and assistant turns in order)."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    return system, [m for m in messages if m["role"] != "system"]
