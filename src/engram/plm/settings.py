"""The `plm.*` keys of `engram config`: Settings is the state Settings plus the teacher, so one
TOML file holds every setting."""

from __future__ import annotations

from dataclasses import dataclass

from engram.lifecycle.tiers import _setting
from engram.state.settings import Settings as StateSettings


@dataclass(frozen=True, slots=True)
class Settings(StateSettings):
    """Every setting of `engram config`, with the teacher whose answers are logged."""

    plm_teacher: str = _setting("plm.teacher", "",
                                "log the exchanges this model answers (its name as "
                                "`engram chat --model` or the proxy's request gives it, or * "
                                "for any) as teacher data for `engram plm`; empty: none")
