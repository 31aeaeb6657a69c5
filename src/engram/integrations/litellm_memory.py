"""Engram memory for any `litellm.completion` call: recalled memories go into the system
message, and the exchange is remembered once the answer is complete.

    from engram.integrations.litellm_memory import with_memory
    completion = with_memory(litellm.completion, mem, user_id="alice")
    completion(model="groq/llama3-8b-8192", messages=[...])   # litellm's own arguments
    acompletion = with_memory(litellm.acompletion, mem, user_id="alice")   # awaitable

Why a wrapper and not a LiteLLM callback: no hook of LiteLLM's SDK both rewrites every call's
messages and sees its answer. `CustomLogger.async_pre_call_hook` runs only in the LiteLLM
proxy; the prompt-management hook (`CustomPromptManagement.get_chat_completion_prompt`) runs
in the SDK only for calls that carry a `prompt_id`, with a signature that changes between
releases; success callbacks run later on a background thread. A function with
`completion`'s signature works with every version and every backend, streamed or not.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from engram.context import ContextPlan, render
from engram.errors import InvalidInput
from engram.llm.litellm import import_litellm
from engram.memory import Memory
from engram.model import check_id

Completion = Callable[..., Any]  # litellm.completion or litellm.acompletion


class MemoryCompletion:
    """`completion` with memory; `last_plan.memory_ids` says which memories the last call was
    given. Per call, `engram_user_id=` and `engram_session_id=` override the defaults. An
    async `completion` (litellm.acompletion) gives an awaitable call."""

    def __init__(self, completion: Completion, mem: Memory, *, user_id: str,
                 session_id: str | None = None, budget_tokens: int = 1000,
                 include_sensitive: bool = False, record: bool = True) -> None:
        self.completion, self.mem = completion, mem
        self.user_id = check_id(user_id, "user_id", required=True) or user_id
        self.session_id = check_id(session_id, "session_id") or f"litellm-{secrets.token_hex(4)}"
        self.budget_tokens, self.include_sensitive = budget_tokens, include_sensitive
        self.record = record
        self.last_plan: ContextPlan | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        prepared = self._prepare(args, kwargs)
        if inspect.iscoroutinefunction(self.completion):
            return self._acall(kwargs, prepared)
        response = self.completion(**kwargs)
        if prepared is None or not self.record:
            return response
        if kwargs.get("stream"):
            return self._recorded_stream(response, *prepared)
        self._remember(response.choices[0].message.content, *prepared)
        return response

    async def _acall(self, kwargs: dict[str, Any],
                     prepared: tuple[str, str, str] | None) -> Any:
        response = await self.completion(**kwargs)
        if prepared is None or not self.record:
            return response
        if kwargs.get("stream"):
            return self._arecorded_stream(response, *prepared)
        self._remember(response.choices[0].message.content, *prepared)
        return response

    def _prepare(self, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> tuple[str, str, str] | None:
        """Check the call and put the memories in its messages (in place, in `kwargs`);
        (question, user, session) to remember it by, or None when there is no user turn."""
        user_id = check_id(kwargs.pop("engram_user_id", self.user_id), "engram_user_id",
                           required=True) or self.user_id
        session_id = check_id(kwargs.pop("engram_session_id", self.session_id),
                              "engram_session_id", required=True) or self.session_id
        if args:
            raise InvalidInput("completion", "takes keyword arguments only here",
                               "call it as completion(model=..., messages=[...])")
        messages = kwargs.get("messages")
        if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
            raise InvalidInput("messages", "expected a list of {role, content} dicts",
                               'pass e.g. messages=[{"role": "user", "content": "hello"}]')
        question = last_user_text(messages)
        self.last_plan = None
        if question is None:  # nothing to recall for, nothing to remember
            return None
        plan = self.mem.assemble(question, user_id=user_id, budget_tokens=self.budget_tokens,
                                 style="openai", include_sensitive=self.include_sensitive)
        self.last_plan = plan
        kwargs["messages"] = with_memory_block(messages, render(plan.memories, "openai")
                                               if plan.memories else "")
        return question, user_id, session_id

    def _remember(self, answer: str | None, question: str, user_id: str,
                  session_id: str) -> None:
        self.mem.remember_turn(question, answer or "", user_id=user_id, session_id=session_id)

    def _recorded_stream(self, chunks: Any, question: str, user_id: str,
                         session_id: str) -> Iterator[Any]:
        """The chunks unchanged; the turn is remembered when the stream has been read to
        its end (a stream abandoned midway is not)."""
        pieces: list[str] = []
        for chunk in chunks:
            pieces.append(_delta_text(chunk))
            yield chunk
        self._remember("".join(pieces), question, user_id, session_id)

    async def _arecorded_stream(self, chunks: Any, question: str, user_id: str,
                                session_id: str) -> AsyncIterator[Any]:
        pieces: list[str] = []
        async for chunk in chunks:
            pieces.append(_delta_text(chunk))
            yield chunk
        self._remember("".join(pieces), question, user_id, session_id)


def _delta_text(chunk: Any) -> str:
    return str(chunk.choices[0].delta.content or "") if chunk.choices else ""


def with_memory(completion: Completion, mem: Memory, *, user_id: str,
                session_id: str | None = None, budget_tokens: int = 1000,
                include_sensitive: bool = False, record: bool = True) -> MemoryCompletion:
    """`completion` (litellm.completion, or anything with its signature) with Engram memory.

    `include_sensitive=True` lets memories marked sensitive reach the model: only for a model
    that runs on this machine. `record=False` recalls without remembering the exchange."""
    return MemoryCompletion(completion, mem, user_id=user_id, session_id=session_id,
                            budget_tokens=budget_tokens, include_sensitive=include_sensitive,
                            record=record)


def completion(*, memory: Memory, user_id: str, session_id: str | None = None,
               **kwargs: Any) -> Any:
    """`litellm.completion(**kwargs)` with memory, for a single call."""
    wrapped = with_memory(import_litellm().completion, memory, user_id=user_id,
                          session_id=session_id)
    return wrapped(**kwargs)


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The text of the last user message (the text parts of a multi-part one)."""
    for message in reversed(messages):
        if not isinstance(message, Mapping) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content
                               if isinstance(p, Mapping) and p.get("type") == "text")
        return content if isinstance(content, str) and content.strip() else None
    return None


def with_memory_block(messages: Sequence[Mapping[str, Any]], block: str) -> list[Any]:
    """The caller's messages with `block` appended to their leading system message (or one
    added in front); the rest are left exactly as they were."""
    out = [dict(m) if isinstance(m, Mapping) else m for m in messages]
    if not block:
        return out
    first = out[0] if out else None
    if isinstance(first, dict) and first.get("role") == "system" \
            and isinstance(first.get("content"), str):
        first["content"] = f"{first['content'].rstrip()}\n\n{block}"
    else:
        out.insert(0, {"role": "system", "content": block})
    return out
