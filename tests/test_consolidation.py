"""remember_turn and add(infer=True): extraction, dedupe, contradiction, feedback."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engram import InvalidInput, ManualClock, Memory, Status
from engram.log.events import EventType
from store_contract import Backend


class ConsolidationContract(Backend):
    """Consolidation on every backend; run by test_store_*.py."""

    def test_a_turn_is_recorded_verbatim_and_what_it_states_is_extracted(self, mem: Memory) -> None:
        done = mem.remember_turn("I live in Paris and I'm allergic to peanuts.", "Noted.",
                                 user_id="ada", session_id="s1")
        assert done.turn.content == "User: I live in Paris and I'm allergic to peanuts.\n" \
                                    "Assistant: Noted."
        assert {m.content for m in done.extracted} == {"User lives in Paris",
                                                       "User is allergic to peanuts"}
        assert all(m.links.derived_from == (done.turn.id,) for m in done.extracted)
        assert all(m.session_id == "s1" and m.user_id == "ada" for m in done.extracted)
        assert mem.conversation("s1", user_id="ada") == [
            {"role": "user", "content": "I live in Paris and I'm allergic to peanuts."},
            {"role": "assistant", "content": "Noted."}]
        assert mem.conversation("s1", user_id="someone-else") == []

    def test_a_changed_fact_supersedes_the_old_one(self, mem: Memory, clock: ManualClock) -> None:
        old = mem.remember_turn("I live in Paris.", user_id="ada", session_id="s1").extracted[0]
        clock.advance(timedelta(days=20))
        new = mem.remember_turn("I moved to Berlin.", user_id="ada", session_id="s2")
        assert new.superseded == [old.id]
        stale = mem.get(old.id)
        assert stale.status is Status.SUPERSEDED and stale.links.superseded_by == (
            new.extracted[0].id,)
        assert stale.confidence.contradiction_count == 1
        assert stale.confidence.overall < old.confidence.overall
        assert mem.get(new.extracted[0].id).links.supersedes == (old.id,)
        assert EventType.SUPERSEDED in [e.type for e in mem.history(old.id)]
        default = [h.memory.id for h in mem.search("where does she live", user_id="ada")]
        assert old.id not in default and new.extracted[0].id in default
        everything = mem.search("where does she live", user_id="ada", include_superseded=True)
        assert old.id in [h.memory.id for h in everything]

    def test_saying_it_again_corroborates_and_revives(self, mem: Memory,
                                                      clock: ManualClock) -> None:
        paris = mem.remember_turn("I live in Paris.", user_id="ada", session_id="s1").extracted[0]
        again = mem.remember_turn("I live in Paris", user_id="ada", session_id="s2").extracted[0]
        assert again.id == paris.id and again.confidence.corroboration_count == 1
        assert again.confidence.overall > paris.confidence.overall
        berlin = mem.remember_turn("I moved to Berlin.", user_id="ada", session_id="s3")
        back = mem.remember_turn("I live in Paris again.", user_id="ada", session_id="s4")
        assert back.extracted[0].id == paris.id and mem.get(paris.id).status is Status.ACTIVE
        assert mem.get(berlin.extracted[0].id).status is Status.SUPERSEDED
        facts = mem.list(user_id="ada", memory_type="fact")
        assert [m.content for m in facts] == ["User lives in Paris"]

    def test_negation_contradicts_a_preference(self, mem: Memory) -> None:
        likes = mem.remember_turn("I love jazz.", user_id="ada", session_id="s1").extracted[0]
        mem.remember_turn("I don't like jazz anymore.", user_id="ada", session_id="s2")
        assert mem.get(likes.id).status is Status.SUPERSEDED

    def test_users_never_consolidate_into_each_other(self, mem: Memory) -> None:
        ada = mem.remember_turn("I live in Paris.", user_id="ada", session_id="s1").extracted[0]
        bob = mem.remember_turn("I moved to Berlin.", user_id="bob", session_id="s1").extracted[0]
        assert mem.get(ada.id).status is Status.ACTIVE and bob.user_id == "bob"

    def test_near_duplicates_corroborate_with_the_real_embedder(self, store_dir: str | Path,
                                                                clock: ManualClock) -> None:
        with Memory(store_dir, clock=clock) as mem:  # the default MiniLM, offline
            first = mem.remember_turn("Yesterday I ran a half marathon in Lisbon.",
                                      user_id="ada", session_id="s1").extracted
            again = mem.remember_turn("Yesterday I ran a half-marathon in Lisbon!",
                                      user_id="ada", session_id="s1").extracted
            other = mem.remember_turn("Yesterday I baked bread with my sister.",
                                      user_id="ada", session_id="s1").extracted
        assert first and again and other
        assert again[0].id == first[0].id and again[0].confidence.corroboration_count == 1
        assert other[0].id != first[0].id

    def test_add_with_infer_extracts_from_a_single_text(self, mem: Memory) -> None:
        note = mem.add("My name is Ada and I work at Babbage Ltd.", user_id="ada", infer=True)
        derived = [m for m in mem.list(user_id="ada") if m.links.derived_from == (note.id,)]
        assert {m.slot for m in derived} == {"user/name", "user/employer"}

    def test_feedback_moves_confidence_and_training_weight(self, mem: Memory) -> None:
        m = mem.add("Ada prefers tea", user_id="ada", confidence=0.5)
        good = mem.feedback(m.id, "good")
        assert (good.confidence.overall, good.training_weight, good.validated) == (0.75, 1.5, True)
        bad = mem.feedback(m.id, "bad")
        assert (bad.confidence.overall, bad.training_weight) == (0.375, 0.75)
        fixed = mem.feedback(m.id, "correction", correction="Ada prefers green tea")
        assert fixed.content == "Ada prefers green tea"
        assert (fixed.confidence.overall, fixed.training_weight) == (1.0, 2.25)
        assert [e.type for e in mem.history(m.id)].count(EventType.FEEDBACK) == 3

    @pytest.mark.parametrize(("rating", "correction", "field"), [
        ("great", None, "rating"), ("correction", None, "correction"),
        ("good", "text", "correction")])
    def test_bad_feedback_names_the_field_and_changes_nothing(self, mem: Memory, rating: str,
                                                              correction: str | None,
                                                              field: str) -> None:
        m = mem.add("Ada prefers tea", user_id="ada")
        with pytest.raises(InvalidInput) as err:
            mem.feedback(m.id, rating, correction)
        assert err.value.field == field and len(mem.history(m.id)) == 1

    def test_bad_turns_are_refused_whole(self, mem: Memory) -> None:
        with pytest.raises(InvalidInput) as err:
            mem.remember_turn("   ", user_id="ada", session_id="s1")
        assert err.value.field == "user_msg"
        with pytest.raises(InvalidInput):
            mem.remember_turn("I live in Paris.", user_id="ada", session_id="")
        assert mem.count(user_id="ada") == 0

    def test_a_sessions_own_turns_are_not_recalled_twice(self, mem: Memory) -> None:
        mem.remember_turn("I adore sailing on the lake.", "Lovely!", user_id="ada", session_id="s1")
        conversation = mem.conversation("s1", user_id="ada")
        question = [*conversation, {"role": "user", "content": "what about sailing?"}]
        plan = mem.assemble(conversation=question, user_id="ada", session_id="s1")
        assert all("turn" not in m.tags for m in plan.memories)
        assert any("turn" in m.tags for m in mem.assemble(conversation=question,
                                                          user_id="ada").memories)
