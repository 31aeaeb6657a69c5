"""Hybrid recall: fused ranking (pure), semantic matches, filters inside the vector query,
vectors that follow the log across processes, and the HNSW cache file's repair on open."""

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engram import ManualClock, Memory
from engram.errors import InvalidInput
from engram.model import MemoryEntry
from engram.query import Brief
from engram.recall.ranking import DEFAULT_WEIGHTS, Candidate, rank
from store_contract import Backend

NOW = datetime(2026, 6, 1, tzinfo=UTC)


class HashingEmbedder:
    """A real, deterministic bag-of-words embedder (hashed words → 64 dims): fast enough for
    the index-mechanics tests below; the MiniLM tests cover meaning."""

    dimension = 64

    def __init__(self, name: str = "hashing-64") -> None:
        self.name = name

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
        out += 1e-3
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


def entry(memory_id: str, session: str | None = None, days_old: float = 0,
          confidence: float = 0.5) -> Brief:
    from engram.model import Confidence

    at = NOW - timedelta(days=days_old)
    return Brief.of(MemoryEntry(id=memory_id, content=memory_id, content_hash=memory_id,
                                created_at=at, updated_at=at, occurred_at=at, user_id="u",
                                session_id=session, confidence=Confidence(overall=confidence)))


def test_rank_fuses_keyword_and_vector_relevance() -> None:
    hits = rank([Candidate(entry("kw-only"), keyword=10.0),
                 Candidate(entry("both"), keyword=5.0, vector=0.8),
                 Candidate(entry("vec-only"), vector=0.9)], NOW)
    assert [h.memory.id for h in hits] == ["both", "vec-only", "kw-only"]
    both = hits[0].components
    weights = DEFAULT_WEIGHTS
    assert both["relevance"] == pytest.approx(weights.keyword * 0.5 + weights.vector * 0.8)


def test_rank_drops_weak_vector_only_candidates() -> None:
    hits = rank([Candidate(entry("far"), vector=0.1), Candidate(entry("near"), vector=0.5)], NOW)
    assert [h.memory.id for h in hits] == ["near"]


def test_rank_lifts_turns_of_a_relevant_session() -> None:
    hits = rank([Candidate(entry("lonely"), vector=0.50),
                 Candidate(entry("neighbour", session="s1"), vector=0.49),
                 Candidate(entry("star", session="s1"), vector=0.9)], NOW)
    assert [h.memory.id for h in hits] == ["star", "neighbour", "lonely"]


def test_rank_breaks_ties_by_recency_and_confidence() -> None:
    hits = rank([Candidate(entry("old", days_old=400), vector=0.6),
                 Candidate(entry("new", days_old=1), vector=0.6)], NOW)
    assert [h.memory.id for h in hits] == ["new", "old"]
    hits = rank([Candidate(entry("doubtful", confidence=0.2), vector=0.6),
                 Candidate(entry("sure", confidence=0.95), vector=0.6)], NOW)
    assert [h.memory.id for h in hits] == ["sure", "doubtful"]
    assert rank([], NOW) == []


@pytest.fixture
def small_graphs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("engram.embed.vectors.EXACT_LIMIT", 40)


def graph_files(store_dir: Path) -> list[Path]:
    return sorted((store_dir / "vectors").rglob("*.usearch"))


def test_graph_cache_is_detected_stale_or_broken_and_repaired(store_dir: Path,
                                                              small_graphs: None) -> None:
    texts = [f"note {i} about topic{i % 7} and thing{i % 11}" for i in range(120)]
    with Memory(store_dir, embedder=HashingEmbedder()) as mem:
        mem.add_many([{"text": t, "user_id": "u"} for t in texts])
        expected = [h.memory.id for h in mem.search("topic3 thing5", user_id="u", limit=5)]
    [graph] = graph_files(store_dir)

    graph.write_bytes(graph.read_bytes()[:200])  # a crash mid-write, or a bad disk
    with Memory(store_dir, embedder=HashingEmbedder()) as mem:
        assert [h.memory.id for h in mem.search("topic3 thing5", user_id="u",
                                                limit=5)] == expected
    assert graph.stat().st_size > 200  # rebuilt and saved again

    saved = graph.read_bytes()
    with Memory(store_dir, embedder=HashingEmbedder()) as mem:  # writes the graph never saw
        late = mem.add("topic3 thing5 exactly", user_id="u")
        mem.forget(expected[0])
    graph.write_bytes(saved)  # as if the process died before saving the graph
    with Memory(store_dir, embedder=HashingEmbedder()) as mem:
        ids = [h.memory.id for h in mem.search("topic3 thing5", user_id="u", limit=5)]
    assert ids[0] == late.id and expected[0] not in ids


