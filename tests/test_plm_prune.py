"""Activation tracking and structured pruning on real tiny Llama models: pruning equals
switching the removed heads and neurons off in the original (to the last bit), the pruned
model is saved, loads and generates with stock transformers classes, grouped-query attention
loses whole key/value groups and multi-query attention loses query heads; the domains report."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from engram import Memory
from engram.cli.main import app
from engram.errors import InvalidInput
from engram.plm import activations, prune
from train_model import tiny_model_fixture  # noqa: F401

torch = pytest.importorskip("torch")
TEXTS = ["Hugo lives in Oslo.", "Question: Where does Tom live?\nAnswer: Tom lives in Rome."]


def _switched_off(model: Any, chosen: prune.Plan) -> Any:
    """The original model with every unit `chosen` drops multiplied by zero on its way out."""
    off = copy.deepcopy(model)
    size = activations.head_dim(model)
    with torch.no_grad():
        for i, layer in enumerate(activations.layers_of(off)):
            for head in set(range(model.config.num_attention_heads)) - set(chosen.heads[i]):
                layer.self_attn.o_proj.weight[:, head * size:(head + 1) * size] = 0
            width = layer.mlp.down_proj.in_features
            layer.mlp.down_proj.weight[:, sorted(set(range(width)) - set(chosen.neurons[i]))] = 0
    return off


def test_tracking_counts_every_head_and_neuron(tiny_model: Path) -> None:
    from engram.train import base

    model, tokenizer = base.load(tiny_model)
    acts = activations.track(model, tokenizer, TEXTS)
    layers, heads = model.config.num_hidden_layers, model.config.num_attention_heads
    assert acts.heads.shape == (layers, heads)
    assert acts.neurons.shape == (layers, model.config.intermediate_size)
    assert acts.tokens == sum(len(tokenizer(t)["input_ids"]) for t in TEXTS)
    assert (acts.heads > 0).all() and (acts.neuron_importance >= 0).all()
    with pytest.raises(InvalidInput):
        activations.track(model, tokenizer, [])


def test_pruning_equals_switching_the_units_off(tiny_model: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from engram.train import base

    model, tokenizer = base.load(tiny_model)
    chosen = prune.plan(activations.track(model, tokenizer, TEXTS), model.config, 0.5)
    assert [len(h) for h in chosen.heads] == [2, 2] and [len(k) for k in chosen.kv_heads] == [1, 1]
    assert {len(n) for n in chosen.neurons} == {96}  # half of 192, a multiple of 32
    smaller = prune.prune(model, chosen)
    assert prune.parameters(smaller) < prune.parameters(model)
    ids = tokenizer(TEXTS[1], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = _switched_off(model, chosen)(input_ids=ids).logits
        assert torch.equal(smaller(input_ids=ids).logits, expected)
    smaller.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["num_attention_heads"], config["num_key_value_heads"],
            config["intermediate_size"], config["head_dim"]) == (2, 1, 96, 24)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)  # stock class, from its config
    assert type(loaded).__name__ == "LlamaForCausalLM"
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, expected, atol=1e-5)
    out = loaded.generate(ids, max_new_tokens=6, min_new_tokens=6, do_sample=False,
                          pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] == ids.shape[1] + 6


def test_multi_query_attention_loses_query_heads() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=64, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1)
    model: Any = LlamaForCausalLM(config)
    model.eval()
    rng = np.random.default_rng(0)
    acts = activations.Activations(rng.random((2, 4)), rng.random((2, 128)),
                                   rng.random((2, 4)), rng.random((2, 128)), 10)
    chosen = prune.plan(acts, config, 0.5)
    assert chosen.kv_heads == [[0], [0]] and [len(h) for h in chosen.heads] == [2, 2]
    for layer, heads in enumerate(chosen.heads):  # the most important ones stay
        assert set(heads) == set(np.argsort(-acts.head_importance[layer])[:2].tolist())
    smaller = prune.prune(model, chosen)
    ids = torch.tensor([[1, 5, 9, 3]])
    with torch.no_grad():
        assert torch.allclose(smaller(input_ids=ids).logits,
                              _switched_off(model, chosen)(input_ids=ids).logits, atol=1e-6)


@given(total=st.integers(1, 4096), fraction=st.floats(0.01, 0.99))
def test_kept_is_within_bounds_and_fills_blocks(total: int, fraction: float) -> None:
    keep = prune.kept(total, fraction, prune.BLOCK)
    assert 1 <= keep <= total
    if total % prune.BLOCK == 0:
        assert keep % prune.BLOCK == 0


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_a_fraction_outside_zero_one_is_refused(fraction: float) -> None:
    with pytest.raises(InvalidInput) as caught:
        prune.check_fraction(fraction)
    assert caught.value.field == "fraction"


def test_domains_report_the_users_domains_and_their_shares(tiny_model: Path,
                                                           tmp_path: Path) -> None:
    data = tmp_path / "store"
    with Memory(data, embedder=None) as mem:
        for text in ("Hugo lives in Oslo.", "Lena lives in Accra.", "Rosa lives in Lima."):
            mem.add(text, user_id="ana", domains=["places"])
        mem.add("Omar works as a pilot.", user_id="ana", domains=["work"])
        mem.add("Tom likes tea.", user_id="bob", domains=["food"])
    runner = CliRunner()
    result = runner.invoke(app, ["plm", "domains", "-u", "ana", "--base", str(tiny_model),
                                 "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["domain"], r["texts"], r["share"]) for r in rows] == \
        [("places", 3, 0.75), ("work", 1, 0.25)]  # bob's food is not ana's
    for row in rows:
        assert 0 < row["heads_used"] <= 1 and 0 < row["neurons_used"] <= 1
        assert 0 <= row["overlap"] <= 1
    table = runner.invoke(app, ["plm", "domains", "-u", "ana", "--base", str(tiny_model),
                                "--data", str(data)])
    assert table.exit_code == 0 and "places" in table.stdout and "75 %" in table.stdout
    missing = runner.invoke(app, ["plm", "domains", "-u", "ana", "--base", str(tmp_path),
                                  "--data", str(data)])
    assert missing.exit_code == 2 and "no config.json" in missing.stderr
