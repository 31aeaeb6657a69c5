"""`hf:PATH`: a local Hugging Face causal LM as an Engram provider, whose sessions resume from
their saved KV cache (`engine.Resumable`), so a long conversation is not prefilled again on
every turn or after a restart. Usable by `engram chat` and by the proxy (`--model hf:PATH`).

The prompt is the tokenizer's chat template where it has one, else a plain transcript
("System: …", "User: …", "Assistant:"), so earlier turns stay a stable prefix.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from engram.errors import InvalidInput
from engram.lifecycle import config
from engram.llm.base import Message, check_messages
from engram.state.codec import check_storage
from engram.state.engine import Generation, LocalModel, Resumable
from engram.state.settings import DEFAULT_MAX_BYTES
from engram.state.store import StateStore, state_root
from engram.store import DEFAULT_DATA

DEFAULT_SESSION = "default"
_LOADED: dict[tuple[str, str | None], LocalModel] = {}  # one copy of a model per process


def local_model(spec: str, states: StateStore, storage: str = "native",
                dtype: str | None = None) -> Resumable:
    """The model an `hf:PATH` spec names, with its sessions kept in `states`."""
    kind, _, path = spec.partition(":")
    if kind != "hf" or not path:
        raise InvalidInput("model", f"{spec!r} is not a local model",
                           "use hf:PATH, the folder of a Hugging Face causal LM")
    key = (str(Path(path).expanduser().resolve()), dtype)
    if key not in _LOADED:
        _LOADED[key] = LocalModel.load(path, dtype)
    return Resumable(_LOADED[key], states, check_storage(storage))


def prompt_text(tokenizer: Any, messages: Sequence[Message]) -> str:
    """The messages as the model reads them, ending where the assistant's answer begins."""
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(list(messages), tokenize=False,
                                                 add_generation_prompt=True))
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join([*lines, "Assistant:"])


class HFProvider:
    """A local model with persistent sessions. `stream` continues the provider's default
    session; `stream_session` a named one, optionally reporting the attention each memory
    placed in the prompt received (`last.attention`)."""

    def __init__(self, model: str, *, state_dir: str | None = None, data: str | None = None,
                 storage: str = "native", dtype: str | None = None, max_new_tokens: int = 256,
                 session: str = DEFAULT_SESSION) -> None:
        store = data or os.environ.get("ENGRAM_DATA") or DEFAULT_DATA
        cap = getattr(config.load(config.path_for(store)), "state_max_bytes", DEFAULT_MAX_BYTES)
        states = StateStore(state_root(store, state_dir), max_bytes=int(cap))
        self.resumable = local_model(f"hf:{model}", states, storage, dtype)
        self.name, self.local = f"hf:{model}", True
        self.max_new_tokens, self.session = max_new_tokens, session
        self.last: Generation | None = None

    def complete(self, messages: Sequence[Message], **options: Any) -> str:
        return "".join(self.stream(messages, **options))

    def stream(self, messages: Sequence[Message], **options: Any) -> Iterator[str]:
        return self.stream_session(messages, self.session, **options)

    def stream_session(self, messages: Sequence[Message], session: str, *,
                       watch: Mapping[str, str] | None = None, max_tokens: int | None = None,
                       **_: Any) -> Iterator[str]:
        """The answer's pieces; `watch` maps names (memory ids) to texts in the prompt whose
        share of the model's attention is reported in `self.last.attention`."""
        checked = check_messages(messages)
        text = prompt_text(self.resumable.model.tokenizer, checked)
        model = self.resumable.model
        chars = {name: (at, at + len(part)) for name, part in (watch or {}).items()
                 if part and (at := text.find(part)) >= 0}
        spans = model.token_spans(text, chars)
        turns = sum(1 for m in checked if m["role"] == "user")
        yield from self.resumable.run(session, model.encode(text),
                                      max_new_tokens=max_tokens or self.max_new_tokens,
                                      watch=spans, memories={k: list(v) for k, v in spans.items()},
                                      turns=turns)
        self.last = self.resumable.last