def test_rebuild_rebuilds_the_vector_index(store_dir: Path, small_graphs: None) -> None:
    with Memory(store_dir, embedder=HashingEmbedder()) as mem:
        mem.add_many([{"text": f"item {i} colour{i % 5}", "user_id": "u"} for i in range(80)])
        before = [h.memory.id for h in mem.search("colour2", user_id="u", limit=10)]
        mem.rebuild()
        assert graph_files(store_dir) == []
        assert [h.memory.id for h in mem.search("colour2", user_id="u", limit=10)] == before


def test_a_saved_graph_serves_at_once_and_follows_later_writes(store_dir: Path,
                                                               small_graphs: None) -> None:
    """Reopening memory-maps the saved graph (no vector read from the table) and replays
    only what changed since; a forget or a filtered search loads the scope in full."""
    from engram.embed.vectors import ScopeIndex, Snapshot
    from engram.store.sqlite.store import SQLiteStore

    texts = [f"note {i} about topic{i % 7} and thing{i % 11}" for i in range(120)]
    with Memory(store_dir, embedder=HashingEmbedder()) as mem:
        added = mem.add_many([{"text": t, "user_id": "u"} for t in texts])
        expected = [h.memory.id for h in mem.search("topic3 thing5", user_id="u", limit=5)]
    [graph] = graph_files(store_dir)
    assert graph.with_suffix(".json").exists()

    with Memory(store_dir, embedder=HashingEmbedder()) as mem:
        assert isinstance(mem.store, SQLiteStore)
        assert [h.memory.id for h in mem.search("topic3 thing5", user_id="u",
                                                limit=5)] == expected
        assert isinstance(mem.store.vectors._scopes[("u", "hashing-64")], Snapshot)
        late = mem.add("topic3 thing5 exactly so", user_id="u")
        mem.update(expected[1], text="about something else entirely")
        ids = [h.memory.id for h in mem.search("topic3 thing5", user_id="u", limit=5)]
        assert ids[0] == late.id and expected[1] not in ids
        assert isinstance(mem.store.vectors._scopes[("u", "hashing-64")], Snapshot)
        mem.search("topic3", user_id="u", session_id="none")  # a filter needs every row
        assert isinstance(mem.store.vectors._scopes[("u", "hashing-64")], ScopeIndex)

    with Memory(store_dir, embedder=HashingEmbedder()) as mem:  # the log since the save
        assert isinstance(mem.store, SQLiteStore)
        mem.search("topic3", user_id="u")
        mem.forget(late.id)
        assert late.id not in [h.memory.id for h in mem.search("topic3 thing5", user_id="u")]
        assert isinstance(mem.store.vectors._scopes[("u", "hashing-64")], ScopeIndex)
    assert len(added) == 120


WORDS = ["tea", "walk", "paris", "dog", "piano", "rain", "book", "code", "sea", "train"]


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.lists(st.sampled_from(WORDS), min_size=1, max_size=4),
                          st.sampled_from(["main", "main", "main", "other"]),
                          st.sampled_from(["s1", "s2"])), min_size=1, max_size=60),
       st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
       st.sampled_from(["main", "other"]), st.sampled_from([None, "s1"]),
       st.integers(1, 12))
