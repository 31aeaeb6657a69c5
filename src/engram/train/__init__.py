"""Learning from memory: LoRA adapters crystallised from a user's confirmed memories
(docs/train.md). Candidates → curated dataset → PEFT LoRA → versioned registry → evaluation →
a local provider that answers with base + adapter. Torch, transformers and peft are imported
only by the modules that train or run a model (the `train` extra)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Protocol

from engram.clock import Clock
from engram.lifecycle.tiers import Policy
from engram.store.base import Store
from engram.train.settings import Settings


class Host(Protocol):
    """What the training wing may use of `Memory`: its store, clock and settings. Kept here
    so no module of the wing imports `engram.memory`."""

    @property
    def store(self) -> Store: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def policy(self) -> Policy: ...


def settings(policy: Policy) -> Settings:
    """The `train.*` settings of a store's policy (defaults where it holds only tier rules)."""
    if isinstance(policy, Settings):
        return policy
    return Settings(**asdict(policy))
