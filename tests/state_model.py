"""The tiny Llama models the state tests run (built once per test process from a config, random
weights: `engram.state.tiny`), and a store of saved states in a test's folder."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from engram.state.engine import LocalModel
from engram.state.tiny import build, sentences

FOLDER = Path(tempfile.mkdtemp(prefix="engram-tiny-"))
atexit.register(shutil.rmtree, FOLDER, True)


@functools.cache
def tiny_path(seed: int = 0) -> Path:
    """A 2-layer Llama (hidden 64, 4 heads, 2 KV heads) named `tiny`; another seed gives
    other weights under the same name."""
    return build(FOLDER / f"seed{seed}" / "tiny", seed=seed)


@functools.cache
def tiny_model(seed: int = 0) -> LocalModel:
    return LocalModel.load(tiny_path(seed))


def prompt(n: int, seed: int = 1) -> str:
    return " ".join(sentences(n, seed))
