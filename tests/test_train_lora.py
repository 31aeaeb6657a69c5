"""The whole pipeline on a real (tiny, pre-trained) Llama model: candidates → dataset → PEFT
LoRA → registry → eval → chat through the `lora` provider → merge-and-export; a killed run
resumed from its checkpoint; forget → taint → retrain without it; quality-gated promotion;
and the bad bases. Every run here is a real training run on one CPU core."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engram.chat.session import Chat
from engram.cli.main import app
from engram.errors import InvalidInput
from engram.llm import load_provider
from engram.memory import Memory
from engram.train import candidates as cands
from engram.train import pipeline, tiny
from engram.train.evaluate import answer, recalled
from engram.train.lora import Hyper
from engram.train.provider import LoraProvider
from engram.train.registry import Registry, root_for
from train_model import (
    FACTS,
    tiny_model_fixture,  # noqa: F401 - the fixture `tiny_model`
)

runner = CliRunner()
FAST = Hyper(epochs=30, lr=3e-3, batch=4, accumulation=1, rank=8, alpha=16, dropout=0.0,
             replay=0.0)


def store(folder: Path, facts: tuple[str, ...] = FACTS) -> list[str]:
    """A store of `facts` (persistent, accepted) for user ana; their ids."""
    with Memory(folder, embedder=None) as mem:
        ids = [mem.add(f, user_id="ana", tier="persistent").id for f in facts]
        cands.curate(mem, ids, accept=True)
    return ids


@pytest.fixture(scope="module")
def general(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Held-out general text of the tiny model's kind (a seed its pre-training never used)."""
    path = tmp_path_factory.mktemp("text") / "general.txt"
    path.write_text("\n\n".join(tiny.corpus(30, seed=99)), encoding="utf-8")
    return path


def test_memories_become_an_adapter_that_recalls_them(tiny_model: Path, general: Path,
                                                      tmp_path: Path) -> None:
    data = str(tmp_path / "store")
    store(Path(data))
    ran = runner.invoke(app, ["train", "run", "-u", "ana", "--base", str(tiny_model),
                              "--epochs", "40", "--lr", "1e-2", "--rank", "8", "--batch", "4",
                              "--accumulation", "1", "--replay", "3", "--text", str(general),
                              "--data", data, "--json"])
    assert ran.exit_code == 0, ran.output
    outcome = json.loads(ran.stdout)
    assert outcome["version"] == "v1" and outcome["promoted"]
    base, adapter = outcome["metrics"]["base"], outcome["metrics"]["adapter"]
    assert base["fact_recall"] <= 0.2 and adapter["fact_recall"] >= 0.5
    assert adapter["perplexity"] < 1.25 * base["perplexity"]  # replay kept its language
    registry = Registry(root_for(data))
    assert (registry.path("v1") / "adapter_model.safetensors").is_file()
    assert not list(registry.path("v1").glob("*.bin")) and not registry.work("ana").exists()
    listed = json.loads(runner.invoke(app, ["train", "list", "--data", data, "--json"]).stdout)
    assert listed[0]["memory_ids"] and listed[0]["hyper"]["rank"] == 8
    assert len(listed[0]["memory_ids"]) + len(listed[0]["valid_ids"]) == len(FACTS)

    evaluated = runner.invoke(app, ["train", "eval", "v1", "--text", str(general),
                                    "--data", data, "--json"])
    scores = json.loads(evaluated.stdout)
    assert scores["adapter"]["fact_recall"] == adapter["fact_recall"]  # greedy: repeatable
    assert scores["base"]["perplexity"] == base["perplexity"]

    with Memory(data, embedder=None) as mem:
        learnt = pipeline.dataset_for(mem, "ana", FAST, ids=listed[0]["memory_ids"]).train
    question = next(e for e in learnt if recalled(
        pipeline_answer(tiny_model, registry, e.question), e.expect))
    chat = load_provider(f"lora:{tiny_model}", data=data, user="ana", max_new_tokens=24)
    said = chat.complete([{"role": "user", "content": question.question}])
    assert recalled(said, question.expect) and chat.name == f"lora:{tiny_model}"
    plain = load_provider(f"lora:{tiny_model}", data=data, user="ana", adapter="none",
                          max_new_tokens=24)
    assert plain.complete([{"role": "user", "content": question.question}]) != said
    auto = load_provider(f"lora:{tiny_model}", data=data, user="ana", adapter="auto",
                         max_new_tokens=24)
    assert isinstance(auto, LoraProvider)
    assert auto.complete([{"role": "user", "content": question.question}]) == said
    assert auto.current == "v1"  # the question names a person the adapter learnt about
    auto.complete([{"role": "user", "content": "What is the weather like?"}])
    assert auto.current is None  # nothing it learnt: the base answers
    with Memory(data, embedder=None) as mem:  # `engram chat` with the adapter
        conversation = Chat(mem, chat, user_id="ana", model_summaries=False)
        reply = "".join(conversation.send(question.question))
        turns = mem.conversation(conversation.session_id, user_id="ana")
    assert reply and turns[-1] == {"role": "assistant", "content": reply}

    merged = tmp_path / "merged"
    done = runner.invoke(app, ["train", "export", "v1", "--out", str(merged), "--data", data,
                               "--json"])
    assert done.exit_code == 0, done.output
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(merged)
    tokenizer = AutoTokenizer.from_pretrained(merged)
    assert recalled(answer(model, tokenizer, [question.question])[0], question.expect)
    again = runner.invoke(app, ["train", "export", "v1", "--out", str(merged), "--data", data])
    assert again.exit_code == 2 and "exists" in again.stderr


