"""Saved KV caches of a real (tiny, random-weight) Llama model: a restored session decodes
exactly as an uninterrupted one, int8 storage drifts within a bound, branches share chunks,
every mismatch and every damaged file is refused, a failed save keeps the old state, and
eviction keeps the byte cap."""

from __future__ import annotations

import errno
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engram.state.engine import Decoding, LocalModel, Resumable
from engram.state.errors import StateCorrupt, StateMismatch, StateNotSaved
from engram.state.fingerprint import FIELDS, Fingerprint
from engram.state.manifest import common_prefix
from engram.state.store import Restored, StateStore
from state_model import prompt, tiny_model


@pytest.fixture
def model() -> LocalModel:
    return tiny_model()


def store(folder: Path, **options: Any) -> StateStore:
    return StateStore(folder, chunk_tokens=64, **options)


def two_turns(model: LocalModel) -> tuple[list[int], list[int]]:
    first = model.encode(prompt(12))
    return first, model.encode(prompt(12) + " Does Alice like tea? Yes, Alice does.")


def test_restored_session_decodes_token_for_token_like_an_uninterrupted_one(
        tmp_path: Path, model: LocalModel) -> None:
    first, second = two_turns(model)
    Resumable(model, store(tmp_path / "a")).generate("s", first, max_new_tokens=6)
    saved = store(tmp_path / "a").require("s").tokens  # the prompt and the answer but its last
    assert saved[:len(first)] == tuple(first) and len(saved) == len(first) + 5
    restarted = Resumable(LocalModel.load(Path(model.model.name_or_path)),
                          store(tmp_path / "a"))  # a new process: model and store reloaded
    resumed = restarted.generate("s", second, max_new_tokens=12)
    whole = Resumable(model, store(tmp_path / "b")).generate("s", second, max_new_tokens=12)
    assert resumed.tokens == whole.tokens and len(resumed.tokens) == 12
    assert resumed.restored and resumed.source == "session"
    shared = common_prefix(saved, second)
    assert resumed.restored_tokens == shared  # the longest saved prefix the prompt starts with
    assert resumed.prefilled_tokens == len(second) - shared
    assert not whole.restored and whole.prefilled_tokens == len(second)


def test_a_prompt_that_is_exactly_the_saved_prefix_still_decodes(
        tmp_path: Path, model: LocalModel) -> None:
    ids = model.encode(prompt(8))
    states = store(tmp_path)
    runner = Resumable(model, states)
    first = runner.generate("s", ids, max_new_tokens=4)
    saved = states.require("s").tokens
    again = runner.generate("s", list(saved), max_new_tokens=4)
    assert again.restored_tokens == len(saved) - 1 and again.prefilled_tokens == 1
    assert again.tokens[:1] == first.tokens[-1:]  # the token that was generated, not yet fed


def logits_after(model: LocalModel, restored: Restored, ids: list[int]) -> torch.Tensor:
    cache = model.cache(restored)
    return model.prefill(ids[restored.tokens:], cache, restored.tokens)


@pytest.mark.parametrize(("storage", "bound"), [("float16", 2e-3), ("int8", 0.05)])
def test_compact_storage_drifts_within_a_measured_bound(
        tmp_path: Path, model: LocalModel, storage: str, bound: float) -> None:
    ids = model.encode(prompt(20))
    cache = model.cache()
    model.prefill(ids[:-8], cache)
    from engram.state.cache import layers_of

    exact = logits_after(model, Restored(len(ids) - 8, layers_of(cache), "session"), ids)
    states = store(tmp_path)
    states.save("s", model.fingerprint, ids[:-8], layers_of(cache), storage)
    restored = states.restore("s", model.fingerprint, ids, model.dtype, storage)
    drifted = logits_after(model, restored, ids)
    drift = float((drifted - exact).abs().max() / exact.abs().max())
    assert 0 < drift < bound  # lossy, and bounded (docs/state.md quotes the measured drift)
    assert int(drifted.argmax()) == int(exact.argmax())
    exact_bytes = store(tmp_path / "exact")
    exact_bytes.save("s", model.fingerprint, ids[:-8], layers_of(cache))
    ratio = {"float16": 2, "int8": 4}[storage]
    assert states.bytes_used() < exact_bytes.bytes_used() / ratio * 1.3


