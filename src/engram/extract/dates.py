"""Find a time phrase in a clause and resolve it against the turn's time. Pure datetime arithmetic.

Conventions (documented because relative dates are ambiguous):
"last <weekday>" is the latest such day strictly before today; "next <weekday>" the first one
strictly after; "last week" / "next week" is seven days back / ahead; "last month" / "last year"
keeps the day and is reported with month / year precision; a bare date or month ("on May 3rd",
"in March") is taken in the past unless the clause speaks of the future.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
_MONTH_ABBR = {m[:3]: i + 1 for i, m in enumerate(MONTHS)} | {"sept": 9}
NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
           "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
           "a couple of": 2, "a couple": 2, "couple of": 2, "a few": 3, "few": 3,
           "several": 3}

_NUM = r"(\d{1,3}|a couple of|a couple|couple of|a few|few|several|an?|one|two|three|four|five" \
       r"|six|seven|eight|nine|ten|eleven|twelve)"
_WD = "|".join(WEEKDAYS)
_MON = r"(january|february|march|april|may|june|july|august|september|october|november" \
       r"|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?"
_ORD = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"((?:19|20)\d{2})"
_PART = r"(?: (?:night|morning|afternoon|evening))?"  # "on Tuesday night": one phrase
_UPTO = r"(?: (?:to|until|till|-|\u2013) (?:" + _MON + r" )?\d{1,2}(?:st|nd|rd|th)?)?"
_SEASON = r"(spring|summer|fall|autumn|winter)"
SEASON_MONTH = {"spring": 3, "summer": 6, "fall": 9, "autumn": 9, "winter": 12}

# Each alternative is tried in order; the first match in the clause wins.
_PATTERNS: tuple[tuple[str, str], ...] = (
    ("day_before", r"the day before yesterday"),
    ("day_after", r"the day after tomorrow"),
    ("yesterday", r"yesterday" + _PART + "|last night"),
    ("today", r"today|tonight|this (?:morning|afternoon|evening)|earlier today"),
    ("tomorrow", r"tomorrow" + _PART),
    ("ago", _NUM + r" (day|week|month|year)s? ago"),
    ("in_n", r"in " + _NUM + r" (day|week)s?"),
    ("rel_weekend", r"(last|next|this) weekend"),
    ("rel_unit", r"(last|next|this) (week|month|year)"),
    ("weekday_date", r"(?:on )?(" + _WD + r"),? " + _MON + r" " + _ORD + r"(?:,? " + _YEAR
     + r")?"),
    ("rel_weekday", r"(last|next|this|on) (" + _WD + r")" + _PART),
    ("day_month", r"(?:on |from )?(?:the )?" + _ORD + r" (?:of )?" + _MON + r"(?:,? " + _YEAR
     + ")?" + _UPTO),
    ("month_day", r"(?:on |from )?" + _MON + r" " + _ORD + r"(?:,? " + _YEAR + r")?" + _UPTO),
    ("rel_month", r"(last|next|this) " + _MON),
    ("season", r"(?:(last|next|this) |in (?:the )?)" + _SEASON),
    ("month_year", r"(?:in |since |back in )?" + _MON + r" " + _YEAR),
    ("year", r"(?:in |since |back in )" + _YEAR),
    ("month", r"(?:in |since )" + _MON),
    ("weekday", r"(" + _WD + r")" + _PART),
)
_REGEX = re.compile("|".join(f"(?P<{name}>\\b(?:{pattern})\\b)" for name, pattern in _PATTERNS),
                    re.IGNORECASE)
_FUTURE = re.compile(r"\b(?:will|'ll|going to|gonna|plan(?:ning)? to|next|tomorrow|"
                     r"starting|starts|begins|beginning|upcoming|"
                     r"(?:i'm|i am|we're|we are) \w+ing)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TimeMention:
    """A resolved time phrase: where it sits in the clause and what day it means."""

    start: int
    end: int
    moment: datetime
    precision: str  # "day" | "month" | "year"
    future: bool
    # "next week", "last weekend": a day only by convention (seven days on), not one the speaker
    # named; a rule that records a date as a fact (a birthday) refuses it.
    approximate: bool = False


def find_time(text: str, at: datetime) -> TimeMention | None:
    """The first time phrase in `text`, resolved against `at` (midnight of the day meant)."""
    match = _REGEX.search(text)
    if match is None or match.lastgroup is None:
        return None
    future = bool(_FUTURE.search(text))
    kind = match.lastgroup
    groups = [g for g in match.groups() if g is not None][1:]  # drop the named outer group
    resolved = _resolve(kind, [g.lower() for g in groups], at, future)
    if resolved is None:
        return None
    moment, precision = resolved
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return TimeMention(match.start(), match.end(), day, precision, day.date() > at.date(),
                       kind in ("rel_weekend", "rel_unit"))


def _resolve(kind: str, g: list[str], at: datetime,
             future: bool) -> tuple[datetime, str] | None:
    day = timedelta(days=1)
    if kind in ("day_before", "yesterday", "today", "tomorrow", "day_after"):
        offset = {"day_before": -2, "yesterday": -1, "today": 0, "tomorrow": 1, "day_after": 2}
        return at + offset[kind] * day, "day"
    if kind in ("ago", "in_n"):
        n = _number(g[0])
        sign = -1 if kind == "ago" else 1
        return _shift(at, g[1], sign * n), "day" if g[1] in ("day", "week") else g[1]
    if kind == "rel_weekend":
        saturday = 5
        if g[0] == "last":
            back = (at.weekday() - saturday) % 7 or 7
            if at.weekday() == 6:  # on a Sunday, "last weekend" is the one before yesterday
                back += 7
            return at - back * day, "day"
        ahead = (saturday - at.weekday()) % 7
        if g[0] == "next" and ahead == 0:
            ahead = 7
        return at + ahead * day, "day"
    if kind == "rel_unit":
        sign = {"last": -1, "next": 1, "this": 0}[g[0]]
        precision = "day" if g[1] == "week" else g[1]
        return _shift(at, g[1], sign), precision
    if kind in ("rel_weekday", "weekday"):
        which = g[0] if kind == "rel_weekday" else "on"
        target = WEEKDAYS.index(g[-1])
        if which == "on":
            which = "next" if future else "last"
        if which == "this":
            return at + (target - at.weekday()) * day, "day"
        if which == "last":
            return at - ((at.weekday() - target) % 7 or 7) * day, "day"
        return at + ((target - at.weekday()) % 7 or 7) * day, "day"
    if kind == "weekday_date" and len(g) == 3:  # "Sunday, October 11": the year that fits
        return _named_day(at, WEEKDAYS.index(g[0]), _month(g[1]), int(g[2]), future)
    if kind in ("day_month", "month_day", "weekday_date"):
        if kind == "weekday_date":
            g = g[1:]
        num, mon = (g[0], g[1]) if kind == "day_month" else (g[1], g[0])
        year = int(g[2]) if len(g) > 2 else None
        moment = _calendar_day(at, _month(mon), int(num), year, future)
        return None if moment is None else (moment, "day")
    if kind == "rel_month":
        month = _month(g[1])
        if g[0] == "this":
            return _clamp(at.year, month, 1, at), "month"
        year = at.year + (1 if g[0] == "next" and month <= at.month else 0) \
            - (1 if g[0] == "last" and month >= at.month else 0)
        return _clamp(year, month, 1, at), "month"
    if kind == "season":
        return _relative_month(g[0] if len(g) > 1 else "this", SEASON_MONTH[g[-1]], at,
                               future), "month"
    if kind == "month_year":
        return _clamp(int(g[1]), _month(g[0]), 1, at), "month"
    if kind == "year":
        return _clamp(int(g[0]), 1, 1, at), "year"
    if kind == "month":
        month = _month(g[0])
        year = at.year
        if future and month < at.month:
            year += 1
        elif not future and month > at.month:
            year -= 1
        return _clamp(year, month, 1, at), "month"
    return None


def _named_day(at: datetime, weekday: int, month: int, day: int,
               future: bool) -> tuple[datetime, str] | None:
    """A date given with its weekday and no year: the nearest year (last, this or next) in
    which that date falls on that weekday; without one, as a bare date."""
    if not 1 <= day <= 31:
        return None
    fits = [d for year in (at.year - 1, at.year, at.year + 1)
            if (d := _clamp(year, month, day, at)).day == day and d.weekday() == weekday]
    if fits:
        return min(fits, key=lambda d: abs((d - at).days)), "day"
    moment = _calendar_day(at, month, day, None, future)
    return None if moment is None else (moment, "day")


def _relative_month(which: str, month: int, at: datetime, future: bool) -> datetime:
    """A season's first month: "last summer" is the latest before this month, "next summer"
    the first after it; "this" / "in the" summer is this year's, or the previous (next) one
    when it is still ahead (already past) and the clause does not (does) speak of the future."""
    year = at.year
    if which == "last":
        year -= 1 if month >= at.month else 0
    elif which == "next":
        year += 1 if month <= at.month else 0
    elif not future and month > at.month:
        year -= 1
    elif future and month < at.month:
        year += 1
    return _clamp(year, month, 1, at)


def _number(word: str) -> int:
    return int(word) if word.isdigit() else NUMBERS.get(word, 1)


def _month(word: str) -> int:
    word = word.rstrip(".")
    return MONTHS.index(word) + 1 if word in MONTHS else _MONTH_ABBR[word[:4] if word == "sept"
                                                                       else word[:3]]


def _clamp(year: int, month: int, day: int, like: datetime) -> datetime:
    last = calendar.monthrange(year, month)[1]
    return like.replace(year=year, month=month, day=min(day, last))


def _shift(at: datetime, unit: str, n: int) -> datetime:
    if unit == "day":
        return at + timedelta(days=n)
    if unit == "week":
        return at + timedelta(weeks=n)
    if unit == "month":
        months = at.year * 12 + at.month - 1 + n
        return _clamp(months // 12, months % 12 + 1, at.day, at)
    return _clamp(at.year + n, at.month, at.day, at)


def _calendar_day(at: datetime, month: int, day: int, year: int | None,
                  future: bool) -> datetime | None:
    if not 1 <= day <= 31:
        return None
    if year is not None:
        return _clamp(year, month, day, at)
    moment = _clamp(at.year, month, day, at)
    if future and moment.date() < at.date():
        moment = _clamp(at.year + 1, month, day, at)
    elif not future and moment.date() > at.date():
        moment = _clamp(at.year - 1, month, day, at)
    return moment
