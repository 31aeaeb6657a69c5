"""Rule for events: things the speaker did or will do ("I ran a half marathon last Saturday")."""

from __future__ import annotations

import re

from engram.extract.claim import Claim, Clause
from engram.extract.text import trim
from engram.model import Kind, Truth

IRREGULAR_PAST = frozenset("""
went ran saw got had made took bought broke began came drove ate fell flew found gave heard
left lost met paid put read rode sang sat sold sent spent spoke stood swam taught told threw
won wrote built caught chose drew drank hit hurt kept led quit shot slept split wore woke
became brought fought froze held lent lit rang rose shook stole struck tore cut set burnt
learnt dreamt did won bet beat bit blew dug fed fled flung forgave ground hung knelt lay
overslept rebuilt redid rewrote sank slid spun sprang stuck stung swept swung underwent
upgraded withdrew""".split())
# Past tenses that report a thought, a feeling or the conversation, not something that happened.
NOT_EVENTS = frozenset("""
thought felt liked loved hated knew wanted wondered meant was were used said asked guessed
hoped needed tried seemed enjoyed preferred understood noticed realised realized figured
mentioned forgot answered replied agreed supposed expected believed assumed imagined did
had got told heard saw found lost kept left put read set cut hit let""".split())
# These past tenses are events only with an object that makes them one ("had surgery").
_WEAK = frozenset("had got told heard saw found lost kept left put read set cut hit".split())

_SUBJECT = r"^(?i:i|we|my \w+ and i|me and my \w+)(?:\s+(?i:have)|(?i:'ve))?\s+"
_PAST = re.compile(_SUBJECT + r"(\w+)\b\s*(.*)$")
_PROGRESSIVE = re.compile(r"^(?i:i'm|we're)\s+(\w+ing)\b\s*(.*)$")
_WILL = re.compile(r"^(?i:i|we|my \w+ and i|me and my \w+)"
                   r"(?i:'ll|\s+will|'m going to|'re going to|"
                   r"\s+am going to|\s+are going to|'m gonna)\s+(.+)$")
_HAVE = re.compile(r"^(?i:i|we)(?:\s+(?i:have|have got|got)|(?i:'ve got))\s+"
                   r"((?i:an?|my|our)\s+.+)$")


def events(c: Clause) -> list[Claim]:
    text = c.text
    future = c.when is not None and c.when.future
    if future:
        for pattern in (_PROGRESSIVE, _WILL, _HAVE):
            if m := pattern.match(text):
                action = trim(" ".join(g for g in m.groups() if g))
                if pattern is _HAVE:
                    action = "have " + action
                verb = "is " if pattern is _PROGRESSIVE else ""
                return [_event(action, Truth.CONTEXTUAL, 0.8, verb)]
        # else a past tense with a future date: "I signed up for a race on October 11"
    m = _PAST.match(text)
    if m is None:
        return []
    verb, rest = m.group(1), trim(m.group(2))
    low = verb.lower()
    past = low in IRREGULAR_PAST or (low.endswith("ed") and len(low) > 4)
    if not past or not rest:
        return []
    if low in NOT_EVENTS and not (low in _WEAK and (c.when is not None or _weighty(rest))):
        return []
    confidence = 0.85 if c.when is not None else 0.65
    return [_event(f"{verb} {rest}", Truth.ABSOLUTE, confidence), *_timed_result(low, rest)]


# A race the speaker finished, with their time: "finished the Berlin half marathon in 1:54:32".
_RACE = r"(?:[\w-]+\s+){0,3}?(?i:marathon|half marathon|race|triathlon|ultra|5k|10k|half|run|" \
        r"parkrun|swim|ride|relay)"
_TIMED = re.compile(r"^((?i:the|a|an|my)\s+" + _RACE + r")\s+(?i:in)\s+"
                    r"(\d{1,2}:\d{2}(?::\d{2})?|\d+\s+(?i:minutes|mins|hours|seconds))\b")


def _timed_result(verb: str, rest: str) -> list[Claim]:
    if verb not in ("finished", "ran", "completed", "did", "swam", "rode", "cycled") or \
            (m := _TIMED.match(rest)) is None:
        return []
    race = m.group(1)  # "the Berlin half marathon", "my first 10k"
    key = re.sub(r"^(?i:the|a|an|my)\s+", "", race).casefold()
    return [Claim(Kind.FACT, "result:" + key, m.group(2),
                  f"{{s}}'s finishing time in {race} was {m.group(2)}", Truth.ABSOLUTE, 0.85)]


def _weighty(rest: str) -> bool:
    """'had surgery', 'got promoted', 'got married' are events even without a date."""
    return bool(re.match(r"(?i)(?:surgery|an? (?:baby|accident|operation|interview|stroke)|"
                         r"promoted|married|engaged|divorced|fired|hired|laid off|sick)\b", rest))


def _event(action: str, truth: Truth, confidence: float, verb: str = "") -> Claim:
    return Claim(Kind.EVENT, "event", action, "{s} " + verb + action, truth, confidence)