def pipeline_answer(base_path: Path, registry: Registry, question: str) -> str:
    """The registered adapter's greedy answer, loaded as `engram train eval` loads it."""
    from peft import PeftModel

    from engram.train import base

    model, tokenizer = base.load(base_path)
    peft = PeftModel.from_pretrained(model, str(registry.path("v1")))
    return answer(peft, tokenizer, [question])[0]


class Killed(Exception):
    """Stands for the process being killed half-way."""


def kill_at_step_10(step: int, total: int, loss: float) -> None:
    if step == 10:
        raise Killed


def test_a_killed_run_resumes_from_its_checkpoint(tiny_model: Path, general: Path,
                                                  tmp_path: Path) -> None:
    texts = general.read_text().split("\n\n")[:5]
    hyper = Hyper(epochs=3, lr=3e-3, batch=4, accumulation=1, rank=4, alpha=8,
                  checkpoint_every=4)
    runs = {}
    store(tmp_path)
    for name in ("whole", "killed"):  # one store, so one dataset; a registry each
        with Memory(tmp_path, embedder=None) as mem:
            registry = Registry(tmp_path / name)

            if name == "killed":
                with pytest.raises(Killed):
                    pipeline.run(mem, registry, "ana", tiny_model, hyper=hyper, texts=texts,
                                 progress=kill_at_step_10)
                assert registry.adapters() == []  # nothing registered half-way
                assert (registry.work("ana") / "checkpoint" / "state.json").is_file()
            runs[name] = pipeline.run(mem, registry, "ana", tiny_model, hyper=hyper,
                                      texts=texts)
    whole, resumed = runs["whole"].result, runs["killed"].result
    assert whole is not None and resumed is not None
    assert resumed.resumed_from == 8 and whole.resumed_from == 0
    assert resumed.losses == pytest.approx(whole.losses, rel=1e-4)
    assert runs["killed"].adapter.version == "v1"  # type: ignore[union-attr]


def test_forget_taints_then_updates_retrain_without_it_behind_a_gate(
        tiny_model: Path, general: Path, tmp_path: Path) -> None:
    texts = general.read_text().split("\n\n")[:10]
    ids = store(tmp_path)
    registry = Registry(tmp_path / "adapters")
    with Memory(tmp_path, embedder=None) as mem:
        first = pipeline.run(mem, registry, "ana", tiny_model, hyper=FAST, texts=texts).adapter
        assert first is not None
        forgotten = first.memory_ids[0]
        mem.forget(forgotten)
        assert pipeline.tainted(mem, first) == [forgotten]
        fresh = pipeline.update(mem, registry, "ana", texts=texts)
        assert fresh.promoted and fresh.adapter is not None
        assert "forgotten" in fresh.reason and fresh.adapter.parent is None  # not from v1
        assert forgotten not in fresh.adapter.memory_ids and fresh.adapter.version == "v2"
        assert pipeline.tainted(mem, fresh.adapter) == []
        assert pipeline.update(mem, registry, "ana", texts=texts).reason.startswith("not due")
        wrecked = pipeline.update(mem, registry, "ana", force=True, texts=texts,
                                  hyper=Hyper(epochs=2, lr=0.5, batch=4, accumulation=1,
                                              replay=0.0))
        assert not wrecked.promoted and wrecked.adapter is None
        assert "fell" in wrecked.reason or "rose" in wrecked.reason
        assert wrecked.metrics["active"]["fact_recall"] == fresh.metrics["adapter"][
            "fact_recall"]
        assert [a.version for a in registry.adapters()] == ["v1", "v2"]
        assert registry.active("ana").version == "v2"  # type: ignore[union-attr]
    assert set(ids) - {forgotten} >= set(fresh.adapter.memory_ids)


def test_bases_that_cannot_be_trained_get_one_clear_line(tiny_model: Path,
                                                         tmp_path: Path) -> None:
    data = str(tmp_path / "store")
    store(Path(data))

    def run(base: Path, user: str = "ana") -> str:
        result = runner.invoke(app, ["train", "run", "-u", user, "--base", str(base),
                                     "--data", data])
        assert result.exit_code == 2 and "Traceback" not in result.output
        return result.stderr

    assert "no config.json" in run(tmp_path)
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = tmp_path / "gpt2"
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=800)).save_pretrained(
        gpt2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (gpt2 / name).write_bytes((tiny_model / name).read_bytes())
    assert "none of the LoRA target modules" in run(gpt2)
    encoder = tmp_path / "encoder"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    assert "not a causal LM" in run(encoder)
    assert "none accepted" in run(tiny_model, user="bob")
    with pytest.raises(InvalidInput, match="is below 1"):
        Hyper(epochs=0)
