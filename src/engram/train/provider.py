"""The `lora` provider: a local Hugging Face causal LM plus a user's adapter, for `engram chat`
and the proxy (`--model lora:BASE_PATH`).

Which adapter answers is `adapter=`: "active" (default: the user's active version in the
registry), "auto" (per request, the adapter whose memories name what the question names, or
the base alone: `select.choose`), "none", a version such as "v3", or an adapter folder. The
registry is the store's (`data=`, else ENGRAM_DATA, else ./engram-data) and the user is
`user=` (else ENGRAM_USER, else the default user)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engram.clock import Clock, SystemClock
from engram.errors import InvalidInput
from engram.lifecycle import config
from engram.lifecycle.tiers import Policy
from engram.llm.base import Message, check_messages
from engram.store import DEFAULT_DATA, open_store
from engram.store.base import Store
from engram.train import base
from engram.train.registry import Registry, root_for
from engram.train.select import choose
from engram.validate import DEFAULT_USER

MODES = ("active", "auto", "none")


@dataclass
class _Reader:
    """A store opened to read adapter profiles (the `Host` selection needs)."""

    store: Store
    clock: Clock
    policy: Policy


class LoraProvider:
    """Base model + adapter, generated on this machine (greedy unless `temperature` > 0)."""

    def __init__(self, model: str, *, adapter: str = "active", data: str | None = None,
                 user: str | None = None, adapters: str | None = None,
                 max_new_tokens: int = 256, temperature: float = 0.0) -> None:
        self.folder = base.check_folder(model)
        self.data = data or os.environ.get("ENGRAM_DATA") or DEFAULT_DATA
        self.user = user or os.environ.get("ENGRAM_USER") or DEFAULT_USER
        self.registry = Registry(root_for(self.data, adapters))
        self.mode, self.max_new_tokens, self.temperature = adapter, max_new_tokens, temperature
        self.model, self.tokenizer = base.load(self.folder, quantize=base.quantizable())
        self.peft: Any = None
        self.current: str | None = None  # the adapter that answers now (None: the base)
        fixed = self._fixed(adapter)
        if fixed is not None:
            self._attach(*fixed)
            self.current = fixed[0]

    @property
    def name(self) -> str:
        return f"lora:{self.folder}"

    def _fixed(self, adapter: str) -> tuple[str, Path] | None:
        """(name, folder) of the one adapter a non-"auto" mode names, or None."""
        if adapter in ("auto", "none"):
            return None
        if adapter == "active":
            found = self.registry.active(self.user)
            return (found.version, self.registry.path(found.version)) if found else None
        if (Path(adapter) / "adapter_config.json").is_file():
            return "folder", Path(adapter)
        if adapter.startswith("v"):
            return adapter, self.registry.path(adapter)
        raise InvalidInput("adapter", f"{adapter!r} is no mode, version or adapter folder",
                           f"use one of {', '.join(MODES)}, a version like v3, or a folder")

    def _attach(self, name: str, folder: Path) -> None:
        """Load an adapter beside the base (once) and make it the one that answers."""
        from peft import PeftModel

        if self.peft is None:
            self.peft = PeftModel.from_pretrained(self.model, str(folder), adapter_name=name)
        elif name not in self.peft.peft_config:
            self.peft.load_adapter(str(folder), adapter_name=name)
        self.peft.set_adapter(name)
        self.peft.eval()

    def _pick(self, messages: Sequence[Message]) -> None:
        """Choose the adapter for `messages` when the mode is "auto"."""
        if self.mode == "auto":
            question = next((m["content"] for m in reversed(messages) if m["role"] == "user"),
                            "")
            clock = SystemClock()
            reader = _Reader(open_store(self.data, clock=clock), clock,
                             config.load(config.path_for(self.data)))
            try:
                chosen = choose(reader, self.registry, self.user, question)
            finally:
                reader.store.close()
            self.current = chosen.version if chosen else None
            if chosen is not None:
                self._attach(chosen.version, self.registry.path(chosen.version))

    def _generate(self, failed: list[BaseException], **kwargs: Any) -> None:
        """Generate with the current adapter, or with every adapter off for the base; an
        error is handed to the reader and ends the stream."""
        try:
            self._run(**kwargs)
        except Exception as exc:  # re-raised in the reading thread
            failed.append(exc)
            kwargs["streamer"].end()

    def _run(self, **kwargs: Any) -> None:
        if self.peft is None:
            self.model.generate(**kwargs)
        elif self.current is None:
            with self.peft.disable_adapter():
                self.peft.generate(**kwargs)
        else:
            self.peft.generate(**kwargs)

    def _options(self, options: dict[str, object]) -> dict[str, Any]:
        new = int(str(options.get("max_tokens", self.max_new_tokens)))
        temperature = float(str(options.get("temperature", self.temperature)))
        sample = {"do_sample": True, "temperature": temperature} if temperature > 0 \
            else {"do_sample": False}
        return {"max_new_tokens": new, "pad_token_id": self.tokenizer.pad_token_id,
                "eos_token_id": self.tokenizer.eos_token_id, **sample}

    def complete(self, messages: Sequence[Message], **options: object) -> str:
        return "".join(self.stream(messages, **options))

    def stream(self, messages: Sequence[Message], **options: object) -> Iterator[str]:
        """The answer as the model writes it (a generation thread feeds a streamer)."""
        from transformers import TextIteratorStreamer

        checked = check_messages(messages)
        self._pick(checked)
        inputs = self.tokenizer(base.render(self.tokenizer, checked), return_tensors="pt",
                                add_special_tokens=base.bos(self.tokenizer)).to(
                                    self.model.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True,
                                        skip_special_tokens=True)
        kwargs = {**inputs, **self._options(dict(options)), "streamer": streamer}
        failed: list[BaseException] = []
        worker = threading.Thread(target=self._generate, args=(failed,), kwargs=kwargs,
                                  daemon=True)
        worker.start()
        yield from (piece for piece in streamer if piece)
        worker.join()
        if failed:
            raise failed[0]
