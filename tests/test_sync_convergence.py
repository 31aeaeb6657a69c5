"""Convergence: three replicas written to independently (every kind of write, maintenance with
moving clocks, forgets) and synced by bundles between random pairs, partially, lossily and
out of date; after a final full exchange every replica holds the same memories and the same
chains, equal to a rebuild of its own log, and verifies."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from engram import ManualClock, Memory
from engram.errors import StoreError
from engram.store.migrate import checksum

NAMES = ("laptop", "edge", "phone")
WORDS = ("lisbon", "berlin", "dog", "tea", "jazz", "python")
CITIES = ("Paris", "Lisbon", "Porto")
USERS = ("alice", "bob")
replica = st.integers(0, len(NAMES) - 1)
text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join)


class Replicas(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="engram-sync-"))
        start = datetime(2026, 3, 1, 9, tzinfo=UTC)
        # Clocks skewed by hours: the hybrid logical clock, not the wall, orders the merge.
        self.clocks = [ManualClock(start + timedelta(hours=3 * i)) for i in range(3)]
        self.mems = [Memory(self.dir / name, clock=clock, device_id=name, embedder=None)
                     for name, clock in zip(NAMES, self.clocks, strict=True)]
        self.sent: list[Path] = []

    def _tick(self, i: int, minutes: int = 1) -> Memory:
        self.clocks[i].advance(timedelta(minutes=minutes))
        return self.mems[i]

    def _pick(self, i: int, data: st.DataObject) -> str | None:
        ids = sorted(m.id for m in self.mems[i].list(user_id=None, limit=None))
        return data.draw(st.sampled_from(ids)) if ids else None

    @rule(i=replica, words=text, user=st.sampled_from(USERS), tag=st.booleans())
    def add(self, i: int, words: str, user: str, tag: bool) -> None:
        self._tick(i).add(words, user_id=user, session_id="s", tags=["identity"] if tag else [])

    @rule(i=replica, texts=st.lists(text, min_size=1, max_size=3))
    def add_many(self, i: int, texts: list[str]) -> None:
        self._tick(i).add_many([{"text": t, "user_id": "alice", "session_id": "s"}
                                for t in texts])

    @rule(i=replica, data=st.data(), words=text)
    def update(self, i: int, data: st.DataObject, words: str) -> None:
        if (target := self._pick(i, data)) is not None:
            self._tick(i).update(target, text=words + " edited", confidence=0.95)

    @rule(i=replica, data=st.data(), add=st.sampled_from(WORDS), remove=st.sampled_from(WORDS))
    def tag(self, i: int, data: st.DataObject, add: str, remove: str) -> None:
        if (target := self._pick(i, data)) is not None:
            self._tick(i).tag(target, add=[add], remove=[remove] if remove != add else [])

    @rule(i=replica, data=st.data(), kind=st.sampled_from(["related", "supports"]))
    def link(self, i: int, data: st.DataObject, kind: str) -> None:
        a, b = self._pick(i, data), self._pick(i, data)
        if a is not None and b is not None and a != b:
            self._tick(i).link(a, kind, b)

    @rule(i=replica, city=st.sampled_from(CITIES))
    def remember_turn(self, i: int, city: str) -> None:
        self._tick(i).remember_turn(f"I live in {city}.", "Noted.", user_id="alice",
                                    session_id=f"chat-{NAMES[i]}")

    @rule(i=replica, data=st.data(), rating=st.sampled_from(["good", "bad"]))
    def feedback(self, i: int, data: st.DataObject, rating: str) -> None:
        if (target := self._pick(i, data)) is not None:
            self._tick(i).feedback(target, rating)

    @rule(i=replica, word=st.sampled_from(WORDS))
    def search(self, i: int, word: str) -> None:
        self._tick(i).search(word, user_id="alice")  # access counts travel at the next export

    @rule(i=replica, hours=st.integers(1, 24 * 40))
    def maintain(self, i: int, hours: int) -> None:
        self._tick(i, minutes=60 * hours).maintain()

    @rule(i=replica, data=st.data())
    def forget(self, i: int, data: st.DataObject) -> None:
        if (target := self._pick(i, data)) is not None:
            self._tick(i).forget(target)

    @rule(a=replica, b=replica, deliver=st.booleans(), both_ways=st.booleans())
    def exchange(self, a: int, b: int, deliver: bool, both_ways: bool) -> None:
        """a writes a bundle for b; it may be lost on the way, or answered."""
        if a == b:
            return
        self._ship(a, b, deliver)
        if both_ways and deliver:
            self._ship(b, a, True)

    @precondition(lambda self: self.sent)
    @rule(i=replica, data=st.data())
    def stale_bundle(self, i: int, data: st.DataObject) -> None:
        """An old bundle turns up: applied if it continues the chains, else refused whole."""
        before = checksum(self.mems[i].store)
        try:
            self.mems[i].sync_import(data.draw(st.sampled_from(self.sent)))
        except StoreError:
            assert checksum(self.mems[i].store) == before

    def _ship(self, a: int, b: int, deliver: bool) -> None:
        path = self.dir / f"bundle-{len(self.sent)}.gz"
        self.mems[a].sync_export(path, peer=NAMES[b])
        self.sent.append(path)
        if deliver:
            self.mems[b].sync_import(path)

    def teardown(self) -> None:
        try:
            for _ in range(2):  # everyone to everyone, twice: all hold everything
                for a in range(3):
                    for b in range(3):
                        if a != b:
                            self._ship(a, b, True)
            sums = [checksum(m.store) for m in self.mems]
            assert len(set(sums)) == 1, sums
            for mem, live in zip(self.mems, sums, strict=True):
                assert mem.verify().ok
                mem.rebuild()
                assert checksum(mem.store) == live
        finally:
            for mem in self.mems:
                mem.close()
            shutil.rmtree(self.dir, ignore_errors=True)


Replicas.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])
test_replicas_converge = Replicas.TestCase
