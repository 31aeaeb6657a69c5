"""Chat models behind one small protocol, chosen by a spec string `KIND:MODEL[@BASE_URL]`.

- `ollama:phi3` (OLLAMA_HOST, default http://127.0.0.1:11434);
- `openai:gpt-4o-mini` (OPENAI_API_KEY, OPENAI_BASE_URL; any OpenAI-compatible server:
  `openai:qwen2.5@http://127.0.0.1:8000/v1` for vLLM, llama.cpp or LM Studio);
- `anthropic:claude-sonnet-4-5` (ANTHROPIC_API_KEY);
- `litellm:groq/llama3-8b-8192`: anything `litellm.completion` can call.
SDKs are imported only when their kind is chosen, so an extra that is not installed costs
nothing until then.
"""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Any, cast

from engram.errors import InvalidInput
from engram.llm.base import (
    Message,
    Provider,
    ProviderError,
    ProviderUnreachable,
    RetryPolicy,
)

__all__ = ["KINDS", "Message", "Provider", "ProviderError", "ProviderUnreachable",
           "RetryPolicy", "load_provider"]

# kind → (module, class, the package it needs, the extra that installs it)
KINDS: dict[str, tuple[str, str, str, str]] = {
    "ollama": ("engram.llm.ollama", "OllamaProvider", "httpx", "llm"),
    "openai": ("engram.llm.openai", "OpenAIProvider", "openai", "llm"),
    "anthropic": ("engram.llm.anthropic", "AnthropicProvider", "anthropic", "llm"),
    "litellm": ("engram.llm.litellm", "LiteLLMProvider", "litellm", "litellm"),
    "hf": ("engram.state.provider", "HFProvider", "transformers", "state"),
    "llamacpp": ("engram.llm.llamacpp", "LlamaCppProvider", "openai", "llm"),
    "lora": ("engram.train.provider", "LoraProvider", "peft", "train"),  # lora:BASE_PATH
}
USAGE = ("use ollama:MODEL, openai:MODEL, anthropic:MODEL, litellm:MODEL or llamacpp:MODEL "
         "(optionally @URL), or hf:PATH")


def load_provider(spec: str | None = None, **config: Any) -> Provider:
    """The provider a spec names (or ENGRAM_MODEL). `config` goes to its constructor:
    base_url, api_key, timeout_s, retry=RetryPolicy(…) or simply attempts=N."""
    spec = spec or os.environ.get("ENGRAM_MODEL")
    if not spec:
        raise InvalidInput("model", "no model chosen", f"set ENGRAM_MODEL or {USAGE}")
    kind, _, rest = spec.partition(":")
    model, _, url = rest.partition("@")
    if kind not in KINDS:
        raise InvalidInput("model", f"unknown provider {kind!r} in {spec!r}", USAGE)
    if not model:
        raise InvalidInput("model", f"{spec!r} names no model", USAGE)
    if url:
        config.setdefault("base_url", url)
    if "attempts" in config:
        config["retry"] = RetryPolicy(attempts=int(config.pop("attempts")))
    module_name, class_name, package, extra = KINDS[kind]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != package:
            raise
        raise InvalidInput("model", f"{kind}: models need the {package} package, "
                           "which is not installed",
                           f"pip install 'engram-memory[{extra}]'") from None
    cls = getattr(module, class_name)
    accepted = set(inspect.signature(cls).parameters) - {"model"}
    unknown = sorted(set(config) - accepted)
    if unknown:
        raise InvalidInput(unknown[0], f"{kind} providers take no such option",
                           f"use one of: attempts, {', '.join(sorted(accepted))}")
    return cast(Provider, cls(model, **config))
