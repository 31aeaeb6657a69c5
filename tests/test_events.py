from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from engram.log.events import (
    GENESIS_HASH,
    HLC,
    Draft,
    Event,
    EventType,
    MonotonicIds,
    canonical_json,
    chain_problem,
    new_id,
    seal,
)


def _chain(n: int) -> list[Event]:
    events, prev = [], GENESIS_HASH
    for i in range(n):
        event = seal(Draft(EventType.TAGGED, "m1", {"add": [f"t{i}"]}), event_id=new_id(i),
                     device_id="d", seq=i + 1, hlc=HLC(1000 + i), prev_hash=prev)
        events.append(event)
        prev = event.hash
    return events


def test_canonical_json_is_order_independent() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == canonical_json({"a": "é", "b": 1}) == \
        '{"a":"é","b":1}'


@given(st.integers(0, 2**48 - 1), st.integers(0, 2**48 - 1))
def test_ids_sort_by_time(a: int, b: int) -> None:
    assert (new_id(a) < new_id(b)) == (a < b) or a == b
    assert len(new_id(a)) == 26


@given(st.lists(st.integers(0, 10**13), min_size=1, max_size=50))
def test_hlc_is_strictly_monotonic_even_when_wall_time_goes_back(walls: list[int]) -> None:
    hlc = HLC(0)
    for wall in walls:
        nxt = hlc.tick(wall)
        assert nxt > hlc
        assert HLC.parse(str(nxt)) == nxt
        assert str(nxt) > str(hlc)  # the text form sorts the same way
        hlc = nxt


def test_a_sealed_chain_verifies() -> None:
    prev = GENESIS_HASH
    for event in _chain(5):
        assert chain_problem(event, prev) is None
        prev = event.hash


def test_tampered_payload_header_or_link_is_caught() -> None:
    first, second = _chain(2)
    assert "payload" in (chain_problem(replace(first, payload={"add": ["x"]}), GENESIS_HASH)
                         or "")
    assert "header" in (chain_problem(replace(first, actor="mallory"), GENESIS_HASH) or "")
    assert "prev_hash" in (chain_problem(second, GENESIS_HASH) or "")


def test_redaction_keeps_the_chain_valid() -> None:
    first, second = _chain(2)
    assert chain_problem(first.redact(), GENESIS_HASH) is None
    assert chain_problem(second, first.redact().hash) is None


def test_event_dict_round_trip() -> None:
    event = _chain(1)[0]
    assert Event.from_dict(event.to_dict()) == event


def test_ids_from_one_process_sort_in_creation_order_within_a_millisecond() -> None:
    ids = MonotonicIds()
    made = [ids(1_000) for _ in range(500)] + [ids(999)] + [ids(1_001)]
    assert made == sorted(made) and len(set(made)) == len(made)