def test_best_first_keyword_plan_equals_the_full_join(
        tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[list[str], str, str]],
        query: list[str], user: str, session: str | None, limit: int) -> None:
    """Taking the index's best rows and filtering them afterwards returns exactly what the
    filtered join returns: the same rows, scores and order, whatever the filter."""
    from engram.query import Filters
    from engram.recall.ranking import keyword_terms
    from engram.store.sqlite import projection as P
    from engram.store.sqlite.keywords import _WEIGHTS
    from engram.store.sqlite.store import SQLiteStore

    with Memory(tmp_path_factory.mktemp("s"), embedder=None) as mem:
        mem.add_many([{"text": " ".join(w), "user_id": u, "session_id": s, "dedupe": False}
                      for w, u, s in rows])
        filters = Filters(user_id=user, session_id=session)
        terms = keyword_terms(" ".join(query))
        fast = mem.store.keyword_candidates(terms, filters, limit)
        store = mem.store
        assert isinstance(store, SQLiteStore)
        conn = store.keywords._reader()
        total = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM memories").fetchone()[0]
        planned = store.keywords._match(conn, terms, total)
        assert planned is None or not planned[1]  # a store this small scores every row
        match = planned[0] if planned else None
        where, params = P.where(filters)
        full = conn.execute(
            f"SELECT m.id, -bm25(memories_fts, {_WEIGHTS}) AS score FROM memories_fts JOIN "
            f"memories m ON m.rowid = memories_fts.rowid WHERE memories_fts MATCH ? AND "
            f"{where} ORDER BY score DESC, m.rowid LIMIT ?",
            (match, *params, limit)).fetchall() if match else []
    assert [(b.id, round(s, 9)) for b, s in fast] == [(r[0], round(r[1], 9)) for r in full]


class RecallContract(Backend):
    """Recall through a real store on every backend; run by test_store_*.py."""

    def test_semantic_match_without_shared_words(self, store_dir: Path) -> None:
        with Memory(store_dir) as mem:
            dog = mem.add("I adopted a puppy last spring", user_id="u")
            mem.add("The quarterly tax filing is due in April", user_id="u")
            hits = mem.search("do they have any pets?", user_id="u")
            assert hits[0].memory.id == dog.id
            assert hits[0].components["keyword"] == 0.0 and hits[0].components["vector"] > 0.25

    def test_a_word_an_edit_adds_is_found_at_once(self, store_dir: Path) -> None:
        with Memory(store_dir, embedder=None) as mem:
            entry = mem.add("Ada lives in Lisbon", user_id="u")
            assert mem.search("berlin", user_id="u") == []  # counted in no row, then...
            mem.update(entry.id, text="Ada lives in Lisbon and Berlin")  # the same size
            assert [h.memory.id for h in mem.search("berlin", user_id="u")] == [entry.id]

    def test_vector_filters_apply_before_the_top_k_cut(self, store_dir: Path) -> None:
        with Memory(store_dir, embedder=HashingEmbedder()) as mem:
            mem.add_many([{"text": f"red apples and green pears {i}", "user_id": "u",
                           "session_id": "s1"} for i in range(60)])
            wanted = mem.add("red apples", user_id="u", session_id="s2", tags=["x"])
            other_user = mem.add("red apples and green pears", user_id="v")
            assert [h.memory.id for h in mem.search("apples", user_id="u", session_id="s2",
                                                    limit=1)] == [wanted.id]
            assert [h.memory.id for h in mem.search("green apples", user_id="u", tags=["x"],
                                                    limit=1)] == [wanted.id]
            assert other_user.id not in {h.memory.id for h in mem.search("pears", user_id="u",
                                                                         limit=100)}

    def test_vectors_follow_writes_from_another_process(self, store_dir: Path) -> None:
        reader = Memory(store_dir, embedder=HashingEmbedder())
        writer = Memory(store_dir, embedder=HashingEmbedder())
        first = writer.add("alpha bravo charlie", user_id="u")
        assert reader.search("bravo", user_id="u")[0].memory.id == first.id  # scope loaded
        second = writer.add("delta echo foxtrot", user_id="u")
        writer.forget(first.id)
        found = [h.memory.id for h in reader.search("echo bravo", user_id="u")]
        assert found == [second.id]
        reader.close()
        writer.close()

    def test_forget_removes_the_vector(self, store_dir: Path) -> None:
        with Memory(store_dir, embedder=HashingEmbedder()) as mem:
            keep = mem.add("shared words here", user_id="u")
            twin = mem.add("shared words here", user_id="v")  # same content, another user
            gone = mem.add("a secret to forget", user_id="u")
            assert mem.stats()["vectors"] == {"hashing-64": 2}
            mem.forget(gone.id)
            assert mem.stats()["vectors"] == {"hashing-64": 1}
            mem.forget(twin.id)  # the other user still has this content: its vector stays
            assert mem.stats()["vectors"] == {"hashing-64": 1}
            assert mem.search("shared", user_id="u")[0].memory.id == keep.id

    def test_reembed_switches_models_and_keeps_serving(self, store_dir: Path,
                                                       clock: ManualClock) -> None:
        with Memory(store_dir, embedder=HashingEmbedder()) as mem:
            target = mem.add("the lighthouse keeper's logbook", user_id="u")
            mem.add("a recipe for lentil soup", user_id="u")
        with pytest.raises(InvalidInput, match=r"made by 'hashing-64'.*engram reembed"):
            Memory(store_dir).search("lighthouse", user_id="u")
        with Memory(store_dir, embedder=HashingEmbedder()) as mem:
            done = mem.reembed("minilm")
            assert done == 2
            assert mem.stats()["vectors"] == {"all-MiniLM-L6-v2": 2}
        with Memory(store_dir) as mem:  # the store now remembers its model
            hits = mem.search("coastal beacon journal", user_id="u")
            assert hits[0].memory.id == target.id and hits[0].components["vector"] > 0.25