def test_a_branch_shares_the_prefix_chunks_and_diverges_on_its_own(
        tmp_path: Path, model: LocalModel) -> None:
    states = store(tmp_path)
    runner = Resumable(model, states)
    ids = model.encode(prompt(16))
    runner.generate("main", ids, max_new_tokens=3)
    held, files = states.bytes_used(), len(states.chunk_files())
    branch = states.branch("main", "side")
    assert (states.bytes_used(), len(states.chunk_files())) == (held, files)
    assert branch.parent == "main" and branch.chunks == states.require("main").chunks
    side = runner.generate("side", list(branch.tokens) + model.encode(" Chen likes maps."),
                           max_new_tokens=3)
    assert side.restored_tokens == len(branch.tokens)
    main_chunks = {c.address for c in states.require("main").chunks}
    side_chunks = {c.address for c in states.require("side").chunks}
    assert len(main_chunks & side_chunks) == len(branch.tokens) // 64  # the aligned prefix
    assert runner.generate("main", ids, max_new_tokens=3).source == "session"
    with pytest.raises(Exception, match="already has a saved state"):
        states.branch("main", "side")


def test_a_new_session_restores_chunks_of_a_prompt_another_session_began(
        tmp_path: Path, model: LocalModel) -> None:
    states = store(tmp_path)
    runner = Resumable(model, states)
    ids = model.encode(prompt(16))
    runner.generate("first", ids, max_new_tokens=2)
    other = runner.generate("second", ids[:150] + model.encode(" Hana went to Riga."),
                            max_new_tokens=2)
    assert other.source == "shared prefix" and other.restored_tokens == 128


@pytest.mark.parametrize("field", FIELDS)
def test_a_state_of_another_model_tokenizer_dtype_or_layout_is_refused(
        tmp_path: Path, model: LocalModel, field: str) -> None:
    states = store(tmp_path)
    ids = model.encode(prompt(4))
    Resumable(model, states).generate("s", ids, max_new_tokens=2)
    other: Fingerprint = replace(model.fingerprint, **{field: "something-else"})
    with pytest.raises(StateMismatch, match=f"has {field} ") as refused:
        states.restore("s", other, ids, model.dtype)
    assert refused.value.field == field
    with pytest.raises(StateMismatch):
        states.load("s", other, list(states.require("s").tokens), model.dtype)


def test_a_model_with_other_weights_under_the_same_name_is_refused(
        tmp_path: Path, model: LocalModel) -> None:
    states = store(tmp_path)
    ids = model.encode(prompt(4))
    Resumable(model, states).generate("s", ids, max_new_tokens=2)
    retrained = tiny_model(seed=7)
    assert retrained.model_id == model.model_id
    with pytest.raises(StateMismatch, match="has weights"):
        Resumable(retrained, states).generate("s", ids, max_new_tokens=2)


def test_a_state_of_another_prefix_is_refused(tmp_path: Path, model: LocalModel) -> None:
    states = store(tmp_path)
    ids = model.encode(prompt(4))
    Resumable(model, states).generate("s", ids, max_new_tokens=2)
    saved = list(states.require("s").tokens)
    assert len(states.load("s", model.fingerprint, saved, model.dtype)[0][0][0]) == len(saved)
    with pytest.raises(StateMismatch, match="has prefix"):
        states.load("s", model.fingerprint, [*saved[:-1], saved[-1] + 1], model.dtype)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_a_damaged_chunk_is_refused_then_repaired_by_gc(
        tmp_path: Path, model: LocalModel, damage: str) -> None:
    states = store(tmp_path)
    runner = Resumable(model, states)
    ids = model.encode(prompt(10))
    runner.generate("s", ids, max_new_tokens=2)
    chunk = states.chunk_files()[0]
    data = bytearray(chunk.read_bytes())
    if damage == "flip":
        data[-5] ^= 0x40
        chunk.write_bytes(bytes(data))
    elif damage == "truncate":
        chunk.write_bytes(bytes(data[:-100]))
    else:
        chunk.unlink()
    with pytest.raises(StateCorrupt, match="engram state verify"):
        runner.generate("s", ids, max_new_tokens=2)
    assert states.verify()
    dropped, _ = states.gc()
    assert dropped == ["s"] and states.verify() == []
    assert not runner.generate("s", ids, max_new_tokens=2).restored  # re-prefilled, not wrong


