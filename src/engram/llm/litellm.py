"""Any of LiteLLM's hundred backends through `litellm.completion`.

`litellm:MODEL` passes MODEL to LiteLLM unchanged (`litellm:groq/llama3-8b-8192`,
`litellm:bedrock/…`); keys come from the variables LiteLLM itself reads. LiteLLM is imported
on first use (it is slow to import), with its remote price list switched off so that nothing
touches the network at import.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

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


def import_litellm() -> Any:
    """The litellm module, imported offline; a clear error when the extra is missing."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError:
        raise InvalidInput("model", "litellm: models need the litellm package, not installed",
                           "pip install 'engram-memory[litellm]'") from None
    return litellm


class LiteLLMProvider:
    """A model LiteLLM knows how to call; retries are Engram's, LiteLLM's are switched off."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 timeout_s: float = 60.0, retry: RetryPolicy | None = None) -> None:
        if not model:
            raise InvalidInput("model", "litellm: needs a model name",
                               "use e.g. litellm:openai/gpt-4o-mini or litellm:ollama/phi3")
        self.model, self.name = model, f"litellm:{model}"
        self.base_url, self.api_key = base_url, api_key
        self.timeout_s = check_timeout(timeout_s)
        self.retry = retry or RetryPolicy()
        self._litellm = import_litellm()
        import openai  # LiteLLM's exceptions subclass the OpenAI SDK's

        self._sdk_error: type[Exception] = openai.OpenAIError
        self._errors = ErrorMap(
            provider=self.name, url=base_url or f"the {model.split('/')[0]} endpoint",
            key_env=None, timeout_s=self.timeout_s,
            unreachable_fix="start the server or fix the base URL (litellm:MODEL@URL)",
            timeouts=(openai.APITimeoutError,), connections=(openai.APIConnectionError,),
            request_url=False)

    def complete(self, messages: Sequence[Message], **options: Any) -> str:
        request = self._request(messages, options, stream=False)
        return call_with_retry(lambda: self._complete_once(request), self.retry)

    def stream(self, messages: Sequence[Message], **options: Any) -> Iterator[str]:
        request = self._request(messages, options, stream=True)
        return stream_with_retry(lambda: self._stream_once(request), self.retry)

    def _request(self, messages: Sequence[Message], options: dict[str, Any],
                 stream: bool) -> dict[str, Any]:
        request: dict[str, Any] = {"model": self.model, "messages": check_messages(messages),
                                   "timeout": self.timeout_s, "num_retries": 0,
                                   "max_retries": 0, **options, "stream": stream}
        if self.base_url:
            request["api_base"] = self.base_url
        if self.api_key:
            request["api_key"] = self.api_key
        return request

    def _complete_once(self, request: dict[str, Any]) -> str:
        try:
            answer = self._litellm.completion(**request)
        except self._sdk_error as exc:
            raise self._errors(exc) from exc
        return str(answer.choices[0].message.content or "")

    def _stream_once(self, request: dict[str, Any]) -> Iterator[str]:
        try:
            for chunk in self._litellm.completion(**request):
                if chunk.choices and chunk.choices[0].delta.content:
                    yield str(chunk.choices[0].delta.content)
        except self._sdk_error as exc:
            raise self._errors(exc) from exc
