"""Distillation: the loss (alpha * KL * T^2 + (1 - alpha) * CE) by its defining properties, the
vocabulary check that decides between soft targets and text-level distillation, and a student
that moves towards a teacher with more layers (real tiny Llama models)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engram.errors import InvalidInput
from engram.plm import distill
from plm_models import plm_teacher_fixture, stranger_fixture  # noqa: F401
from train_model import tiny_model_fixture  # noqa: F401

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _logits(seed: int, vocab: int = 7) -> tuple[Any, Any, Any]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 5, vocab, generator=generator) * 3
    labels = torch.randint(0, vocab, (2, 5), generator=generator)
    labels[0, :2] = -100  # a prompt: no hard target there
    return logits, labels, torch.ones(2, 5)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), alpha=st.floats(0.0, 1.0),
       temperature=st.floats(0.5, 4.0))
def test_the_loss_is_the_weighted_sum_of_its_terms(seed: int, alpha: float,
                                                   temperature: float) -> None:
    student, labels, mask = _logits(seed)
    teacher, _, _ = _logits(seed + 1)
    hard = F.cross_entropy(student[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                           ignore_index=-100)
    p_teacher = F.softmax(teacher[:, :-1] / temperature, -1)
    kl = (p_teacher * (p_teacher.log() - F.log_softmax(student[:, :-1] / temperature, -1))) \
        .sum(-1).mean()
    expected = alpha * kl * temperature**2 + (1 - alpha) * hard
    got = distill.loss(student, labels, mask, teacher, alpha, temperature)
    assert float(got) == pytest.approx(float(expected), rel=1e-4, abs=1e-5)
    assert float(kl) >= -1e-6


@given(seed=st.integers(0, 10_000))
def test_a_student_equal_to_its_teacher_pays_only_the_hard_term(seed: int) -> None:
    student, labels, mask = _logits(seed)
    hard = distill.loss(student, labels, mask)  # no teacher: cross-entropy alone
    assert float(distill.loss(student, labels, mask, student.clone(), 0.5, 2.0)) == \
        pytest.approx(0.5 * float(hard), rel=1e-5)
    assert float(distill.loss(student, labels, mask, student.clone(), 0.0, 2.0)) == \
        pytest.approx(float(hard), rel=1e-6)


def test_padding_carries_no_soft_target() -> None:
    student, labels, mask = _logits(3)
    teacher, _, _ = _logits(4)
    mask[1, 3:] = 0
    changed = teacher.clone()
    changed[1, 3:] = 100.0  # the teacher's view of padding is ignored
    assert float(distill.loss(student, labels, mask, teacher, 1.0)) == \
        pytest.approx(float(distill.loss(student, labels, mask, changed, 1.0)))


@pytest.mark.parametrize(("field", "hyper"), [
    ("alpha", {"alpha": 1.5}), ("temperature", {"temperature": 0.0}), ("steps", {"batch": 0})])
def test_bad_settings_are_refused(field: str, hyper: dict[str, float]) -> None:
    with pytest.raises(InvalidInput) as caught:
        distill.Hyper(**hyper)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_the_vocabulary_check_names_the_difference(tiny_model: Path, plm_teacher: Path,
                                                   stranger: Path) -> None:
    from transformers import AutoTokenizer

    ours = AutoTokenizer.from_pretrained(tiny_model)
    assert distill.same_vocabulary(ours, AutoTokenizer.from_pretrained(plm_teacher)) is None
    reason = distill.same_vocabulary(ours, AutoTokenizer.from_pretrained(stranger))
    assert reason is not None and "vocabularies differ" in reason


def test_a_student_moves_towards_a_deeper_teacher(tiny_model: Path, plm_teacher: Path) -> None:
    from engram.train import base

    student, tokenizer = base.load(tiny_model)
    teacher, _ = base.load(plm_teacher)
    assert teacher.config.num_hidden_layers > student.config.num_hidden_layers
    samples = [distill.Sample("", t) for t in (
        "Hugo lives in Oslo.", "Nina's favourite drink is cocoa.", "Omar works as a pilot.")]
    inputs = distill.batch(tokenizer, samples, bos=True)

    def kl() -> float:
        with torch.no_grad():
            s = student(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
            t = teacher(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        return float(distill.loss(s.logits, inputs["labels"], inputs["attention_mask"],
                                  t.logits, alpha=1.0))

    before = kl()
    losses = distill.distil(student, tokenizer, samples, teacher,
                            distill.Hyper(steps=8, batch=3, lr=3e-3, alpha=1.0))
    assert len(losses) == 8 and all(math.isfinite(v) for v in losses)
    assert kl() < 0.8 * before


def test_labels_cover_the_answer_not_the_prompt(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    inputs = distill.batch(tokenizer, [distill.Sample("Question: Where?\nAnswer:", " Oslo"),
                                       distill.Sample("", "Oslo is far.")], bos=True)
    prompt = len(tokenizer("Question: Where?\nAnswer:")["input_ids"])
    first, second = inputs["labels"].tolist()
    assert first[:prompt] == [-100] * prompt and first[prompt] != -100
    assert first[-1] in (tokenizer.eos_token_id, -100)
    assert second[0] == -100 and second[1] != -100  # BOS is read, never a target
    assert str(tokenizer.decode([t for t in first if t != -100],
                                skip_special_tokens=True)).strip() == "Oslo"
    with pytest.raises(InvalidInput):
        distill.distil(None, tokenizer, [])