def test_a_tampered_manifest_is_refused(tmp_path: Path, model: LocalModel) -> None:
    states = store(tmp_path)
    ids = model.encode(prompt(4))
    Resumable(model, states).generate("s", ids, max_new_tokens=2)
    path = states.manifest_path("s")
    path.write_text(path.read_text().replace('"turns": 0', '"turns": 1'))
    with pytest.raises(StateCorrupt, match="checksum"):
        states.restore("s", model.fingerprint, ids, model.dtype)


def test_a_save_that_fails_part_way_keeps_the_previous_state(
        tmp_path: Path, model: LocalModel, monkeypatch: pytest.MonkeyPatch) -> None:
    states = store(tmp_path)
    runner = Resumable(model, states)
    first, second = two_turns(model)
    runner.generate("s", first, max_new_tokens=2)
    before = states.require("s")
    calls = {"n": 0}
    real_fsync = os.fsync

    def full_disk(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # restore touches the manifest, a first new chunk is written, the
            # second finds the disk full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr("engram.state.store.os.fsync", full_disk)
    with pytest.raises(StateNotSaved, match=r"No space left on device.*previous state is kept"):
        runner.generate("s", second + model.encode(prompt(8, seed=3)), max_new_tokens=2)
    monkeypatch.undo()
    after = states.require("s")
    assert (after.tokens, after.chunks) == (before.tokens, before.chunks)
    assert not list(tmp_path.glob("**/*.tmp-*"))
    assert runner.generate("s", first, max_new_tokens=2).source == "session"


def fake_layers(n: int, layers: int = 2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(torch.randn(2, n, 8), torch.randn(2, n, 8)) for _ in range(layers)]


FAKE = Fingerprint("fake", "w" * 64, "t" * 64, "float32", "kv/heads-positions-dim/v1:layers=2,"
                   "kv_heads=2,head_dim=8,rope_type=default,rope_theta=1")


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=8),
       cap=st.integers(0, 20_000))
def test_eviction_keeps_the_byte_cap_and_evicts_least_recent_first_only_as_needed(
        tmp_path_factory: pytest.TempPathFactory, lengths: list[int], cap: int) -> None:
    root = tmp_path_factory.mktemp("evict")
    capped = StateStore(root / "capped", chunk_tokens=16, max_bytes=cap)
    uncapped = StateStore(root / "uncapped", chunk_tokens=16, max_bytes=10**12)
    for i, n in enumerate(lengths):
        ids, layers = list(range(i * 100, i * 100 + n)), fake_layers(n)
        capped.save(f"s{i}", FAKE, ids, layers)
        uncapped.save(f"s{i}", FAKE, ids, layers)
        assert capped.bytes_used() <= cap
    kept = [int(m.session[1:]) for m in capped.sessions()]
    newest = len(lengths) - 1
    assert kept == list(range(newest, newest - len(kept), -1))  # the most recent survive
    sizes = [uncapped.require(f"s{i}").bytes for i in range(newest, -1, -1)]
    if len(kept) < len(lengths):  # one more would not have fitted
        assert sum(sizes[:len(kept) + 1]) > cap
    assert capped.verify() == []


def test_attention_shares_sum_to_one_over_the_whole_prompt(model: LocalModel) -> None:
    ids = model.encode(prompt(4))
    half = len(ids) // 2
    decoding = Decoding(model, ids, Restored(0, None, ""), started=0.0, max_new_tokens=1,
                        watch={"first half": (0, half), "second half": (half, len(ids))})
    list(decoding)
    assert decoding.generation is not None
    shares = decoding.generation.attention
    assert all(0 < v < 1 for v in shares.values())
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("storage", ["native", "int8"])
def test_a_chunk_is_a_safetensors_file_any_reader_opens(
        tmp_path: Path, model: LocalModel, storage: str) -> None:
    from safetensors import safe_open

    states = store(tmp_path)
    ids = model.encode(prompt(8))
    cache = model.cache()
    model.prefill(ids, cache)
    from engram.state.cache import layers_of

    states.save("s", model.fingerprint, ids, layers_of(cache), storage)
    first = states.require("s").chunks[0]
    with safe_open(str(states.chunk_path(first.address)), framework="pt") as opened:
        keys = opened.get_tensor("k.0")
        meta, names = opened.metadata(), set(opened.keys())
    assert keys.shape == (2, 64, 16)
    assert meta["storage"] == storage and meta["address"] == first.address
    if storage == "native":
        assert torch.equal(keys, layers_of(cache)[0][0][:, :64])
    else:
        assert keys.dtype == torch.int8 and {"k.0.scale", "v.1.scale"} <= names
