"""GGUF export for llama.cpp and Ollama, by the conventions of llama.cpp's
`convert_hf_to_gguf.py` for the `llama` architecture, written with its own `gguf` package:

- tensor names from `gguf.get_tensor_name_map` (blk.N.attn_q, ffn_down, token_embd, ...);
- Q and K rows permuted from Hugging Face's rotate-half layout to GGML's interleaved one
  (`permute` below is the converter's), K by its own head count;
- hyper-parameters as `llama.*` keys, `head_dim` as key/value length and rope dimension (a
  pruned model's head_dim is no longer hidden / heads);
- Q8_0 for weight matrices whose rows fill 32-wide blocks, float32 for vectors and norms, float16
  for a matrix of another width (the converter's fallback); no `output` tensor when the
  embeddings are tied (llama.cpp then reads token_embd);
- the vocabulary as the converter's `_set_vocab_gpt2` writes a byte-level BPE tokenizer, with
  `gguf.SpecialVocab` for merges and special tokens.

Other architectures and tokenizers are refused with the reason (llama.cpp's own converter
handles them from the Hugging Face folder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from engram.errors import InvalidInput
from engram.plm.quantize import quantizable

ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM")
# Hugging Face byte-level pre-tokenizers llama.cpp knows by name
PRE_TOKENIZERS = {"ByteLevel": "gpt2"}


def permute(weights: Any, n_head: int, n_head_kv: int | None) -> Any:
    """convert_hf_to_gguf.LlamaModel.permute: rotate-half rows to interleaved pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def unsupported(folder: Path) -> str | None:
    """Why this Hugging Face folder cannot be written as GGUF here, or None."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    architectures = config.get("architectures") or []
    if not set(architectures) & set(ARCHITECTURES):
        return f"GGUF export supports {', '.join(ARCHITECTURES)}, not {architectures}"
    tokenizer = folder / "tokenizer.json"
    if not tokenizer.is_file():
        return "the tokenizer is not a tokenizer.json (byte-level BPE) one"
    spec = json.loads(tokenizer.read_text(encoding="utf-8"))
    if (spec.get("model") or {}).get("type") != "BPE" or \
            (spec.get("pre_tokenizer") or {}).get("type") not in PRE_TOKENIZERS:
        return "the tokenizer is not a byte-level BPE one llama.cpp knows by name"
    return None


def write(model: Any, folder: Path, out: Path) -> Path:
    """`model` (saved with its tokenizer at `folder`) as a Q8_0 GGUF file at `out`."""
    import gguf
    from transformers import AutoTokenizer

    if reason := unsupported(folder):
        raise InvalidInput("gguf", reason, "export the Hugging Face folder and convert it "
                           "with llama.cpp's convert_hf_to_gguf.py")
    config = model.config
    head_dim = int(getattr(config, "head_dim", None)
                   or config.hidden_size // config.num_attention_heads)
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_name(folder.name)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(_rope_theta(config)))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    _vocabulary(writer, AutoTokenizer.from_pretrained(folder), folder, config.vocab_size)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    for key, tensor in model.state_dict().items():
        if tied and key.startswith("lm_head."):
            continue
        name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise InvalidInput("gguf", f"no GGUF name for {key}", "use a stock Llama model")
        data = tensor.detach().float().numpy()
        if name.endswith("attn_q.weight"):
            data = permute(data, config.num_attention_heads, config.num_attention_heads)
        elif name.endswith("attn_k.weight"):
            data = permute(data, config.num_attention_heads, config.num_key_value_heads)
        _add(writer, name, data, quantizable(tensor))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _rope_theta(config: Any) -> float:
    rope: dict[str, Any] = getattr(config, "rope_parameters", None) or {}
    theta: Any = rope.get("rope_theta") or getattr(config, "rope_theta", None) or 10000.0
    return float(theta)


def _add(writer: Any, name: str, data: Any, quantized: bool) -> None:
    from gguf import GGMLQuantizationType, quants

    if data.ndim <= 1:
        writer.add_tensor(name, data.astype(np.float32))
    elif quantized:
        kind = GGMLQuantizationType.Q8_0
        writer.add_tensor(name, quants.quantize(data, kind), raw_dtype=kind)
    else:
        writer.add_tensor(name, data.astype(np.float16))


def _vocabulary(writer: Any, tokenizer: Any, folder: Path, size: int) -> None:
    """The converter's `_set_vocab_gpt2`: tokens by id, their types, merges, special ids."""
    import gguf

    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    by_id = {i: token for token, i in tokenizer.get_vocab().items()}
    added = tokenizer.get_added_vocab()
    tokens, types = [], []
    for i in range(size):
        token = by_id.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.USER_DEFINED)
        elif token in added:
            special = tokenizer.added_tokens_decoder[i].special
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(token)
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(PRE_TOKENIZERS[spec["pre_tokenizer"]["type"]])
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(folder, load_merges=True, n_vocab=size).add_to_gguf(writer, quiet=True)


def read(path: Path) -> dict[str, Any]:
    """What a GGUF file holds, read back with gguf's reader: its metadata (scalars and
    strings) and, per tensor, its type, shape and dequantized values."""
    from gguf import GGUFReader, quants

    reader = GGUFReader(path)
    fields: dict[str, Any] = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):
            continue
        fields[name] = field.contents()
    tensors = {t.name: (t.tensor_type.name, [int(d) for d in reversed(t.shape)],
                        quants.dequantize(t.data, t.tensor_type).reshape(
                            [int(d) for d in reversed(t.shape)]))
               for t in reader.tensors}
    return {"fields": fields, "tensors": tensors}
