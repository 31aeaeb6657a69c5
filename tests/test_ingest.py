"""The ingestion pipeline and `engram ingest`, on a notes vault: idempotent re-runs, a changed
note updating its memory (an update event, the old text out of recall), a deleted note
reported and forgotten with --prune, a killed run resumed without duplicates, bad input that
writes nothing, provenance in `engram show` and in search hits, and a rebuild that gives the
same state."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from engram import EventType, ManualClock, Memory
from engram.cli.main import app
from engram.errors import InvalidInput
from engram.ingest.pipeline import Summary

VAULT = Path(__file__).parent / "data" / "ingest" / "vault"
NOW = datetime(2026, 1, 5, 9, tzinfo=UTC)


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    """A copy of the fixture vault that a test may change."""
    return Path(shutil.copytree(VAULT, tmp_path / "vault"))


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[Memory]:
    memory = Memory(tmp_path / "store", clock=ManualClock(NOW), embedder=None)
    yield memory
    memory.close()


def events(mem: Memory) -> int:
    return sum(1 for _ in mem.events())


def test_a_rerun_adds_nothing_and_writes_nothing(mem: Memory, vault: Path) -> None:
    first = mem.ingest("notes", vault, user_id="ada")
    written = events(mem)
    again = mem.ingest("notes", vault, user_id="ada")
    assert (again.added, again.updated, again.unchanged, again.extracted) == (0, 0, 7, 0)
    assert (again.skipped, again.errors, again.linked) == (first.skipped, first.errors, 0)
    assert events(mem) == written


def test_a_changed_note_updates_its_memory_and_the_old_text_leaves_recall(
        mem: Memory, vault: Path) -> None:
    mem.ingest("notes", vault, user_id="ada")
    before = mem.search("hose shed", user_id="ada")[0].memory
    garden = vault / "Garden.md"
    garden.write_text(garden.read_text().replace("The hose is in the shed",
                                                 "The watering can is in the cellar"))
    summary = mem.ingest("notes", vault, user_id="ada")
    assert (summary.added, summary.updated, summary.unchanged) == (0, 1, 6)
    after = mem.get(before.id)
    assert "watering can is in the cellar" in after.content
    assert mem.history(before.id)[-1].type is EventType.UPDATED
    assert all(h.memory.id != before.id for h in mem.search("hose", user_id="ada"))
    assert mem.search("cellar", user_id="ada")[0].memory.id == before.id
    assert after.sources == before.sources and after.links == before.links


def test_an_edited_note_links_to_a_note_that_was_not_read_again(mem: Memory,
                                                                 vault: Path) -> None:
    mem.ingest("notes", vault, user_id="ada")
    garden = vault / "Garden.md"
    garden.write_text(garden.read_text().replace("in the shed, see", "in the shed, see "
                                                 "[[Reading]] and"))
    summary = mem.ingest("notes", vault, user_id="ada")
    assert (summary.updated, summary.unchanged, summary.linked) == (1, 6, 1)
    reading = mem.list(user_id="ada", tags=["ingest:notes"], limit=None)
    by_ref = {e.sources[0].ref: e for e in reading}
    assert by_ref["Reading.txt:1"].id in by_ref["Garden.md:12"].links.related


def test_a_rerun_sees_what_changed_in_the_store_since_the_last_run(mem: Memory,
                                                                    vault: Path) -> None:
    """The last run's copy of what it held is used only while no event was written since:
    a memory forgotten by hand in between is noticed, and its note read and added again."""
    mem.ingest("notes", vault, user_id="ada")
    reading = next(e for e in mem.list(user_id="ada", tags=["ingest:notes"])
                   if e.sources[0].ref == "Reading.txt:1")
    mem.forget(reading.id)
    summary = mem.ingest("notes", vault, user_id="ada")
    assert (summary.added, summary.unchanged) == (1, 6)
    assert mem.ingest("notes", vault, user_id="ada").unchanged == 7


def test_a_note_that_only_moved_down_its_file_is_not_rewritten(mem: Memory,
                                                                vault: Path) -> None:
    mem.ingest("notes", vault, user_id="ada")
    seeds = vault / "Seeds.md"
    seeds.write_text("\n\n" + seeds.read_text())
    assert mem.ingest("notes", vault, user_id="ada").unchanged == 7


def test_a_deleted_note_is_reported_and_forgotten_with_prune(mem: Memory, vault: Path) -> None:
    mem.ingest("notes", vault, user_id="ada")
    facts = {e.content: e for e in mem.list(user_id="ada")}
    assert "User lives in Lisbon" in facts
    (vault / "Garden.md").unlink()
    (vault / "Latin1.md").unlink()
    (vault / "Broken.md").unlink()
    reported = mem.ingest("notes", vault, user_id="ada")
    assert reported.deleted == ["Garden.md#", "Garden.md#sowing", "Garden.md#watering"]
    assert reported.pruned == 0 and mem.count(user_id="ada") == len(facts)
    pruned = mem.ingest("notes", vault, user_id="ada", prune=True)
    assert pruned.pruned == 4  # three sections and the fact only the first one stated
    left = {e.content for e in mem.list(user_id="ada")}
    assert "User lives in Lisbon" not in left and not any("Lisbon" in t for t in left)
    assert mem.ingest("notes", vault, user_id="ada").deleted == []


def test_prune_keeps_what_a_read_with_errors_may_have_missed(mem: Memory, vault: Path) -> None:
    mem.ingest("notes", vault, user_id="ada")
    (vault / "Seeds.md").unlink()
    summary = mem.ingest("notes", vault, user_id="ada", prune=True)  # Latin1.md still fails
    assert summary.pruned == 0 and len(summary.deleted) == 2
    assert summary.problems[-1].startswith("not pruned: 2 items are gone, but 2 could not")


def test_a_killed_run_continues_where_its_last_batch_ended(mem: Memory, vault: Path) -> None:
    committed = []

    def die_after_some_batches(summary: Summary) -> None:
        if summary.read >= 4:
            committed.append(summary.added)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        mem.ingest("notes", vault, user_id="ada", batch=2, progress=die_after_some_batches)
    # Progress comes once a batch is read; the batch before it is then committed, this one
    # still with the encoder (pipeline.py overlaps the two).
    assert 2 <= committed[0] < 7
    assert mem.count(user_id="ada", tags=["ingest:notes"]) == committed[0]
    resumed = mem.ingest("notes", vault, user_id="ada", batch=2)
    assert (resumed.added, resumed.unchanged) == (7 - committed[0], committed[0])
    assert mem.count(user_id="ada", tags=["ingest:notes"]) == 7


@pytest.mark.parametrize(("kind", "path", "message"), [
    ("notes", "missing", "missing does not exist"),
    ("chatgpt", ".", "is a folder, not a file"),
    ("git", ".", "is not the top of a git repository"),
    ("notes", "empty", "holds nothing to ingest as notes"),
    ("books", ".", "unknown source kind 'books'"),
])
def test_bad_input_is_one_error_and_writes_nothing(mem: Memory, tmp_path: Path, kind: str,
                                                   path: str, message: str) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match=message):
        mem.ingest(kind, tmp_path / path, user_id="ada")
    assert events(mem) == 0


def test_a_rebuild_gives_the_same_memories(mem: Memory, vault: Path) -> None:
    mem.ingest("notes", vault, user_id="ada")
    (vault / "Seeds.md").write_text("# Seeds\nOnly basil this year.\n")
    mem.ingest("notes", vault, user_id="ada")
    before = {e.id: e.to_dict() for e in mem.list(user_id="ada", status="all", limit=None)}
    mem.rebuild()
    assert {e.id: e.to_dict() for e in mem.list(user_id="ada", status="all",
                                                limit=None)} == before


def test_users_are_kept_apart(mem: Memory, vault: Path) -> None:
    mem.ingest("notes", vault, user_id="ada")
    other = mem.ingest("notes", vault, user_id="bob")
    assert other.added == 7 and mem.count(user_id="bob", tags=["ingest:notes"]) == 7


# ---------------------------------------------------------------- the command


def test_engram_ingest_prints_a_summary_and_json(tmp_path: Path, vault: Path) -> None:
    data = str(tmp_path / "cli-store")
    runner = CliRunner()
    shown = runner.invoke(app, ["ingest", "notes", str(vault), "--user", "ada", "--data", data],
                          env={"ENGRAM_EMBEDDER": ""})
    assert shown.exit_code == 0, shown.output
    assert "added" in shown.output and "Latin1.md:line 1: not UTF-8" in shown.output
    again = runner.invoke(app, ["ingest", "notes", str(vault), "-u", "ada", "--data", data,
                                "--json", "--exclude", "Seeds.md"])
    assert again.exit_code == 0, again.output
    summary = json.loads(again.output)
    assert (summary["added"], summary["unchanged"], summary["deleted"]) == (0, 5, 2)
    assert summary["deleted_ids"] == ["Seeds.md#seeds", "Seeds.md#seeds/where-to-buy"]
    with Memory(data, embedder=None) as mem:
        assert mem.ingest("notes", vault, user_id="ada").to_dict()["unchanged"] == 7


def test_engram_ingest_list_and_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["ingest", "--list", "--json"])
    assert listed.exit_code == 0
    assert set(json.loads(listed.output)) == {"notes", "git", "chatgpt", "claude", "chat-jsonl",
                                              "twitter", "mastodon", "mbox", "photos"}
    data = str(tmp_path / "store")
    wrong = runner.invoke(app, ["ingest", "chatgpt", str(tmp_path), "--data", data])
    assert wrong.exit_code == 2
    assert wrong.stderr.strip().splitlines() == [
        f"error: path: {tmp_path} is a folder, not a file; give the conversations.json of "
        "a ChatGPT export"]
    assert runner.invoke(app, ["ingest", "--data", data]).exit_code == 2


def test_engram_ingest_interrupted_says_how_to_continue(tmp_path: Path, vault: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from engram.ingest import pipeline

    def interrupt(*args: Any) -> Any:
        raise KeyboardInterrupt  # what Ctrl-C raises in the middle of a run

    monkeypatch.setattr(pipeline, "_prepare", interrupt)
    data = str(tmp_path / "store")
    stopped = CliRunner().invoke(app, ["ingest", "notes", str(vault), "-u", "ada",
                                       "--data", data], env={"ENGRAM_EMBEDDER": ""})
    assert stopped.exit_code == 130
    assert stopped.stderr == ("interrupted: the batches written so far are kept; run the same "
                              "command again to continue\n")
    monkeypatch.undo()
    with Memory(data, embedder=None) as mem:
        assert mem.ingest("notes", vault, user_id="ada").added == 7


def test_show_and_search_carry_the_source(tmp_path: Path, vault: Path) -> None:
    """With the real embedding model: a hit names the note and line it came from."""
    with Memory(tmp_path / "store", clock=ManualClock(NOW)) as mem:
        mem.ingest("notes", vault, user_id="ada", exclude=["*.txt", "projects/*"])
        hit = mem.search("when do I sow tomato seeds?", user_id="ada", limit=1)[0]
    assert (hit.memory.sources[0].kind, hit.memory.sources[0].ref) == ("notes", "Garden.md:9")
    shown = CliRunner().invoke(app, ["show", hit.memory.id, "--data", str(tmp_path / "store")])
    assert shown.exit_code == 0
    assert '"kind": "notes", "ref": "Garden.md:9"' in shown.output


@pytest.mark.postgres_only
def test_the_same_runs_on_postgresql(store_dir: str, vault: Path) -> None:
    with Memory(store_dir, clock=ManualClock(NOW), embedder=None) as mem:
        assert mem.ingest("notes", vault, user_id="ada").added == 7
        assert mem.ingest("notes", vault, user_id="ada").unchanged == 7
        (vault / "Seeds.md").unlink()
        pruned = mem.ingest("notes", vault, user_id="ada", prune=True)
        assert (pruned.unchanged, pruned.pruned) == (5, 0)  # Latin1.md still fails to read
        (vault / "Latin1.md").unlink()
        (vault / "Broken.md").unlink()
        assert mem.ingest("notes", vault, user_id="ada", prune=True).pruned == 2
        assert mem.count(user_id="ada", tags=["ingest:notes"]) == 5
