"""The `state.*` keys of `engram config`: Settings is the training Settings plus these, so one
TOML file holds the tier rules, the training triggers and the state cap."""

from __future__ import annotations

from dataclasses import dataclass

from engram.lifecycle.tiers import _setting
from engram.train.settings import Settings as TrainSettings

DEFAULT_MAX_BYTES = 2 * 1024**3


@dataclass(frozen=True, slots=True)
class Settings(TrainSettings):
    """Every setting of `engram config`, with the saved-state byte cap."""

    state_max_bytes: int = _setting("state.max_bytes", DEFAULT_MAX_BYTES,
                                    "saved model states (KV caches) above this many bytes are "
                                    "evicted, least recently used first")
