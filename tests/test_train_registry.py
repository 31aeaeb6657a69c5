"""The adapter registry: versions, the active adapter per user, rollback, never pointing at a
half-written adapter (a failing save, a full disk), taint after forget, and dynamic
selection by the query's names. No model is needed: an adapter here is a folder of bytes."""

from __future__ import annotations

import errno
import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engram import ManualClock
from engram.cli.main import app
from engram.errors import EngramError, InvalidInput
from engram.memory import Memory
from engram.train.pipeline import due, queue, tainted
from engram.train.registry import Adapter, Registry, root_for
from engram.train.select import choose

runner = CliRunner()


def record(user: str = "ana", memory_ids: tuple[str, ...] = (), **fields: object) -> Adapter:
    return Adapter(version="", user=user, base="/models/base", base_hash="b" * 64,
                   dataset_hash="d" * 64, memory_ids=memory_ids,
                   created_at="2026-01-05T09:00:00Z", **fields)  # type: ignore[arg-type]


def weights(folder: Path) -> None:
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 128)


def test_versions_count_up_and_the_newest_is_active(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    first = reg.register(record(), weights)
    second = reg.register(record(), weights)
    other = reg.register(record("bob"), weights, activate=False)
    assert (first.version, second.version, other.version) == ("v1", "v2", "v3")
    assert second.size_bytes == 128 and (tmp_path / "v2" / "adapter_model.safetensors").is_file()
    assert reg.active("ana") == second and reg.active("bob") is None
    assert [a.version for a in reg.adapters("ana")] == ["v1", "v2"]
    assert reg.rollback("ana").version == "v1" and reg.active("ana") == first
    with pytest.raises(InvalidInput, match="first adapter"):
        reg.rollback("ana")
    assert reg.use("v2").version == "v2"
    with pytest.raises(InvalidInput, match="no adapter v9"):
        reg.use("v9")
    with pytest.raises(InvalidInput, match="not a version"):
        reg.get("latest")
    assert not list(tmp_path.glob(".saving-*"))


def test_a_failed_save_leaves_the_last_good_version(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.register(record(), weights)

    def full_disk(folder: Path) -> None:
        (folder / "adapter_model.safetensors").write_bytes(b"\0" * 64)  # half written
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(EngramError, match=r"disk is full.*still points at v1"):
        reg.register(record(), full_disk)
    assert [a.version for a in reg.adapters()] == ["v1"] and reg.active("ana") == reg.get("v1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["registry.json", "v1"]
    (tmp_path / "v2").mkdir()  # an orphan folder (a crash between rename and registry write)
    assert reg.register(record(), weights).version == "v3"


def test_the_registry_folder_follows_the_store(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENGRAM_ADAPTERS", raising=False)
    assert root_for(tmp_path / "store") == tmp_path / "store" / "adapters"
    assert root_for("postgresql://db/x", tmp_path / "a") == tmp_path / "a"
    with pytest.raises(InvalidInput, match="--adapters"):
        root_for("postgresql://db/x")


def test_forgetting_a_learnt_memory_taints_the_adapter(mem: Memory, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "adapters")
    oslo = mem.add("Ana lives in Oslo.", user_id="ana", tier="persistent").id
    opera = mem.add("Ana likes opera.", user_id="ana", tier="persistent").id
    adapter = reg.register(record(memory_ids=(oslo, opera)), weights)
    assert tainted(mem, adapter) == [] and due(mem, reg, "ana")[0] is False
    mem.forget(opera)
    assert tainted(mem, adapter) == [opera]
    ready, why = due(mem, reg, "ana")
    assert ready and "forgotten" in why
    assert "opera" not in (tmp_path / "adapters" / "registry.json").read_text()  # ids only


def test_accepted_memories_and_feedback_queue_until_the_threshold(
        mem: Memory, tmp_path: Path, clock: ManualClock) -> None:
    from engram.train import candidates as cands

    reg = Registry(tmp_path / "adapters")
    ids = [mem.add(f"Ana likes thing{i}.", user_id="ana", tier="persistent").id
           for i in range(13)]
    cands.curate(mem, ids[:4], accept=True)
    reg.register(record(memory_ids=tuple(ids[:4])), weights)
    assert queue(mem, reg, "ana") == [] and not due(mem, reg, "ana")[0]
    cands.curate(mem, ids[4:], accept=True)
    clock.advance(timedelta(hours=1))
    mem.feedback(ids[0], "correction", correction="Ana likes chess.")
    waiting = queue(mem, reg, "ana")
    assert set(waiting) == set(ids[4:]) | {ids[0]}
    ready, why = due(mem, reg, "ana")
    assert ready and why == "10 memories wait to be learnt"
    cands.curate(mem, ids[5:], accept=False)
    assert due(mem, reg, "ana") == (False, "2 of 10 memories wait to be learnt; v1 is recent")
    clock.advance(timedelta(hours=24))
    assert due(mem, reg, "ana") == (True, "v1 is 25 hours old")


def test_selection_picks_the_adapter_naming_the_query(mem: Memory, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "adapters")
    cook = mem.add("Ana bakes sourdough.", user_id="ana", tier="persistent",
                   domains=["cooking"]).id
    work = mem.add("Ana works at Lima Bank.", user_id="ana", tier="persistent",
                   domains=["work"], entities=["Lima Bank"]).id
    reg.register(record(memory_ids=(cook,), domains=("cooking",)), weights)
    reg.register(record(memory_ids=(work,), domains=("work",)), weights)
    assert choose(mem, reg, "ana", "Any cooking tips for tonight?") == reg.get("v1")
    assert choose(mem, reg, "ana", "When does Lima Bank open?") == reg.get("v2")
    assert choose(mem, reg, "ana", "What is the weather?") is None
    assert choose(mem, reg, "bob", "cooking") is None
    mem.forget(work)  # a tainted adapter is never chosen
    assert choose(mem, reg, "ana", "When does Lima Bank open?") is None


def test_cli_lists_shows_uses_and_rolls_back(tmp_path: Path) -> None:
    data = str(tmp_path / "store")
    with Memory(data, embedder=None) as mem:
        kept = mem.add("Ana lives in Oslo.", user_id="ana", tier="persistent").id
        gone = mem.add("Ana likes opera.", user_id="ana", tier="persistent").id
        reg = Registry(root_for(data))
        reg.register(record(memory_ids=(kept,)), weights)
        reg.register(record(memory_ids=(kept, gone), metrics={"adapter": {
            "fact_recall": 1.0, "perplexity": 2.5}}), weights)
        mem.forget(gone)
    listed = json.loads(runner.invoke(app, ["train", "list", "--data", data, "--json"]).stdout)
    assert [(r["version"], r["tainted"], r["active"]) for r in listed] == [
        ("v1", [], False), ("v2", [gone], True)]
    assert {"version", "base", "dataset_hash", "memory_ids", "metrics", "tainted"} <= set(
        listed[0])
    table = runner.invoke(app, ["train", "list", "--data", data], env={"COLUMNS": "200"})
    assert "1 forgotten" in table.stdout and "100 %" in table.stdout
    shown = json.loads(runner.invoke(app, ["train", "show", "v2", "--data", data,
                                           "--json"]).stdout)
    assert shown["path"].endswith("v2") and shown["memory_ids"] == [kept, gone]
    back = runner.invoke(app, ["train", "rollback", "-u", "ana", "--data", data, "--json"])
    assert json.loads(back.stdout) == {"user": "ana", "active": "v1"}
    used = runner.invoke(app, ["train", "use", "v2", "--data", data, "--json"])
    assert json.loads(used.stdout) == {"user": "ana", "active": "v2"}
    bad = runner.invoke(app, ["train", "show", "v7", "--data", data])
    assert bad.exit_code == 2 and "no adapter v7" in bad.stderr
    picked = runner.invoke(app, ["train", "select", "Where does Ana live?", "-u", "ana",
                                 "--data", data, "--json"])
    assert json.loads(picked.stdout)["version"] == "v1"  # v2 carries a forgotten memory
