"""Named settings: typed keys that say whether they stay on this device or travel with the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from engram import Memory
from engram.store.migrate import copy_store
from engram.store.settings import (
    API_KEYS,
    CHAT_SUMMARY,
    EMBEDDER,
    MAINTAINED_AT,
    OLLAMA_CONTEXT,
    SETTINGS,
    Scope,
)

pytestmark = pytest.mark.all_backends


def test_settings_round_trip_plain_and_qualified(store_dir: str | Path) -> None:
    with Memory(store_dir, embedder=None) as mem:
        assert mem.store.get_setting(CHAT_SUMMARY, "u:s1") is None
        mem.store.set_setting(CHAT_SUMMARY, '{"turns": 3}', "u:s1")
        mem.store.set_setting(CHAT_SUMMARY, '{"turns": 5}', "u:s_2")
        mem.store.set_setting(MAINTAINED_AT, "2026-01-05T09:00:00Z")
        mem.store.set_setting(CHAT_SUMMARY, '{"turns": 4}', "u:s1")  # replaces
    with Memory(store_dir, embedder=None) as mem:
        assert mem.store.get_setting(CHAT_SUMMARY, "u:s1") == '{"turns": 4}'
        assert mem.store.settings_of(CHAT_SUMMARY) == {"u:s1": '{"turns": 4}',
                                                       "u:s_2": '{"turns": 5}'}
        assert mem.store.settings_of(MAINTAINED_AT) == {"": "2026-01-05T09:00:00Z"}
        assert mem.store.settings_of(OLLAMA_CONTEXT) == {}


def test_every_setting_has_a_distinct_name_and_says_where_it_lives() -> None:
    assert len({s.name for s in SETTINGS}) == len(SETTINGS)
    assert API_KEYS.scope is Scope.DEVICE  # secrets never leave the device
    assert OLLAMA_CONTEXT.scope is Scope.DEVICE and CHAT_SUMMARY.scope is Scope.LOG


@pytest.mark.sqlite_only("copies between two store directories")
def test_a_copy_takes_the_settings_that_travel_and_no_device_state(tmp_path: Path) -> None:
    source, target = tmp_path / "laptop", tmp_path / "board"
    with Memory(source, embedder=None) as mem:
        mem.add("Ada likes tea", user_id="u")
        mem.store.set_setting(CHAT_SUMMARY, "the summary", "u:s1")
        mem.store.set_setting(EMBEDDER, "none")
        mem.store.set_setting(API_KEYS, "[secret]")
        mem.store.set_setting(OLLAMA_CONTEXT, "[1, 2, 3]", "u:s1:ollama:phi3")
    copy_store(source, target, vectors=False)
    with Memory(target, embedder=None) as copy:
        assert copy.store.get_setting(CHAT_SUMMARY, "u:s1") == "the summary"
        assert copy.store.get_setting(EMBEDDER) == "none"
        assert copy.store.get_setting(API_KEYS) is None
        assert copy.store.settings_of(OLLAMA_CONTEXT) == {}
