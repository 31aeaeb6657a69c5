"""The tiny pre-trained Llama model the training tests share, built once per test session
(`engram.train.tiny.build`: 2 layers, hidden 96, a BPE tokenizer, 300 pre-training steps on the
generated corpus; about 20 s on one core). Import the fixture into a test module:

    from train_model import tiny_model_fixture  # noqa: F401 - the fixture `tiny_model`
"""

from __future__ import annotations

from pathlib import Path

import pytest

# About people the tiny model's world names only as someone's relative: new knowledge
FACTS = ("Hugo lives in Oslo.", "Nina's favourite drink is cocoa.", "Omar works as a pilot.",
         "Rosa likes opera.", "Ivan works at Lima Bank.", "Lena lives in Accra.",
         "Otto's favourite sport is golf.", "Vera works as a tailor.")


@pytest.fixture(scope="session", name="tiny_model")
def tiny_model_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved Hugging Face folder of a small pre-trained Llama causal LM."""
    pytest.importorskip("peft", reason="the train extra is not installed")
    import torch

    from engram.train.tiny import build

    torch.set_num_threads(1)  # a model this small trains fastest on one core of a busy machine
    return build(tmp_path_factory.mktemp("tiny") / "llama", layers=2, hidden=96,
                 pretrain_steps=300)
