"""Concept compaction: clustering on labelled fixtures (the real MiniLM), the run's events
(added, redone, kept, dropped), rebuild, forget, a failing model, maintenance."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engram import EventType, ManualClock, Memory
from engram.compact import summary
from engram.compact.cluster import Grouping, cluster, distances, names_of
from engram.compact.plan import Written, key, plan
from engram.context import estimate_tokens
from engram.embed.embedders import load_embedder
from engram.lifecycle.tiers import Policy
from engram.llm import load_provider
from engram.llm.openai_double import OpenAIDouble
from engram.model import Kind, MemoryEntry

PETS = ["I adopted a puppy named Oscar in May", "Oscar the puppy loves chasing tennis balls",
        "My dog Oscar had his vaccinations on 3 June", "We walk Oscar in the dog park on Sundays"]
CELLO = ["I started learning the cello last year", "My cello teacher Marta praised my bowing",
         "I practise cello scales for 30 minutes every evening",
         "I played a cello duet at the spring recital"]
TAXES = ["The quarterly tax return is due on 15 April", "I paid my income tax bill online",
         "My accountant Raj filed the tax return for me",
         "I owe less tax this year after deductions"]
ALONE = ["I bought a new laptop for work", "Paris is the capital of France",
         "The kitchen tap is dripping again"]
SECRET = "My puppy Oscar swallowed a Zanzibarian plumwyvern marble at the dog park"
# The fixtures' topics sit within 0.66 of each other, the loners beyond 0.75 (MiniLM).
POLICY = Policy(compact_distance=0.65)
GROUPING = Grouping(distance=0.65)


def store_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def fill(mem: Memory, texts: list[str], user: str = "ana") -> dict[str, str]:
    """text -> id"""
    return {t: mem.add(t, user_id=user).id for t in texts}


def test_clustering_groups_paraphrases_and_keeps_unrelated_apart() -> None:
    texts = [*PETS, *CELLO, *TAXES, *ALONE]
    labels = [0] * 4 + [1] * 4 + [2] * 4 + [-1, -2, -3]
    vectors = load_embedder().embed(texts)
    names = [frozenset(n.casefold() for n in names_of_text(t)) for t in texts]
    groups = cluster(np.asarray(vectors, dtype=np.float32), names, [None] * len(texts),
                     GROUPING)
    found = sorted(sorted(labels[i] for i in g) for g in groups)
    assert found == [[0] * 4, [1] * 4, [2] * 4]  # each topic whole, the loners in none


def names_of_text(text: str) -> frozenset[str]:
    return names_of(entry_of(text))


def test_shared_names_and_slots_draw_memories_together() -> None:
    vectors = np.array([[1.0, 0.0], [0.6, 0.8], [0.6, 0.8]], dtype=np.float32)
    plain = distances(vectors, [frozenset()] * 3, [None] * 3, Grouping())
    named = distances(vectors, [frozenset({"oscar"}), frozenset({"oscar"}), frozenset()],
                      [None] * 3, Grouping(entity=0.5))
    slotted = distances(vectors, [frozenset()] * 3, ["u/city", "u/city", None],
                        Grouping(slot=0.5))
    assert plain[0, 1] == np.float32(0.4) or abs(plain[0, 1] - 0.4) < 1e-6
    assert abs(named[0, 1] - 0.2) < 1e-6 and abs(named[0, 2] - 0.4) < 1e-6
    assert abs(slotted[0, 1] - 0.2) < 1e-6 and abs(slotted[1, 2]) < 1e-6


@given(st.lists(st.frozensets(st.sampled_from("abcdefghij"), min_size=2), min_size=1,
                max_size=5, unique=True))
def test_a_rerun_over_the_same_groups_keeps_every_concept(groups: list[frozenset[str]]) -> None:
    # disjoint groups, as clustering gives
    taken: set[str] = set()
    disjoint = []
    for g in groups:
        if not g & taken and g:
            disjoint.append(sorted(g))
            taken |= g
    written = [Written(f"c{i}", frozenset(g), f"d{key(g)}") for i, g in enumerate(disjoint)]
    again = plan(disjoint, written, {key(g): f"d{key(g)}" for g in disjoint})
    assert sorted(again.keep) == sorted(w.id for w in written)
    assert not again.add and not again.redo and not again.drop


WORDS = st.sampled_from("Ana Oscar walked the dog to Porto on 3 June and it rained".split())


@given(st.lists(st.lists(WORDS, min_size=1, max_size=12).map(" ".join), min_size=2,
                max_size=6), st.integers(min_value=5, max_value=80))
def test_an_extractive_summary_only_quotes_its_members(texts: list[str], budget: int) -> None:
    """Invariant: every sentence of a summary is a member's sentence (with its day and
    speaker), and the summary fits its budget."""
    members = [entry_of(t) for t in texts]
    vectors = np.random.default_rng(0).random((len(members), 4)).astype(np.float32)
    written = summary.extractive(members, vectors, budget)
    assert estimate_tokens(written) <= budget
    quoted = written.removeprefix("(1 January 2026) ")
    if quoted.endswith("…"):  # not even one sentence fit: the best one, cut
        assert any(t.startswith(quoted[:-1].rstrip()) or
                   f"(1 January 2026) {t}".startswith(written[:-1].rstrip()) for t in texts)
    else:
        assert made_of(quoted, set(texts))


def made_of(text: str, parts: set[str]) -> bool:
    """Whether `text` is some of `parts` joined by spaces."""
    return any(text == p or (text.startswith(p + " ") and made_of(text[len(p) + 1:], parts))
               for p in parts)


def entry_of(text: str) -> MemoryEntry:
    from engram.validate import prepare

    made, _ = prepare({"text": text}, now=datetime(2026, 1, 1, tzinfo=UTC), device_id="d",
                      max_content_bytes=10_000)
    return made


def test_importing_engram_does_not_import_scikit_learn() -> None:
    code = "import sys, engram; engram.Memory; print('sklearn' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True)
    assert shown.stdout.strip() == "False"


def test_plan_adds_redoes_and_drops() -> None:
    written = [Written("pets", frozenset("abcd"), "old"), Written("gone", frozenset("xyz"), "z")]
    decided = plan([list("abce"), list("mno")], written, {"a,b,c,e": "new", "m,n,o": "n"})
    assert decided.redo == [("pets", ["a", "b", "c", "e"])]
    assert decided.add == [["m", "n", "o"]] and decided.drop == ["gone"]


@pytest.mark.all_backends
def test_compact_writes_concepts_as_events_and_rebuild_keeps_them(
        store_dir: Path, clock: ManualClock) -> None:
    with Memory(store_dir, clock=clock, policy=POLICY) as mem:
        ids = fill(mem, [*PETS, *CELLO, *ALONE])
        report = mem.compact("ana")
        assert (report.added, report.redone, report.dropped) == (2, 0, 0)
        concepts = mem.concepts("ana")
        assert {frozenset(c.members) for c in concepts} == {
            frozenset(ids[t] for t in PETS), frozenset(ids[t] for t in CELLO)}
        pets = next(c for c in concepts if ids[PETS[0]] in c.members)
        assert "Oscar" in pets.name and "Oscar" in pets.summary
        entry = mem.get(pets.id)
        assert entry.memory_type is Kind.CONCEPT and entry.links.derived_from == pets.members
        assert mem.history(pets.id)[0].type is EventType.ADDED
        events = sum(1 for _ in mem.events())
        again = mem.compact("ana")  # nothing changed: nothing written
        assert (again.added, again.redone, again.kept) == (0, 0, 2)
        assert sum(1 for _ in mem.events()) == events
        before = [c.to_dict() for c in mem.concepts("ana")]
        mem.rebuild()
        assert [c.to_dict() for c in mem.concepts("ana")] == before


def test_an_updated_member_redoes_its_concept(store_dir: Path, clock: ManualClock) -> None:
    with Memory(store_dir, clock=clock, policy=POLICY) as mem:
        ids = fill(mem, [*PETS, *CELLO])
        mem.compact("ana")
        pets = next(c for c in mem.concepts("ana") if ids[PETS[0]] in c.members)
        for text in PETS:  # every sentence of the summary comes from a member: change them all
            mem.update(ids[text], text=text.replace("Oscar", "Rex"))
        report = mem.compact("ana")
        assert report.redone == 1 and report.kept == 1
        redone = mem.get(pets.id)
        assert "Rex" in redone.content and "Oscar" not in redone.content
        assert mem.history(pets.id)[-1].type is EventType.UPDATED


def test_forgetting_a_member_leaves_no_copy_of_its_text(store_dir: Path,
                                                       clock: ManualClock) -> None:
    whole = replace(POLICY, compact_ratio=1.0)  # summaries keep every sentence
    mem = Memory(store_dir, clock=clock, policy=whole)
    ids = fill(mem, [*PETS, SECRET, *CELLO])
    mem.compact("ana")
    pets = next(c for c in mem.concepts("ana") if ids[SECRET] in c.members)
    assert "plumwyvern" in pets.summary  # the secret's sentence is in the summary
    mem.forget(ids[SECRET])
    raw = store_bytes(Path(store_dir))
    for needle in ("plumwyvern", "Zanzibarian"):
        assert needle.encode() not in raw, needle
    now = mem.concepts("ana")
    assert pets.id not in {c.id for c in now}
    rewritten = next(c for c in now if ids[PETS[0]] in c.members)
    assert set(rewritten.members) == {ids[t] for t in PETS}  # the rest, summarised again
    assert mem.verify().ok
    mem.close()


def test_too_few_memories_say_nothing_to_compact_yet(store_dir: Path,
                                                     clock: ManualClock) -> None:
    with Memory(store_dir, clock=clock, policy=POLICY) as mem:
        mem.add("I like tea", user_id="ana")
        report = mem.compact("ana")
        assert report.note.startswith("nothing to compact yet") and report.added == 0
        assert sum(1 for _ in mem.events()) == 1


def test_a_model_that_fails_mid_run_leaves_extractive_summaries(
        store_dir: Path, clock: ManualClock) -> None:
    """The OpenAI double stands in for a paid API (the real wire format); after its first
    answer it fails, and the rest of the concepts are written extractively, said so."""
    calls: list[int] = []

    def reply(messages: list[dict[str, object]]) -> str:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("the model server fell over")
        return "Ana practises the cello daily with her teacher Marta since last year."

    with OpenAIDouble(reply=reply) as double, Memory(store_dir, clock=clock, policy=POLICY) as mem:
        fill(mem, [*CELLO, *PETS, *TAXES])
        model = load_provider(f"openai:double-1@{double.base_url}", api_key="unused",
                              attempts=1)
        report = mem.compact("ana", model=model)
        methods = sorted(c.method for c in mem.concepts("ana"))
    assert report.added == 3 and "failed" in report.note and "extractive" in report.note
    assert methods == ["extractive", "extractive", "model:openai:double-1"]


def test_maintenance_compacts_once_enough_new_memories_arrived(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 9, tzinfo=UTC))
    policy = Policy(compact_min_new=8, compact_distance=0.65)
    with Memory(tmp_path, clock=clock, policy=policy) as mem:
        fill(mem, PETS)
        assert mem.maintain().compacted == 0 and mem.concepts("ana") == []
        fill(mem, CELLO)
        assert mem.maintain().compacted == 2
        clock.advance(timedelta(hours=1))
        assert mem.maintain().compacted == 0  # nothing new since


def test_engram_compact_and_concepts_commands(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from engram.cli.main import app
    from engram.lifecycle import config

    runner = CliRunner()
    config.save(tmp_path / "engram.toml", POLICY)
    with Memory(tmp_path) as mem:
        ids = fill(mem, [*PETS, *CELLO])
    done = runner.invoke(app, ["compact", "--user", "ana", "--data", str(tmp_path)])
    assert done.exit_code == 0 and "2 new" in done.output, done.output
    listed = runner.invoke(app, ["concepts", "--user", "ana", "--data", str(tmp_path),
                                 "--json"])
    concepts = json.loads(listed.output)
    assert [sorted(c) for c in concepts] == [["id", "members", "method", "name", "summary"]] * 2
    assert {frozenset(c["members"]) for c in concepts} == {
        frozenset(ids[t] for t in PETS), frozenset(ids[t] for t in CELLO)}
    empty = runner.invoke(app, ["compact", "--user", "nobody", "--data", str(tmp_path)])
    assert empty.exit_code == 0
    assert empty.output.strip().startswith("nothing to compact yet")


def test_concepts_and_their_forgetting_travel_with_the_log(tmp_path: Path,
                                                         clock: ManualClock) -> None:
    """Another device that imports the events holds the same concepts, and after the next
    exchange no copy of a forgotten member's text (forget wins there too)."""
    whole = replace(POLICY, compact_ratio=1.0)
    with Memory(tmp_path / "a", clock=clock, policy=whole) as a, \
            Memory(tmp_path / "b", clock=clock, policy=whole) as b:
        ids = fill(a, [*PETS, SECRET, *CELLO])
        a.compact("ana")
        b.import_events(list(a.events()))
        assert [c.to_dict() for c in b.concepts("ana")] == \
            [c.to_dict() for c in a.concepts("ana")]
        a.forget(ids[SECRET])
        b.import_events(list(a.events()))
        assert [c.to_dict() for c in b.concepts("ana")] == \
            [c.to_dict() for c in a.concepts("ana")]
        b.store.redact_residue()
    assert b"plumwyvern" not in store_bytes(tmp_path / "b")
