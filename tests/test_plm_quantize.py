"""Quantization and GGUF export: the file follows llama.cpp's converter conventions and reads
back with the gguf package's reader to exactly the weights the int8 copy is measured with;
4-bit is refused without bitsandbytes and a GPU; other architectures are refused by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from engram.errors import InvalidInput
from engram.plm import activations, gguf_file, prune, quantize
from engram.train import base
from train_model import tiny_model_fixture  # noqa: F401

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")


@pytest.fixture(scope="module")
def pruned(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    """The tiny model pruned by half, saved with its tokenizer."""
    model, tokenizer = base.load(tiny_model)
    acts = activations.track(model, tokenizer, ["Hugo lives in Oslo.", "Tom likes tea."])
    smaller = prune.prune(model, prune.plan(acts, model.config, 0.5))
    folder = tmp_path_factory.mktemp("pruned")
    smaller.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return smaller, folder


def test_the_gguf_file_reads_back_as_the_int8_copy(pruned: tuple[object, Path],
                                                   tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    model, folder = pruned
    config = model.config  # type: ignore[attr-defined]
    path = gguf_file.write(model, folder, tmp_path / "model.gguf")
    back = gguf_file.read(path)
    fields, tensors = back["fields"], back["tensors"]
    assert fields["general.architecture"] == "llama"
    assert fields["llama.block_count"] == 2 and fields["llama.embedding_length"] == 96
    assert (fields["llama.attention.head_count"], fields["llama.attention.head_count_kv"],
            fields["llama.feed_forward_length"]) == (2, 1, 96)
    assert fields["llama.attention.key_length"] == fields["llama.rope.dimension_count"] == 24
    assert fields["general.file_type"] == gguf.LlamaFileType.MOSTLY_Q8_0
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokens = fields["tokenizer.ggml.tokens"]
    assert len(tokens) == config.vocab_size and tokens[tokenizer.eos_token_id] == "</s>"
    assert fields["tokenizer.ggml.model"] == "gpt2" and fields["tokenizer.ggml.merges"]
    assert fields["tokenizer.ggml.bos_token_id"] == tokenizer.bos_token_id
    assert "output.weight" not in tensors  # tied: llama.cpp reads token_embd
    assert tensors["blk.0.ffn_down.weight"][0] == "Q8_0"
    assert tensors["blk.0.attn_output.weight"][0] == "F16"  # 48 wide: not whole blocks
    assert tensors["blk.1.attn_norm.weight"][0] == "F32"
    stored = quantize.q8_0_copy(model).state_dict()
    heads, kv = config.num_attention_heads, config.num_key_value_heads
    for hf, name, unpermute in (
            ("model.layers.1.self_attn.q_proj.weight", "blk.1.attn_q.weight", heads),
            ("model.layers.1.self_attn.k_proj.weight", "blk.1.attn_k.weight", kv),
            ("model.layers.0.mlp.down_proj.weight", "blk.0.ffn_down.weight", None),
            ("model.layers.0.self_attn.o_proj.weight", "blk.0.attn_output.weight", None),
            ("model.embed_tokens.weight", "token_embd.weight", None)):
        _, shape, values = tensors[name]
        assert shape == list(stored[hf].shape)
        if unpermute is not None:  # GGML's interleaved rotary layout back to Hugging Face's
            values = values.reshape(unpermute, values.shape[0] // unpermute // 2, 2, -1) \
                .swapaxes(1, 2).reshape(values.shape)
        assert np.array_equal(values.astype(np.float32), stored[hf].numpy()), name


def test_int8_costs_little_and_shrinks_the_file(pruned: tuple[object, Path],
                                                tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from engram.train.evaluate import perplexity

    model, folder = pruned
    tokenizer = AutoTokenizer.from_pretrained(folder)
    texts = ["Question: Where does Tom live?\nAnswer: Tom lives in Rome.", "Ana likes jazz."]
    full = perplexity(model, tokenizer, texts)
    int8 = perplexity(quantize.q8_0_copy(model), tokenizer, texts)
    assert abs(int8 - full) / full < 0.02
    path = gguf_file.write(model, folder, tmp_path / "model.gguf")
    assert path.stat().st_size < 0.45 * (folder / "model.safetensors").stat().st_size


def test_four_bits_without_a_gpu_is_refused() -> None:
    if base.quantizable():
        pytest.skip("this machine has bitsandbytes and a GPU")
    with pytest.raises(InvalidInput) as caught:
        quantize.check_method("4bit")
    assert caught.value.field == "quantize" and "CUDA" in str(caught.value)
    assert quantize.check_method("int8") == "int8"
    with pytest.raises(InvalidInput):
        quantize.check_method("int3")


def test_other_architectures_and_tokenizers_are_refused_by_name(
        pruned: tuple[object, Path], tmp_path: Path) -> None:
    model, folder = pruned
    other = tmp_path / "gpt2"
    shutil.copytree(folder, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "architectures": ["GPT2LMHeadModel"]}))
    assert "GPT2LMHeadModel" in (gguf_file.unsupported(other) or "")
    with pytest.raises(InvalidInput) as caught:
        gguf_file.write(model, other, tmp_path / "x.gguf")
    assert "convert_hf_to_gguf" in str(caught.value)
    assert not (tmp_path / "x.gguf").exists()
    spec = json.loads((folder / "tokenizer.json").read_text())
    (other / "config.json").write_text(json.dumps(config))
    (other / "tokenizer.json").write_text(json.dumps({**spec, "pre_tokenizer": {
        "type": "Metaspace"}}))
    assert "byte-level BPE" in (gguf_file.unsupported(other) or "")
