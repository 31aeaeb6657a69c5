"""Time at recall: a question that names a time ("last summer", "in May 2023", "on Sunday")
lifts the memories that happened then. The phrase is resolved against the search's `now`
by the extractor's rules (`extract.dates`); its weight (`Weights.time`) is chosen by
cross-validation (docs/recall.md)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

from engram.extract.dates import find_time

_MONTH = timedelta(days=31)  # from a month's first day: into the next month
SEASON = re.compile(r"spring|summer|fall|autumn|winter", re.IGNORECASE)


def query_window(query: str, now: datetime) -> tuple[datetime, datetime] | None:
    """[start, end) of the time the question names, or None. A day is widened by a day on
    each side (a turn is dated by its session, and "last Saturday" is often told on Monday)."""
    found = find_time(query, now)
    if found is None:
        return None
    start = found.moment
    if found.precision == "day":
        return start - timedelta(days=1), start + timedelta(days=2)
    if found.precision == "month":
        months = 3 if SEASON.search(query[found.start:found.end]) else 1
        end = start.replace(day=1)
        for _ in range(months):
            end = (end + _MONTH).replace(day=1)
        return start.replace(day=1), end
    return start.replace(month=1, day=1), start.replace(year=start.year + 1, month=1, day=1)


def in_window(moment: datetime, window: tuple[datetime, datetime] | None) -> float:
    return 1.0 if window is not None and window[0] <= moment < window[1] else 0.0


# A question about what holds now ("Where do I live now?", "my current plan"): among the
# memories about it, the latest is likelier to be the answer than one it replaced.
_NOW = re.compile(r"\b(?:now|currently|current|these days|nowadays|at the moment|still|"
                  r"anymore|any more|latest|most recent(?:ly)?|recently|lately)\b",
                  re.IGNORECASE)


def asks_now(query: str) -> bool:
    return bool(_NOW.search(query))


def lateness(moments: Sequence[datetime]) -> list[float]:
    """Each moment's place between the earliest (0) and the latest (1) of them; all 0 when
    they are one moment."""
    if not moments:
        return []
    first, last = min(moments), max(moments)
    span = (last - first).total_seconds()
    return [(m - first).total_seconds() / span if span else 0.0 for m in moments]
