"""llama.cpp's server (`llama-server`) with its slot state saved per session.

Chat goes through the server's OpenAI-compatible `/v1/chat/completions`, pinned to one slot
(`id_slot`) with `cache_prompt`, so the slot's KV cache is reused for the common prefix. When
the server was started with `--slot-save-path DIR`, a session's slot is saved to a file of its
own after each answer (`POST /slots/N?action=save`) and restored before the next
(`?action=restore`): a conversation continues without re-prefilling, across sessions sharing
the slot and across restarts of the server. Without a save path the server answers 501 and
the provider says so once, then chats without it.

    llamacpp:qwen2.5-7b@http://127.0.0.1:8080   (LLAMACPP_HOST, default http://127.0.0.1:8080;
                                                 LLAMACPP_API_KEY for a server with --api-key)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from engram.errors import InvalidInput
from engram.llm.base import Message, ProviderUnreachable, RetryPolicy, check_timeout
from engram.llm.openai import OpenAIProvider

DEFAULT_HOST = "http://127.0.0.1:8080"
NO_SAVE_PATH = 501  # the server was started without --slot-save-path


@dataclass(frozen=True, slots=True)
class SlotUse:
    """What the server did with a session's slot around one answer."""

    restored_tokens: int  # n_restored: the prompt tokens the slot held again (0: none saved)
    saved_tokens: int  # n_saved after the answer
    supported: bool  # False: no --slot-save-path, the slot is not kept per session


class LlamaCppProvider:
    """A llama.cpp server: OpenAI-wire chat on one slot, its state saved per session."""

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 timeout_s: float = 120.0, retry: RetryPolicy | None = None,
                 slot: int = 0) -> None:
        if not model:
            raise InvalidInput("model", "llamacpp: needs a model name",
                               "use e.g. llamacpp:qwen2.5@http://127.0.0.1:8080")
        root = (base_url or os.environ.get("LLAMACPP_HOST") or DEFAULT_HOST).rstrip("/")
        self.base_url = root.removesuffix("/v1")
        self.name, self.slot = f"llamacpp:{model}", slot
        key = api_key or os.environ.get("LLAMACPP_API_KEY")  # llama-server --api-key
        self.chat = OpenAIProvider(model, base_url=f"{self.base_url}/v1",
                                   api_key=key or "not-needed", timeout_s=timeout_s, retry=retry)
        self._http = httpx.Client(base_url=self.base_url, timeout=check_timeout(timeout_s),
                                  headers={"Authorization": f"Bearer {key}"} if key else {})
        self.supported: bool | None = None  # known after the first save or restore
        self.notice = ""
        self.last: SlotUse | None = None

    def complete(self, messages: Sequence[Message], **options: Any) -> str:
        return self.chat.complete(messages, **self._pinned(options))

    def stream(self, messages: Sequence[Message], **options: Any) -> Iterator[str]:
        return self.chat.stream(messages, **self._pinned(options))

    def stream_session(self, messages: Sequence[Message], session: str,
                       **options: Any) -> Iterator[str]:
        """The answer, with the session's slot restored before and saved after."""
        options.pop("watch", None)  # attention is not reported by llama.cpp's server
        restored = self.slot_action(session, "restore")
        yield from self.stream(messages, **options)
        saved = self.slot_action(session, "save")
        self.last = SlotUse(restored, saved, bool(self.supported))

    def slot_action(self, session: str, action: str) -> int:
        """Save or restore the session's slot file: the tokens it held (0 when none was
        saved, or the server keeps no slot files)."""
        if self.supported is False:
            return 0
        path = f"/slots/{self.slot}"
        try:
            response = self._http.post(path, params={"action": action},
                                       json={"filename": slot_file(session)})
        except httpx.HTTPError as exc:
            raise ProviderUnreachable(self.name, f"{self.base_url}{path}",
                                      f"cannot be reached ({exc})",
                                      "start llama-server or fix the @URL of the model") from exc
        if response.status_code == NO_SAVE_PATH:
            self.supported = False
            self.notice = (f"{self.name}: the server keeps no slot files (start llama-server "
                           "with --slot-save-path DIR); sessions are not saved on the server")
            return 0
        if response.status_code >= 400:  # restore of a session never saved: nothing to reuse
            return 0
        self.supported = True
        answer = response.json()
        return int(answer.get("n_restored" if action == "restore" else "n_saved", 0))

    def pop_notice(self) -> str:
        """What the person should be told once (the server keeps no slot files), then ""."""
        notice, self.notice = self.notice, ""
        return notice

    def close(self) -> None:
        self._http.close()

    def _pinned(self, options: dict[str, Any]) -> dict[str, Any]:
        extra = {**options.pop("extra_body", {}), "id_slot": self.slot, "cache_prompt": True}
        return {**options, "extra_body": extra}


def slot_file(session: str) -> str:
    """The slot file of a session: a plain name (the server refuses paths)."""
    return f"engram-{hashlib.sha256(session.encode()).hexdigest()[:32]}.bin"
