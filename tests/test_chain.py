"""One hash chain per device (pure rules): sealing, import admission, verification, the
legacy one-chain log's re-seal, and what a forget redacts and purges."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engram import ManualClock
from engram.errors import StoreError
from engram.log import chain, rules
from engram.log.chain import Head, Sealer, merge_key
from engram.log.events import (
    GENESIS_HASH,
    HLC,
    Draft,
    Event,
    EventType,
    event_hash,
    new_id,
    seal,
)
from engram.log.legacy import LegacyWalk


def draft(n: int, memory_id: str = "m1") -> Draft:
    return Draft(EventType.TAGGED, memory_id, {"add": [f"t{n}"], "at": "2026-01-01T00:00:00Z"})


def two_devices(steps: list[bool], skew_ms: int = 0) -> list[Event]:
    """Devices a and b appending in the order `steps` says (True: a), each sealing onto its
    own head after the latest time it has seen: a log in position order."""
    clocks = {"a": ManualClock(datetime(2026, 1, 1, tzinfo=UTC)),
              "b": ManualClock(datetime(2026, 1, 1, tzinfo=UTC))}
    sealers = {d: Sealer(d, clocks[d]) for d in clocks}
    heads: dict[str, Head] = {}
    log: list[Event] = []
    for n, is_a in enumerate(steps):
        device = "a" if is_a else "b"
        clocks[device].advance(timedelta(milliseconds=1 + (skew_ms if is_a else 0)))
        last = max((e.hlc for e in log), default=None)
        event = sealers[device].seal(draft(n), head=heads.get(device), log_hlc=last)
        heads[device] = Head.of(event)
        log.append(event)
    return log


def test_each_device_chains_to_its_own_previous_event() -> None:
    log = two_devices([True, False, True, True, False])
    by_device: dict[str, list[Event]] = {}
    for event in log:
        by_device.setdefault(event.device_id, []).append(event)
    for events in by_device.values():
        assert events[0].prev_hash == GENESIS_HASH and events[0].seq == 1
        for before, after in itertools.pairwise(events):
            assert after.prev_hash == before.hash and after.seq == before.seq + 1
    # every event is later than every event its writer had seen
    assert [e.hlc for e in log] == sorted(e.hlc for e in log)
    assert chain.verify(enumerate(sorted(log, key=lambda e: (e.device_id, e.seq)), 1)).ok


@given(st.lists(st.booleans(), min_size=1, max_size=30), st.randoms(use_true_random=False),
       st.integers(0, 5))
def test_admission_does_not_depend_on_the_order_of_the_lines(
        steps: list[bool], rng: random.Random, skew: int) -> None:
    log = two_devices(steps, skew)
    shuffled = log[:]
    rng.shuffle(shuffled)
    new = chain.admit(shuffled, known={}, heads={})
    assert new == sorted(log, key=lambda e: (e.device_id, e.seq))
    # a second import of the same lines admits nothing
    assert chain.admit(shuffled, known={e.id: e.hash for e in log},
                       heads={e.device_id: Head.of(e) for e in log}) == []
    # a prefix of each device, then the rest: the rest continues the heads
    cut = len(log) // 2
    first = chain.admit(log[:cut], known={}, heads={})
    heads = {e.device_id: Head.of(e) for e in first}
    assert chain.admit(log[cut:], known={e.id: e.hash for e in first}, heads=heads) == \
        sorted(log[cut:], key=lambda e: (e.device_id, e.seq))


def test_admission_refuses_a_gap_a_fork_and_a_changed_event() -> None:
    log = two_devices([True, True, False, True])
    a = [e for e in log if e.device_id == "a"]
    with pytest.raises(StoreError, match=r"line 1: .*does not continue the chain of device a"):
        chain.admit([a[1]], known={}, heads={})
    fork = seal(draft(99), event_id=new_id(5), device_id="a", seq=2, hlc=HLC(10**13),
                prev_hash=a[0].hash)
    with pytest.raises(StoreError, match=r"line 3: .*device a \(prev_hash"):
        chain.admit([a[0], a[1], fork], known={}, heads={})  # seq 2 twice: the 2nd is a fork
    changed = replace(a[0], actor="mallory")
    with pytest.raises(StoreError, match="is damaged"):  # its hash no longer matches it
        chain.admit([changed], known={a[0].id: a[0].hash}, heads={"a": Head.of(a[0])})
    with pytest.raises(StoreError, match="differs from the stored event"):
        chain.admit([replace(changed, hash=event_hash(changed))], known={a[0].id: a[0].hash},
                    heads={"a": Head.of(a[0])})


@given(st.lists(st.booleans(), min_size=1, max_size=25), st.data())
def test_verify_catches_a_tampered_event_in_any_devices_chain(steps: list[bool],
                                                              data: st.DataObject) -> None:
    log = two_devices(steps)
    walk = sorted(log, key=lambda e: (e.device_id, e.seq))
    positions = {e.id: n for n, e in enumerate(log, start=1)}
    assert chain.verify((positions[e.id], e) for e in walk).ok
    victim = data.draw(st.integers(0, len(walk) - 1))
    how = data.draw(st.sampled_from(["payload", "header", "drop", "hlc"]))
    target = walk[victim]
    if how == "drop" and victim + 1 < len(walk) and walk[victim + 1].device_id == \
            target.device_id:
        broken = walk[victim + 1]
        tampered = walk[:victim] + walk[victim + 1:]
        expected_problem = "prev_hash"
    else:
        broken = target
        if how == "payload":
            bad = replace(target, payload={"add": ["forged"]})
            expected_problem = "payload was altered"
        elif how == "hlc":
            bad = replace(target, hlc=HLC(0))
            expected_problem = "hash does not match"
        else:
            bad = replace(target, actor="mallory")
            expected_problem = "hash does not match"
        tampered = [*walk[:victim], bad, *walk[victim + 1:]]
    report = chain.verify((positions[e.id], e) for e in tampered)
    assert not report.ok
    assert report.event_id == broken.id and report.device_id == broken.device_id
    assert report.broken_at == positions[broken.id]
    assert expected_problem in (report.problem or "")
    assert f"device {broken.device_id}" in (report.problem or "")


def test_verify_catches_time_going_back_within_a_device() -> None:
    first = seal(draft(0), event_id=new_id(1), device_id="a", seq=1, hlc=HLC(500),
                 prev_hash=GENESIS_HASH)
    second = seal(draft(1), event_id=new_id(2), device_id="a", seq=2, hlc=HLC(400),
                  prev_hash=first.hash)
    report = chain.verify([(1, first), (2, second)])
    assert report.broken_at == 2 and "hlc is not after" in (report.problem or "")


def test_merge_order_is_hlc_then_device_then_seq() -> None:
    log = two_devices([True, False, True])
    assert sorted(log, key=merge_key) == log
    assert chain.in_merge_order(log[1:], merge_key(log[0]))
    assert not chain.in_merge_order(log[:1], merge_key(log[1]))
    assert chain.in_merge_order(log, None)


# ---------------------------------------------------------------- the legacy one-chain log

def legacy(log: list[Event]) -> list[Event]:
    """The same events as Engram 0.1 chained them: schema 1, each to the store's previous."""
    out, prev = [], GENESIS_HASH
    for event in log:
        old = replace(event, schema=1, prev_hash=prev)
        old = replace(old, hash=event_hash(old))
        out.append(old)
        prev = old.hash
    return out


