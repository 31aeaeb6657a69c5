"""`engram plm build` end to end on tiny Llama models built here (a 2-layer student, a 3-layer
teacher): each stage measured, the pruned model a stock Hugging Face folder, the final one a
GGUF file; an API teacher's logged answers as hard targets; a teacher with another tokenizer
handled by text-level distillation (said so); bad input refused in one line, nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from engram import Memory
from engram.cli.main import app
from engram.plm import gguf_file, teacher
from engram.plm.settings import Settings
from engram.train.tiny import corpus
from plm_models import plm_teacher_fixture, stranger_fixture  # noqa: F401
from train_model import FACTS, tiny_model_fixture  # noqa: F401

pytest.importorskip("gguf")
runner = CliRunner()
FAST = ["--steps", "4", "--recovery-steps", "6"]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Ana's memories in two domains, and two exchanges an API teacher answered."""
    data = tmp_path / "store"
    with Memory(data, embedder=None, policy=Settings(plm_teacher="*")) as mem:
        for fact in FACTS:
            mem.add(fact, user_id="ana", domains=["work" if "work" in fact else "life"])
        for question, answer in (("Where does Hugo live?", "Hugo lives in Oslo."),
                                 ("What does Omar do?", "Omar works as a pilot.")):
            teacher.logged(mem, mem.remember_turn(question, answer, user_id="ana",
                                                  session_id="s1"), "openai:big-1")
    (tmp_path / "general.txt").write_text("\n\n".join(corpus(12, seed=77)))
    return data


def _build(store: Path, *options: str) -> dict[str, Any]:
    result = runner.invoke(app, ["plm", "build", "-u", "ana", "--data", str(store),
                                 "--text", str(store.parent / "general.txt"), "--json",
                                 *FAST, *options])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_a_local_teacher_distils_prunes_recovers_and_quantizes(
        store: Path, tiny_model: Path, plm_teacher: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = store.parent / "ana-model"
    report = _build(store, "--base", str(tiny_model), "--teacher", str(plm_teacher),
                    "--out", str(out))
    rows = {row["stage"]: row for row in report["stages"]}
    assert list(rows) == ["base", "distilled", "pruned", "recovered", "int8"]
    assert report["distillation"].startswith("soft targets")
    assert rows["pruned"]["parameters"] < 0.8 * rows["base"]["parameters"]
    assert rows["int8"]["bytes"] * 3 < rows["base"]["bytes"]
    assert rows["recovered"]["user_perplexity"] < rows["pruned"]["user_perplexity"]
    assert report["held_out_texts"] >= 1
    assert json.loads((out / "report.json").read_text()) == report
    assert sorted(p.name for p in out.parent.iterdir()) == ["ana-model", "general.txt", "store"]

    pruned = Path(str(report["pruned"]))
    model = AutoModelForCausalLM.from_pretrained(pruned)  # stock classes, from its config
    tokenizer = AutoTokenizer.from_pretrained(pruned)
    assert model.config.num_attention_heads == report["kept"]["heads"]
    ids = tokenizer("Question: Where does Hugo live?\nAnswer:", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        said = model.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False,
                              pad_token_id=tokenizer.pad_token_id)
    assert said.shape[1] == ids.shape[1] + 4
    back = gguf_file.read(Path(str(report["model"])) / "model.gguf")
    assert back["fields"]["llama.feed_forward_length"] == model.config.intermediate_size
    assert (Path(str(report["model"])) / "Modelfile").read_text() == "FROM ./model.gguf\n"


def test_an_api_teachers_answers_are_hard_targets(store: Path, tiny_model: Path) -> None:
    from transformers import AutoModelForCausalLM

    out = store.parent / "hard"
    result = runner.invoke(app, ["plm", "build", "-u", "ana", "--data", str(store), *FAST,
                                 "--base", str(tiny_model), "--teacher", "openai:big-1",
                                 "--out", str(out), "--quantize", "none", "--fraction", "0.25"])
    assert result.exit_code == 0, result.output
    assert "recovered" in result.stdout and f"model: {out / 'model'}" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["distillation"] == "hard targets: the logged answers of openai:big-1"
    assert [r["stage"] for r in report["stages"]][-1] == "recovered"
    model = AutoModelForCausalLM.from_pretrained(out / "model")  # the pruned folder, as it is
    assert model.config.intermediate_size == 128  # 3/4 of 192 is 144: 4 whole blocks of 32


def test_another_tokenizer_means_text_level_distillation(store: Path, tiny_model: Path,
                                                         stranger: Path) -> None:
    report = _build(store, "--base", str(tiny_model), "--teacher", str(stranger),
                    "--out", str(store.parent / "text"), "--lora")
    assert str(report["distillation"]).startswith("text-level: the teacher's tokenizer differs")
    assert report["options"]["lora"] is True


@pytest.mark.parametrize(("options", "said"), [
    (["--fraction", "1.5"], "fraction: 1.5 is outside (0, 1)"),
    (["--fraction", "0"], "fraction: 0.0 is outside (0, 1)"),
    (["--quantize", "4bit"], "4-bit needs bitsandbytes and a CUDA GPU"),
    (["--quantize", "int3"], "'int3' is not a method"),
    (["--teacher", "openai:never"], "no logged exchanges answered by 'openai:never'"),
    (["--teacher", "./no/such/model"], "teacher: ./no/such/model is not a folder"),
    (["--base", "NOT_CAUSAL"], "is not a causal LM"),
    (["--out", "TAKEN"], "already exists"),
])
def test_bad_input_is_one_line_and_writes_nothing(store: Path, tiny_model: Path,
                                                  plm_teacher: Path, options: list[str],
                                                  said: str) -> None:
    if "4bit" in options:
        from engram.train.base import quantizable
        if quantizable():
            pytest.skip("this machine can run 4-bit")
    encoder = store.parent / "encoder"
    encoder.mkdir()
    (encoder / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    taken = store.parent / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    values = {"NOT_CAUSAL": str(encoder), "TAKEN": str(taken)}
    given = {"--base": str(tiny_model), "--teacher": str(plm_teacher),
             "--out": str(store.parent / "out")}
    for flag, value in zip(options[::2], options[1::2], strict=True):
        given[flag] = values.get(value, value)
    before = sorted(p.name for p in store.parent.iterdir())
    result = runner.invoke(app, ["plm", "build", "-u", "ana", "--data", str(store), *FAST,
                                 *[x for pair in given.items() for x in pair]])
    assert result.exit_code == 2
    assert said in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert sorted(p.name for p in store.parent.iterdir()) == before
    assert (taken / "keep.txt").read_text() == "mine"
