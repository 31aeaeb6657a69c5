from datetime import UTC, datetime, timedelta, timezone

import pytest

from engram.errors import InvalidInput
from engram.model import (
    Confidence,
    Kind,
    LinkKind,
    Links,
    MemoryEntry,
    Source,
    Tier,
    check_metadata,
    content_hash,
    normalize_content,
    normalize_labels,
    parse_enum,
    parse_time,
)


def _entry(**overrides: object) -> MemoryEntry:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    base: dict[str, object] = dict(id="m1", content="I live in Lisbon", content_hash="h",
                                   created_at=now, updated_at=now, occurred_at=now, user_id="u")
    return MemoryEntry(**{**base, **overrides})  # type: ignore[arg-type]


def test_to_dict_round_trips_every_field() -> None:
    entry = _entry(
        summary="home", tier=Tier.LONG_TERM, memory_type=Kind.PREFERENCE,
        confidence=Confidence(0.9, 0.8, 0.7, 2, 1), tags=("home",), domains=("life",),
        entities=("Lisbon",), links=Links(related=("m0",)),
        sources=(Source(kind="conversation", ref="s1#3", model="phi3"),),
        last_accessed=datetime(2026, 3, 2, tzinfo=UTC), access_count=4, agent_id="a",
        session_id="s", device_id="d", metadata={"k": [1, 2]},
    )
    assert MemoryEntry.from_dict(entry.to_dict()) == entry


def test_to_dict_leaves_defaults_out() -> None:
    assert set(_entry().to_dict()) == {"id", "content", "content_hash", "created_at",
                                       "updated_at", "occurred_at", "user_id"}


def test_content_hash_ignores_case_and_spacing() -> None:
    assert content_hash("I  live in\nLisbon") == content_hash("i live in lisbon")
    assert content_hash("I live in Lisbon") != content_hash("I live in Berlin")


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_content_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="text: is empty"):
        normalize_content(text)


def test_content_over_limit_names_size_and_fix() -> None:
    with pytest.raises(InvalidInput, match=r"text: is 11 bytes, over the limit of 10"):
        normalize_content("x" * 11, max_bytes=10)


def test_lone_surrogate_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not valid Unicode"):
        normalize_content("bad \udc80 text")


def test_unknown_enum_lists_allowed_values() -> None:
    with pytest.raises(InvalidInput, match=r"tier: unknown value .forever.*short_term"):
        parse_enum(Tier, "forever", "tier")


@pytest.mark.parametrize("bad", [{"when": datetime(2026, 1, 1)}, {1: "int key"},
                                 {"t": (1, 2)}, {"x": float("nan")}, ["not", "a", "dict"]])
def test_metadata_must_survive_json(bad: object) -> None:
    with pytest.raises(InvalidInput, match="metadata"):
        check_metadata(bad)


def test_times_are_normalised_to_utc() -> None:
    local = datetime(2026, 5, 8, 13, 56, tzinfo=timezone(timedelta(hours=2)))
    assert parse_time(local, "at") == datetime(2026, 5, 8, 11, 56, tzinfo=UTC)
    assert parse_time("2026-05-08T13:56:00", "at") == datetime(2026, 5, 8, 13, 56, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="at: 'yesterday' is not a date-time"):
        parse_time("yesterday", "at")


def test_labels_are_stripped_and_unique() -> None:
    assert normalize_labels([" a", "b", "a "], "tags") == ("a", "b")
    with pytest.raises(InvalidInput, match="tags"):
        normalize_labels(["ok", ""], "tags")


def test_confidence_range_is_checked() -> None:
    with pytest.raises(InvalidInput, match=r"confidence.overall"):
        Confidence(overall=1.5)


def test_links_add_is_idempotent() -> None:
    links = Links().add(LinkKind.SUPERSEDES, "m0").add(LinkKind.SUPERSEDES, "m0")
    assert links.supersedes == ("m0",)
