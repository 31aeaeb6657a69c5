"""The continuous-learning thresholds, as settings of `engram config` beside the tier rules:
`Settings` is the tier `Policy` plus the `train.*` keys, so one TOML file holds both."""

from __future__ import annotations

from dataclasses import dataclass

from engram.lifecycle.tiers import Policy, _setting


@dataclass(frozen=True, slots=True)
class Settings(Policy):
    """Every setting of `engram config`: the tier rules and the training triggers."""

    train_after_accepted: int = _setting("train.after_accepted", 10,
                                         "update the adapter once this many accepted memories "
                                         "wait to be learnt")
    train_every_hours: float = _setting("train.every_hours", 24.0,
                                        "… or once the active adapter is this old (0: never)")
    train_min_confidence: float = _setting("train.min_confidence", 0.7,
                                           "long-term memories at this confidence are "
                                           "training candidates (persistent ones always)")
    train_perplexity_tolerance: float = _setting("train.perplexity_tolerance", 0.1,
                                                 "promote a new adapter only if its perplexity "
                                                 "rises at most this fraction over the active")