def test_keyword_candidates_read_best_first_until_enough_pass(tmp_path: Path) -> None:
    """The best-scoring rows of the whole index are read `limit` at a time: when another
    user's rows score highest, the reads go on until enough of this user's pass (the best
    of them, ties by age); each brief carries its text."""
    from engram.query import Filters
    from engram.store.sqlite.store import SQLiteStore

    mem = Memory(tmp_path / "s", embedder=None)
    mem.add_many([{"text": f"kiwi kiwi kiwi {i:03d}", "user_id": "other", "dedupe": False}
                  for i in range(30)])
    mem.add_many([{"text": f"kiwi and a longer note about fruit {i:03d}", "user_id": "u",
                   "dedupe": False} for i in range(45)])
    assert isinstance(mem.store, SQLiteStore)
    found = mem.store.keyword_candidates(["kiwi"], Filters(user_id="u"), 10)
    assert [b.text for b, _ in found] == [f"kiwi and a longer note about fruit {i:03d}"
                                          for i in range(10)]
    assert len({score for _, score in found}) == 1
    mem.close()


@pytest.mark.parametrize("other_users", [False, True])
def test_a_word_in_thousands_of_memories_reads_its_newest(tmp_path: Path,
                                                           other_users: bool) -> None:
    """When every query word is common and the rarest is in more than MAX_TERM_ROWS rows,
    the newest rows holding it are scored (not every row), best first: the old short rows
    that BM25 would rank first are not read. With other users holding most of the store,
    the filtered join reads the newest of this user's rows the same way."""
    from engram.query import Filters
    from engram.store.keyword_layout import MAX_TERM_ROWS

    old = [f"apple apple apple {i}" for i in range(100)]  # BM25's best: short, three times
    new = [f"an apple in a longer note about the orchard, number {i}"
           for i in range(MAX_TERM_ROWS)]
    with Memory(tmp_path / "s", embedder=None) as mem:
        if other_users:
            mem.add_many([{"text": f"apple for someone else {i}", "user_id": "other",
                           "dedupe": False} for i in range(2 * (len(old) + len(new)))])
        mem.add_many([{"text": t, "user_id": "u", "dedupe": False} for t in [*old, *new]])
        found = mem.store.keyword_candidates(["apple"], Filters(user_id="u"), 20)
    texts = [b.text for b, _ in found]
    assert len(texts) == 20 and not set(texts) & set(old)
    assert all(t in new[-200:] for t in texts)
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