def test_a_legacy_chain_of_two_devices_is_verified_then_resealed_per_device() -> None:
    old = legacy(two_devices([True, True, False, True, False]))
    walk = LegacyWalk()
    for pos, event in enumerate(old, start=1):
        walk.feed(pos, event)
    assert walk.problem is None and walk.events == 5 and not walk.out_of_order
    resealed = {e.id: e for e in walk.resealed}
    # a's first two events already chain within a; from b's first event on, links change
    assert set(resealed) == {e.id for e in old[2:]}
    assert all(e.schema == 2 and e.payload_hash == o.payload_hash
               for o in old[2:] for e in [resealed[o.id]])
    migrated = [resealed.get(e.id, e) for e in old]
    positions = {e.id: n for n, e in enumerate(migrated, start=1)}
    walk_order = sorted(migrated, key=lambda e: (e.device_id, e.seq))
    assert chain.verify((positions[e.id], e) for e in walk_order).ok
    # deterministic: another store holding the same legacy events re-seals them the same way
    again = LegacyWalk()
    for pos, event in enumerate(old[:4], start=1):
        again.feed(pos, event)
    assert {e.id: e.hash for e in again.resealed} == \
        {i: e.hash for i, e in resealed.items() if i in {x.id for x in old[:4]}}


def test_a_broken_legacy_chain_is_left_for_verify_to_report() -> None:
    old = legacy(two_devices([True, False, True]))
    old[1] = replace(old[1], payload={"add": ["forged"]})
    walk = LegacyWalk()
    for pos, event in enumerate(old, start=1):
        walk.feed(pos, event)
    assert walk.problem is not None and "event #2" in walk.problem
    assert walk.resealed == []


def test_redacted_legacy_events_reseal_and_verify() -> None:
    old = legacy(two_devices([True, False, False]))
    old[1] = old[1].redact()
    walk = LegacyWalk()
    for pos, event in enumerate(old, start=1):
        walk.feed(pos, event)
    migrated = {e.id: e for e in walk.resealed}
    assert migrated[old[1].id].payload is None
    walk_order = sorted((migrated.get(e.id, e) for e in old), key=lambda e: (e.device_id, e.seq))
    assert chain.verify(enumerate(walk_order, start=1)).ok


# ---------------------------------------------------------------- event rules

def _event(kind: EventType, memory_id: str, payload: dict[str, object], n: int) -> Event:
    return seal(Draft(kind, memory_id, payload), event_id=new_id(n), device_id="a", seq=n,
                hlc=HLC(n), prev_hash=GENESIS_HASH)


def test_a_forget_redacts_every_earlier_payload_and_drops_every_text() -> None:
    added = _event(EventType.ADDED, "m", {"memory": {"content_hash": "h1"}}, 1)
    updated = _event(EventType.UPDATED, "m", {"changes": {"content_hash": "h2"}, "at": "x"}, 2)
    tagged = _event(EventType.TAGGED, "m", {"add": ["t"], "at": "x"}, 3)
    forgotten = _event(EventType.FORGOTTEN, "m", {"reason": "asked"}, 4)
    fx = rules.effects(forgotten, [added, updated, tagged.redact(), tagged], None)
    assert set(fx.redact) == {added.id, updated.id, tagged.id}
    assert fx.drop_vectors == ("h1", "h2") and not fx.store_redacted
    # an event arriving for a memory already forgotten is stored without its payload
    late = _event(EventType.TAGGED, "m", {"add": ["late"], "at": "x"}, 5)
    assert rules.effects(late, [added.redact(), forgotten], None).store_redacted
    assert rules.effects(late, [added], None) == rules.NONE
    accessed = _event(EventType.ACCESSED, "", {"accesses": {"m": [1, "x"]}}, 6)
    assert rules.effects(accessed).accesses == {"m": [1, "x"]}
    assert rules.needs_past(forgotten, imported=False) and rules.needs_past(late, imported=True)
    assert not rules.needs_past(late, imported=False)
