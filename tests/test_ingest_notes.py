"""The notes adapter on a small Obsidian-style vault (tests/data/ingest/vault): one memory per
section with its time and provenance, front matter and #tags, [[wiki links]] as links between
memories, private notes kept out, --exclude, nothing read outside the vault, and a malformed
note reported with its position."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engram import ManualClock, Memory
from engram.ingest import notes
from engram.ingest.datapoint import DataPoint, Options, Skipped
from engram.model import MemoryEntry, Tier

VAULT = Path(__file__).parent / "data" / "ingest" / "vault"
NOW = datetime(2026, 1, 5, 9, tzinfo=UTC)


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[Memory]:
    memory = Memory(tmp_path / "store", clock=ManualClock(NOW), embedder=None)
    yield memory
    memory.close()


def read(root: Path, exclude: tuple[str, ...] = (), private_tags: tuple[str, ...] = ("private",)
         ) -> tuple[list[DataPoint], list[Skipped]]:
    found = list(notes.read(root, Options(exclude, private_tags)))
    return ([f for f in found if isinstance(f, DataPoint)],
            [f for f in found if isinstance(f, Skipped)])


def by_ref(mem: Memory, user: str = "ada") -> dict[str, MemoryEntry]:
    return {e.sources[0].ref or "": e for e in mem.list(user_id=user, tags=["ingest:notes"])}


def test_one_data_point_per_section_with_heading_path_time_and_reference() -> None:
    points, _ = read(VAULT)
    garden = {p.external_id: p for p in points if p.document == "Garden.md"}
    assert list(garden) == ["Garden.md#", "Garden.md#sowing", "Garden.md#watering"]
    intro, sowing, watering = garden.values()
    assert intro.text == "Garden\n\nI live in Lisbon and I grow tomatoes on the balcony."
    assert intro.ref == "Garden.md:7"  # the line after the front matter
    assert sowing.ref == "Garden.md:9" and watering.ref == "Garden.md:12"
    assert sowing.text.startswith("Garden > Sowing\n\nSow the tomatoes in March")
    assert intro.time == datetime(2025, 3, 1, tzinfo=UTC)  # front matter date
    assert intro.tags == ("home", "plants", "spring")  # front matter, then #tags of the prose
    assert intro.metadata == {"title": "Garden", "aliases": ["allotment"], "section": [],
                              "first": True}  # what a wiki link to the note points at
    assert "#notatag" in watering.text and "notatag" not in watering.tags  # code is not prose
    seeds = [p for p in points if p.document == "Seeds.md"]
    assert [p.text.split("\n\n")[0] for p in seeds] == ["Seeds", "Seeds > Where to buy"]
    reading = next(p for p in points if p.document == "Reading.txt")
    assert reading.time == datetime.fromtimestamp((VAULT / "Reading.txt").stat().st_mtime, UTC)


def test_wiki_links_name_documents_and_read_as_their_label() -> None:
    points, _ = read(VAULT)
    sowing = next(p for p in points if p.external_id == "Garden.md#sowing")
    watering = next(p for p in points if p.external_id == "Garden.md#watering")
    assert sowing.links == ("Seeds.md",) and watering.links == ("projects/Shed.md",)
    assert "See the seed list and #spring" in sowing.text
    assert "see projects/Shed." in watering.text


def test_private_notes_tool_folders_and_excluded_paths_are_kept_out() -> None:
    points, skipped = read(VAULT)
    documents = {p.document for p in points}
    assert documents == {"Garden.md", "Seeds.md", "projects/Shed.md", "Reading.txt"}
    kept_out = {s.file for s in skipped if not s.error}
    assert kept_out == {"Diary.md", "Therapy.md"}  # private: true, and the #private tag
    points, _ = read(VAULT, exclude=("projects/*", "*.txt"))
    assert {p.document for p in points} == {"Garden.md", "Seeds.md"}
    points, skipped = read(VAULT, private_tags=("project",))
    assert "projects/Shed.md" in {s.file for s in skipped}  # a configured tag
    assert "Therapy.md" in {p.document for p in points}


def test_malformed_notes_are_reported_with_file_and_position() -> None:
    _, skipped = read(VAULT)
    errors = {s.file: str(s) for s in skipped if s.error}
    assert errors == {
        "Latin1.md": "Latin1.md:line 1: not UTF-8 (byte 3)",
        "Broken.md": "Broken.md:line 1: front matter is not YAML (while parsing a flow "
                     "sequence)",
    }


def test_nothing_outside_the_vault_is_read(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / "mine.md").write_text("Inside the vault.")
    (tmp_path / "outside.md").write_text("Secret outside the vault.")
    (vault / "link.md").symlink_to(tmp_path / "outside.md")
    (vault / "folder").symlink_to(tmp_path, target_is_directory=True)
    points, _ = read(vault)
    assert [p.text for p in points] == ["mine\n\nInside the vault."]


def test_a_vault_becomes_long_term_memories_with_provenance_and_links(mem: Memory) -> None:
    summary = mem.ingest("notes", VAULT, user_id="ada")
    assert (summary.added, summary.skipped, summary.errors) == (7, 2, 2)
    memories = by_ref(mem)
    assert set(memories) == {"Garden.md:7", "Garden.md:9", "Garden.md:12", "Seeds.md:1",
                             "Seeds.md:6", "projects/Shed.md:4", "Reading.txt:1"}
    intro = memories["Garden.md:7"]
    assert intro.sources[0].kind == "notes" and intro.tier is Tier.LONG_TERM
    assert intro.occurred_at == datetime(2025, 3, 1, tzinfo=UTC)
    assert intro.tags == ("ingest:notes", "home", "plants", "spring")
    assert intro.metadata["ingest"]["id"] == "Garden.md#"
    seeds_head = memories["Seeds.md:1"]
    assert memories["Garden.md:9"].links.related == (seeds_head.id,)
    assert memories["Garden.md:12"].links.related == (memories["projects/Shed.md:4"].id,)
    assert summary.linked == 2
    facts = [e for e in mem.list(user_id="ada") if e.sources[0].kind == "extraction"]
    assert "User lives in Lisbon" in {f.content for f in facts}
    assert all(f.links.derived_from == (intro.id,) for f in facts)


def test_a_copied_vault_elsewhere_is_the_same_collection(mem: Memory, tmp_path: Path) -> None:
    mem.ingest("notes", VAULT, user_id="ada")
    moved = tmp_path / "moved" / "vault"
    shutil.copytree(VAULT, moved)
    again = mem.ingest("notes", moved, user_id="ada")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 7)
