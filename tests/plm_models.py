"""Models the personal-model tests share, built once per test session from configs: the
student is `train_model`'s pre-trained tiny Llama (2 layers); the teacher has more layers (3)
and the same tokenizer; the stranger has a tokenizer of its own. Import the fixtures:

    from plm_models import plm_teacher_fixture, stranger_fixture  # noqa: F401
    from train_model import tiny_model_fixture  # noqa: F401
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session", name="plm_teacher")
def plm_teacher_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-layer Llama with the student's tokenizer (the same corpus and seed)."""
    pytest.importorskip("gguf", reason="the plm extra is not installed")
    from engram.train.tiny import build

    return build(tmp_path_factory.mktemp("teacher") / "llama", layers=3, hidden=96,
                 pretrain_steps=0, seed=0)


@pytest.fixture(scope="session", name="stranger")
def stranger_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model whose tokenizer has another vocabulary."""
    pytest.importorskip("gguf", reason="the plm extra is not installed")
    from engram.train.tiny import build

    return build(tmp_path_factory.mktemp("stranger") / "llama", layers=3, hidden=64, vocab=500,
                 pretrain_steps=0, seed=0)
