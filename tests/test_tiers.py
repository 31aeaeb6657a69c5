"""Tier rules (pure) and maintenance over simulated months with an injected clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engram import ManualClock, Memory, Status, Tier
from engram.lifecycle.tiers import Policy, review, tagged_since, why
from engram.model import Confidence, Kind, MemoryEntry, Truth
from engram.query import Brief
from engram.recall.ranking import fading
from store_contract import Backend

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
POLICY = Policy()


def entry(**fields: object) -> MemoryEntry:
    base = MemoryEntry(id="m1", content="User lives in Lisbon", content_hash="h",
                       created_at=T0, updated_at=T0, occurred_at=T0, user_id="u1")
    return replace(base, **fields)  # type: ignore[arg-type]


def at(**delta: float) -> datetime:
    return T0 + timedelta(**delta)


def test_new_memories_stay_short_term_until_a_rule_holds() -> None:
    assert review(entry(), [], at(hours=71), POLICY) is None


@pytest.mark.parametrize(("fields", "reason"), [
    ({"validated": True}, "validated by the user"),
    ({"confidence": Confidence(overall=0.7, corroboration_count=2)}, "corroborated 2 times"),
])
def test_short_term_is_promoted_when_validated_or_corroborated(fields: dict[str, object],
                                                               reason: str) -> None:
    change = review(entry(**fields), [], at(hours=1), POLICY)
    assert change is not None and change.to_tier is Tier.LONG_TERM and reason in change.reason


def test_corroboration_needs_enough_confidence() -> None:
    weak = entry(confidence=Confidence(overall=0.5, corroboration_count=5))
    assert review(weak, [], at(hours=1), POLICY) is None


def test_a_memory_that_persisted_three_days_uncontradicted_is_promoted() -> None:
    change = review(entry(), [], at(days=3), POLICY)
    assert change is not None and change.to_tier is Tier.LONG_TERM
    assert "persisted 3 days without contradiction" in change.reason


def test_contradicted_or_situational_memories_expire_instead() -> None:
    for fields in ({"confidence": Confidence(contradiction_count=1)},
                   {"memory_type": Kind.CONTEXT}):
        change = review(entry(**fields), [], at(days=3), POLICY)
        assert change is not None and change.to_tier is None and "TTL 72 h" in change.reason


def test_a_shorter_ttl_expires_unused_memories_before_they_persist() -> None:
    short = replace(POLICY, ttl_hours=24)
    assert review(entry(), [], at(hours=23), short) is None
    change = review(entry(), [], at(hours=24), short)
    assert change is not None and change.to_tier is None
    used = entry(last_accessed=at(hours=20), access_count=1)
    assert review(used, [], at(hours=30), short) is None  # recall keeps it alive


def test_long_term_becomes_persistent_by_the_three_rules() -> None:
    long = entry(tier=Tier.LONG_TERM)
    assert review(long, [], at(days=400), POLICY) is None
    absolute = replace(long, truth_category=Truth.ABSOLUTE, confidence=Confidence(overall=0.95))
    assert _to(review(absolute, [], at(days=1), POLICY)) is Tier.PERSISTENT
    liked = replace(long, memory_type=Kind.PREFERENCE, access_count=10,
                    last_accessed=at(days=59))
    assert review(liked, [], at(days=61), POLICY) is None  # 10 recalls, but over 59 days
    assert _to(review(replace(liked, last_accessed=at(days=60)), [], at(days=61),
                      POLICY)) is Tier.PERSISTENT


def test_unused_memories_fade_by_half_life_and_persistent_ones_do_not() -> None:
    seen = Brief.of(entry(tier=Tier.LONG_TERM))
    assert fading(seen, at(days=0), 90) == 1.0
    assert fading(seen, at(days=90), 90) == pytest.approx(0.5)
    assert fading(seen, at(days=180), 90) == pytest.approx(0.25)
    recalled = Brief.of(entry(tier=Tier.LONG_TERM, last_accessed=at(days=170)))
    assert fading(recalled, at(days=180), 90) == pytest.approx(0.5 ** (10 / 90))
    assert fading(Brief.of(entry(tier=Tier.PERSISTENT)), at(days=900), 90) == 1.0


def _to(change: object) -> Tier | None:
    return getattr(change, "to_tier", None)


class TiersContract(Backend):
    """Tiers and maintenance through a real store on every backend; run by test_store_*.py."""

    def test_the_identity_tag_counts_from_when_it_was_put_on(self, store_dir: str | Path) -> None:
        clock = ManualClock(T0)
        with Memory(store_dir, clock=clock, embedder=None) as mem:
            m = mem.add("My name is Ada", user_id="u1", tier="long_term")
            clock.advance(timedelta(days=10))
            mem.tag(m.id, add=["identity"])
            history = mem.history(m.id)
            assert tagged_since(history, "identity") == at(days=10)
            assert review(mem.get(m.id), history, at(days=39), POLICY) is None
            assert _to(review(mem.get(m.id), history, at(days=40), POLICY)) is Tier.PERSISTENT
            mem.tag(m.id, remove=["identity"])
            assert tagged_since(mem.history(m.id), "identity") is None

    def test_maintenance_over_simulated_months(self, store_dir: str | Path) -> None:
        """Facts persist and fade unless used; chatter expires; identity becomes permanent."""
        clock = ManualClock(T0)
        with Memory(store_dir, clock=clock, embedder=None) as mem:
            fact = mem.add("Ada lives in Lisbon", user_id="u1")
            chatter = mem.add("Ada is tired today", user_id="u1", memory_type="context")
            name = mem.add("Ada's full name is Ada Lovelace", user_id="u1", tags=["identity"])
            used = mem.add("Ada prefers window seats", user_id="u1", memory_type="preference")
            reports = []
            for _day in range(120):
                clock.advance(timedelta(days=1))
                if _day % 5 == 0:
                    mem.search("window seats", user_id="u1")
                reports.append(mem.maintain())
            assert mem.get(chatter.id).status is Status.EXPIRED
            assert mem.get(fact.id).tier is Tier.LONG_TERM
            assert mem.get(name.id).tier is Tier.PERSISTENT
            assert mem.get(used.id).tier is Tier.PERSISTENT  # recalled every 5 days for 4 months
            # the fact went unused since its promotion on day 3: ranking trusts it less than 0.5
            faded = mem.search("Ada lives in Lisbon", user_id="u1")[0]
            assert faded.memory.id == fact.id
            assert faded.components["confidence"] == pytest.approx(0.5 * 0.5 ** (117 / 90))
            kept = mem.search("window seats", user_id="u1")[0]
            assert kept.memory.id == used.id and kept.components["confidence"] == 0.5
            assert sum(r.expired for r in reports) == 1
            assert [m.id for m in mem.list(user_id="u1", status="expired")] == [chatter.id]
            assert chatter.id not in [h.memory.id for h in mem.search("tired", user_id="u1")]
            assert "persisted" in why(mem.get(fact.id), mem.history(fact.id), mem.policy)
            assert "expired on" in why(mem.get(chatter.id), mem.history(chatter.id), mem.policy)

    def test_remember_turn_runs_overdue_maintenance_lazily(self, store_dir: str | Path) -> None:
        clock = ManualClock(T0)
        with Memory(store_dir, clock=clock, embedder=None) as mem:
            mem.remember_turn("I'm feeling tired today.", user_id="u1", session_id="s1")
            clock.advance(timedelta(days=4))
            assert mem.list(user_id="u1", status="expired") == []
            mem.remember_turn("Hello again.", user_id="u1", session_id="s2")
            assert len(mem.list(user_id="u1", status="expired")) == 2  # the turn and its context

    def test_maintenance_reads_only_what_a_rule_could_move(self, store_dir: str | Path) -> None:
        clock = ManualClock(T0)
        with Memory(store_dir, clock=clock, embedder=None) as mem:
            mem.add_many([{"text": f"settled fact {i}", "user_id": "u1", "tier": "long_term"}
                          for i in range(20)])
            mem.add("a new fact", user_id="u1")
            mem.add("a core fact", user_id="u1", tier="long_term", truth_category="absolute",
                    confidence=0.95)
            mem.add("likes tea", user_id="u1", tier="long_term", memory_type="preference")
            mem.add("my name", user_id="u1", tier="long_term", tags=["identity"])
            report = mem.maintain()
        assert report.examined == 4 and report.promoted == 1  # the core fact became persistent
