"""Token counters: the ruler every budget is measured with. Nothing here downloads.

A counter is any `str -> int`. `load_counter` picks one by a spec string (`ENGRAM_TOKENIZER`):

- `tiktoken:cl100k_base` / `tiktoken:o200k_base`: OpenAI's BPE, read from a local `.tiktoken`
  file (never fetched): `ENGRAM_TIKTOKEN_DIR`, then `TIKTOKEN_CACHE_DIR`, then the copy LiteLLM
  ships (the `[litellm]` extra). Files are named as tiktoken's cache names them (sha1 of the URL)
  or `<encoding>.tiktoken`, and are checked against OpenAI's published sha256.
- `tokenizer:PATH`: any Hugging Face `tokenizer.json`, via the `tokenizers` library.
- `minilm`: the tokenizer of the default embedding model (the `[embed]` extra).
- `estimate`: about four characters a token; no dependency, the fallback.
- `auto` (the default): the first of tiktoken cl100k_base, minilm, estimate that is available.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from engram.errors import InvalidInput

TokenCounter = Callable[[str], int]

_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
_ENDOFTEXT, _ENDOFPROMPT = "<|endoftext|>", "<|endofprompt|>"
# name -> (sha256 of the .tiktoken file, split pattern, special tokens): tiktoken_ext.openai_public.
_ENCODINGS: dict[str, tuple[str, str, dict[str, int]]] = {
    "cl100k_base": (
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++"""
        r"""[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        {_ENDOFTEXT: 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
         "<|fim_suffix|>": 100260, _ENDOFPROMPT: 100276},
    ),
    "o200k_base": (
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "|".join([
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"""
            r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"""
            r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]),
        {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
}


def estimate_tokens(text: str) -> int:
    """About four characters a token for English; a real tokenizer can be passed instead."""
    return max(1, (len(text) + 3) // 4)


def fit_text(text: str, max_tokens: int, count: TokenCounter, *, keep: str = "start") -> str:
    """The longest prefix (`keep="start"`) or suffix (`"end"`) of `text`, marked with an ellipsis
    where cut, that counts at most `max_tokens`; "" when not even the ellipsis fits."""
    if max_tokens <= 0:
        return ""
    if count(text) <= max_tokens:
        return text

    def cut(n: int) -> str:
        return text[:n].rstrip() + "…" if keep == "start" else "…" + text[len(text) - n:].lstrip()

    lo, hi = 0, len(text) - 1  # the longest fitting cut has lo characters of the text
    if count(cut(0)) > max_tokens:
        return ""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(cut(mid)) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return cut(lo)


def tiktoken_dirs() -> list[Path]:
    """Where a local `.tiktoken` file is looked for, in order."""
    dirs = [os.environ.get(name) for name in ("ENGRAM_TIKTOKEN_DIR", "TIKTOKEN_CACHE_DIR")]
    found = [Path(d) for d in dirs if d]
    spec = importlib.util.find_spec("litellm")  # finds, does not import (LiteLLM is slow to load)
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            found.append(Path(location) / "litellm_core_utils" / "tokenizers")
    return found


def tiktoken_file(encoding: str) -> Path | None:
    """The local file holding `encoding`'s ranks whose sha256 checks out, if any."""
    expected = _ENCODINGS[encoding][0]
    cache_name = hashlib.sha1(_URL.format(encoding).encode()).hexdigest()
    for folder in tiktoken_dirs():
        for name in (cache_name, f"{encoding}.tiktoken"):
            path = folder / name
            if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == expected:
                return path
    return None


@lru_cache(maxsize=8)
def tiktoken_counter(encoding: str = "cl100k_base") -> TokenCounter:
    """OpenAI's tokenizer, loaded from a local file; an error says where to put one."""
    if encoding not in _ENCODINGS:
        raise InvalidInput("tokenizer", f"unknown tiktoken encoding {encoding!r}",
                           f"use one of: {', '.join(_ENCODINGS)}")
    try:
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe
    except ImportError:
        raise InvalidInput("tokenizer", "tiktoken is not installed",
                           "pip install tiktoken, or use ENGRAM_TOKENIZER=minilm") from None
    path = tiktoken_file(encoding)
    if path is None:
        raise InvalidInput("tokenizer", f"no local {encoding} file (Engram never downloads it)",
                           f"put {encoding}.tiktoken in ENGRAM_TIKTOKEN_DIR, or install "
                           "engram-memory[litellm], which ships it")
    _, pattern, special = _ENCODINGS[encoding]
    ranks = load_tiktoken_bpe(str(path), _ENCODINGS[encoding][0])
    enc = tiktoken.Encoding(encoding, pat_str=pattern, mergeable_ranks=ranks,
                            special_tokens=special)

    def count(text: str) -> int:
        return len(enc.encode_ordinary(text))

    return count


@lru_cache(maxsize=8)
def huggingface_counter(path: str) -> TokenCounter:
    """Tokens of a Hugging Face `tokenizer.json`, without truncation, padding or [CLS]/[SEP]."""
    from tokenizers import Tokenizer

    if not Path(path).is_file():
        raise InvalidInput("tokenizer", f"no tokenizer.json at {path}",
                           "give the path of a Hugging Face tokenizer.json")
    tok = Tokenizer.from_file(path)
    tok.no_truncation()
    tok.no_padding()

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False).ids)

    return count


def load_counter(spec: str | None = None) -> TokenCounter:
    """The counter a spec names (see the module docstring); `ENGRAM_TOKENIZER` by default."""
    spec = spec or os.environ.get("ENGRAM_TOKENIZER") or "auto"
    kind, _, rest = spec.partition(":")
    if kind == "estimate" and not rest:
        return estimate_tokens
    if kind == "tiktoken":
        return tiktoken_counter(rest or "cl100k_base")
    if kind == "tokenizer" and rest:
        return huggingface_counter(rest)
    if kind == "minilm" and not rest:
        from engram.embed.embedders import minilm_path

        return huggingface_counter(str(minilm_path() / "tokenizer.json"))
    if kind == "auto" and not rest:
        for choice in ("tiktoken:cl100k_base", "minilm"):
            try:
                return load_counter(choice)
            except (InvalidInput, ImportError):
                continue
        return estimate_tokens
    raise InvalidInput("tokenizer", f"unknown tokenizer {spec!r}",
                       "use auto, tiktoken[:ENCODING], tokenizer:PATH, minilm or estimate")
