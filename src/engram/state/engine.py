"""A local Hugging Face causal LM that resumes where a session left off: the saved state of the
session's prefix is restored, only the new tokens are prefilled, the answer is decoded greedily,
and the state is saved again for the next turn.

Decoding feeds the prompt's last token on its own, so when asked the model's attention from
every generated token (and from the one before the first) is read, and its mass on chosen spans
of the prompt (the memories placed in it) is reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engram.errors import InvalidInput
from engram.state.cache import cache_of, layers_of
from engram.state.fingerprint import Fingerprint, of_model
from engram.state.store import Restored, StateStore

PREFILL_BLOCK = 1024
Spans = Mapping[str, tuple[int, int]]  # name (a memory id) → token positions [start, end)


@dataclass(frozen=True, slots=True)
class Generation:
    """One answer and how it was computed."""

    text: str
    tokens: tuple[int, ...]
    restored_tokens: int
    prefilled_tokens: int
    ttft_ms: float
    source: str = ""  # where the restored state came from: "session" or "shared prefix"
    attention: dict[str, float] = field(default_factory=dict)  # span → share of attention

    @property
    def restored(self) -> bool:
        return self.restored_tokens > 0

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "restored": self.restored,
                "restored_tokens": self.restored_tokens,
                "prefilled_tokens": self.prefilled_tokens, "ttft_ms": round(self.ttft_ms, 3),
                "source": self.source, "attention": self.attention}


class LocalModel:
    """A loaded model and tokenizer with the fingerprint their saved states must match."""

    def __init__(self, model: Any, tokenizer: Any, model_id: str) -> None:
        self.model, self.tokenizer, self.model_id = model.eval(), tokenizer, model_id
        self.fingerprint: Fingerprint = of_model(model, tokenizer, model_id)
        self.lock = threading.Lock()  # one decoding at a time: the cache and model are shared

    @classmethod
    def load(cls, path: str | Path, dtype: str | None = None) -> LocalModel:
        """The model in a Hugging Face folder (config, safetensors weights, tokenizer)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging

        folder = Path(path).expanduser()
        if not (folder / "config.json").is_file():
            raise InvalidInput("model", f"no Hugging Face model folder at {folder}",
                               "pass hf:PATH, the folder holding config.json, the *.safetensors "
                               "weights and the tokenizer")
        logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        options: dict[str, Any] = {"dtype": getattr(torch, dtype)} if dtype else {}
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, **options)
        return cls(model, tokenizer, folder.resolve().name)

    @property
    def dtype(self) -> str:
        return self.fingerprint.dtype

    def encode(self, text: str) -> list[int]:
        return [int(t) for t in self.tokenizer(text)["input_ids"]]

    def encode_more(self, text: str) -> list[int]:
        """Text that continues a prompt: no start-of-text token."""
        return [int(t) for t in self.tokenizer(text, add_special_tokens=False)["input_ids"]]

    def token_spans(self, text: str, chars: Mapping[str, tuple[int, int]]) -> Spans:
        """Character spans of `text` as the token positions that cover them."""
        offsets = self.tokenizer(text, return_offsets_mapping=True)["offset_mapping"]
        spans = {}
        for name, (first, last) in chars.items():
            inside = [i for i, (a, b) in enumerate(offsets) if a < last and b > first]
            if inside:
                spans[name] = (inside[0], inside[-1] + 1)
        return spans

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def cache(self, restored: Restored | None = None) -> Any:
        from transformers import DynamicCache

        if restored is None or restored.layers is None:
            return DynamicCache(config=self.model.config)
        return cache_of(restored.layers, self.model.config)

    def prefill(self, ids: Sequence[int], cache: Any, start: int = 0) -> torch.Tensor:
        """Run `ids` through the model into `cache` (positions from `start`), PREFILL_BLOCK
        tokens at a time so a long prompt's attention scores fit in memory: last logits."""
        logits = torch.empty(0)
        with torch.inference_mode():
            for first in range(0, len(ids), PREFILL_BLOCK):
                block = list(ids[first:first + PREFILL_BLOCK])
                at = start + first
                out = self.model(input_ids=torch.tensor([block]), cache=cache, use_cache=True,
                                 logits_to_keep=1,
                                 position_ids=torch.arange(at, at + len(block))[None])
                logits = out.logits[0, -1]
        return logits


