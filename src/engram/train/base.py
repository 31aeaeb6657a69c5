"""The base model: a local Hugging Face causal LM folder, checked before anything loads it,
identified by a hash, and loaded on the CPU or, with bitsandbytes and CUDA, in 4 bits (QLoRA).
The prompt format every part of training, evaluation and chat shares lives here too."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from engram.errors import InvalidInput

SYSTEM = "You are a personal assistant who remembers what the user told you."
# The plan's projections, and the fused ones that stand for them in Phi-3
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
           "qkv_proj", "gate_up_proj")
WEIGHT_SUFFIXES = (".safetensors", ".bin")
_EDGE = 1 << 20  # a large weight file is hashed by its size, head and tail


def check_folder(path: str | Path) -> Path:
    """`path` as a causal-LM folder (config.json of a causal architecture, weights, a
    tokenizer), or one error naming what is missing."""
    folder = Path(path).expanduser()
    fix = "give --base a Hugging Face model folder (config.json, weights, tokenizer)"
    config = folder / "config.json"
    if not config.is_file():
        raise InvalidInput("base", f"{folder} is not a model folder (no config.json)", fix)
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("base", f"{config} is not JSON", fix) from None
    architectures = [str(a) for a in data.get("architectures") or []]
    if not any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        raise InvalidInput("base", f"{folder} is not a causal LM "
                           f"(architectures {architectures or 'unset'})",
                           "give a model whose architecture ends in ForCausalLM")
    if not any(p.name.endswith(WEIGHT_SUFFIXES) for p in folder.iterdir()):
        raise InvalidInput("base", f"{folder} holds no weights", fix)
    if not any((folder / n).is_file() for n in ("tokenizer.json", "tokenizer.model")):
        raise InvalidInput("base", f"{folder} holds no tokenizer", fix)
    return folder


def base_hash(folder: Path) -> str:
    """sha256 over the config, tokenizer and weights (large files by size, head and tail)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if not path.name.endswith((*WEIGHT_SUFFIXES, ".json", ".model")):
            continue
        digest.update(path.name.encode())
        size = path.stat().st_size
        digest.update(str(size).encode())
        with path.open("rb") as f:
            if size <= 4 * _EDGE:
                digest.update(f.read())
            else:
                digest.update(f.read(_EDGE))
                f.seek(size - _EDGE)
                digest.update(f.read())
    return digest.hexdigest()


def quantizable() -> bool:
    """QLoRA needs bitsandbytes and a CUDA device."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return False
    import torch
    return bool(torch.cuda.is_available())


def load(folder: Path, *, quantize: bool = False) -> tuple[Any, Any]:
    """(model, tokenizer) of a checked folder; 4-bit NF4 weights when `quantize`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    options: dict[str, Any] = {}
    if quantize:
        import torch
        from transformers import BitsAndBytesConfig
        four_bits: Any = BitsAndBytesConfig  # untyped
        options["quantization_config"] = four_bits(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
        options["device_map"] = "auto"
    model = AutoModelForCausalLM.from_pretrained(folder, **options)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def target_modules(model: Any) -> list[str]:
    """The plan's projections this architecture has, or an error when it has none."""
    names = {name.rpartition(".")[2] for name, _ in model.named_modules()}
    found = [t for t in TARGETS if t in names]
    if not found:
        raise InvalidInput("base", f"{type(model).__name__} has none of the LoRA target "
                           f"modules ({', '.join(TARGETS)})",
                           "use a Llama-, Mistral-, Qwen- or Phi-style causal LM")
    return found


def bos(tokenizer: Any) -> bool:
    """Whether a prompt is tokenized with the tokenizer's special tokens (its BOS, as the
    model was trained): not when a chat template already wrote them into the text."""
    return not getattr(tokenizer, "chat_template", None)


def prompt(tokenizer: Any, question: str) -> str:
    """The text a question is asked in, as training, evaluation and chat all ask it."""
    return render(tokenizer, [{"role": "system", "content": SYSTEM},
                              {"role": "user", "content": question}])


def render(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> str:
    """A conversation as the model reads it, ending where the assistant answers: the model's
    chat template when it has one, else system text then "Question:"/"Answer:" turns (the
    format of a base model without one, and of `tiny`'s corpus)."""
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(list(messages), tokenize=False,
                                                 add_generation_prompt=True))
    lines = []
    for message in messages:
        role, content = message["role"], message["content"].strip()
        if role == "system":
            if content != SYSTEM:
                lines.append(content)
        elif role == "user":
            lines.append(f"Question: {content}")
        else:
            lines.append(f"Answer: {content}")
    return "\n".join([*lines, "Answer:"])
