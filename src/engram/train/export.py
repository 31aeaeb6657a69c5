"""Merge-and-export: base + adapter folded into plain weights, saved as a Hugging Face folder
that any tool loads without PEFT (transformers, llama.cpp's converter, vLLM, Ollama's import).
Written into a temporary folder beside the target and renamed, so a failure leaves nothing."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from engram.errors import EngramError, InvalidInput
from engram.train import base
from engram.train.registry import Registry


def merge(registry: Registry, version: str, out: str | Path) -> Path:
    """Write base + `version` merged at `out` (which must not exist yet); returns `out`."""
    from peft import PeftModel

    adapter = registry.get(version)
    target = Path(out).expanduser()
    if target.exists():
        raise InvalidInput("out", f"{target} exists", "give a new folder")
    folder = base.check_folder(adapter.base)
    if base.base_hash(folder) != adapter.base_hash:
        raise InvalidInput("base", f"{folder} changed since {version} was trained on it",
                           "restore the base model the adapter was trained on")
    model, tokenizer = base.load(folder)
    merged = PeftModel.from_pretrained(model, str(registry.path(version))).merge_and_unload()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        merged.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        tmp.rename(target)
    except OSError as exc:
        raise EngramError(f"out: writing {target} failed ({exc}); free space and try "
                          "again") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