class Decoding:
    """Iterate for the answer's text pieces; `generation`, `cache` and `fed` (the token ids
    the cache holds) are set once the last piece has been given."""

    def __init__(self, model: LocalModel, ids: Sequence[int], restored: Restored, *,
                 started: float, max_new_tokens: int, watch: Spans | None = None) -> None:
        if len(ids) < 1:
            raise InvalidInput("prompt", "is empty", "give the model some text")
        if max_new_tokens < 1:
            raise InvalidInput("max_new_tokens", f"must be at least 1, got {max_new_tokens}",
                               "pass e.g. --max-new-tokens 64")
        self.model, self.ids, self.restored = model, list(ids), restored
        self.started, self.max_new_tokens, self.watch = started, max_new_tokens, watch or {}
        self.generation: Generation | None = None
        self.cache: Any = None
        self.fed: list[int] = []

    def __iter__(self) -> Iterator[str]:
        with self.model.lock:
            yield from self._decode()

    def _decode(self) -> Iterator[str]:
        model, ids, done = self.model, self.ids, self.restored.tokens
        cache = model.cache(self.restored)
        if len(ids) - 1 > done:
            model.prefill(ids[done:-1], cache, done)
        eos = model.tokenizer.eos_token_id
        mass = dict.fromkeys(self.watch, 0.0)
        generated: list[int] = []
        shown, ttft, step, steps = "", 0.0, ids[-1], 0
        eager = bool(self.watch)
        before = model.model.config._attn_implementation
        if eager:  # attention weights are only returned by the eager implementation
            model.model.set_attn_implementation("eager")
        try:
            for _ in range(self.max_new_tokens):
                with torch.inference_mode():
                    out = model.model(input_ids=torch.tensor([[step]]), cache=cache,
                                      use_cache=True, output_attentions=eager)
                steps += 1
                if eager:
                    _add_attention(mass, self.watch, out.attentions)
                token = int(out.logits[0, -1].argmax())
                if not generated:
                    ttft = (time.perf_counter() - self.started) * 1000
                generated.append(token)
                if token == eos:
                    break
                text = model.decode(generated)
                if not text.endswith("\ufffd") and len(text) > len(shown):
                    yield text[len(shown):]
                    shown = text
                step = token
        finally:
            if eager:
                model.model.set_attn_implementation(before)
        text = model.decode(generated)
        if len(text) > len(shown):
            yield text[len(shown):]
        self.cache, self.fed = cache, ids + generated[:-1]
        heads = model.model.config.num_attention_heads * model.model.config.num_hidden_layers
        self.generation = Generation(text, tuple(generated), done, len(ids) - done, ttft,
                                     self.restored.source,
                                     {k: v / (heads * steps) for k, v in mass.items()})


class Resumable:
    """A local model whose sessions persist in a StateStore between calls and processes."""

    def __init__(self, model: LocalModel, states: StateStore, storage: str = "native") -> None:
        self.model, self.states, self.storage = model, states, storage
        self.last: Generation | None = None

    def run(self, session: str, ids: Sequence[int], *, max_new_tokens: int = 64,
            watch: Spans | None = None, memories: dict[str, list[int]] | None = None,
            turns: int = 0) -> Iterator[str]:
        """The answer's pieces; the session's state is saved after the last one.
        `self.last` is the Generation once done."""
        started = time.perf_counter()
        restored = self.states.restore(session, self.model.fingerprint, ids, self.model.dtype,
                                       self.storage)
        decoding = Decoding(self.model, ids, restored, started=started,
                            max_new_tokens=max_new_tokens, watch=watch)
        yield from decoding
        self.last = decoding.generation
        self.states.save(session, self.model.fingerprint, decoding.fed,
                         layers_of(decoding.cache), self.storage, memories=memories, turns=turns)

    def generate(self, session: str, ids: Sequence[int], **options: Any) -> Generation:
        for _ in self.run(session, ids, **options):
            pass
        assert self.last is not None
        return self.last


def _add_attention(mass: dict[str, float], watch: Spans, attentions: Any) -> None:
    """Add each span's attention (summed over layers and heads) from the newest position."""
    for layer in attentions or ():
        row = layer[0, :, -1, :].float()  # heads by positions
        for name, (start, end) in watch.items():
            mass[name] += float(row[:, start:end].sum())
