"""Cutting a chat turn into sentences and first-person clauses, and tidying phrases."""

from __future__ import annotations

import re

from engram.extract.dates import MONTHS, WEEKDAYS

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE_BREAK = re.compile(
    r"\s*(?:[,;:\u2014\u2013]|\s-\s)\s*(?:(?:and|but|so|because|though|although|now|while|then)\s+)*"
    r"(?=(?:i|i'm|i've|i'd|we|we're|we've|my|our)\b)"
    r"|\s+(?:(?:and|but|so|because|though|although|while|then|now)\s+)+"
    r"(?=(?:i|i'm|i've|i'd|we|we're|we've)\b)",
    re.IGNORECASE)
_QUESTION_START = re.compile(
    r"^(?:what|where|when|why|how|who|which|do|does|did|can|could|would|should|is|are|will|"
    r"shall|have you|has)\b", re.IGNORECASE)
_HYPOTHETICAL = re.compile(
    r"^(?:if|imagine|let's say|lets say|suppose|supposing|what if|pretend|assuming|say)\b",
    re.IGNORECASE)
_LEADING = re.compile(
    r"^(?:(?:hi|hey|hello)(?: there)?|honestly|personally|frankly|by the way|btw|fyi|so|well|"
    r"oh|ok|okay|also|and|but|yeah|yes|no|anyway|actually|just so you know|for context|"
    r"(?:please )?(?:remember|note)(?: that)?|as i said|as i mentioned|right now|now|"
    r"these days|nowadays|currently|at the moment)\b[,!.]?\s*",
    re.IGNORECASE)
_FILLERS = re.compile(
    r"\b(?:really|honestly|actually|just|finally|totally|absolutely|truly|seriously|genuinely|"
    r"currently|literally|basically|kinda|definitely)\s+", re.IGNORECASE)
_TRAILING = re.compile(
    r"(?:\s+(?:by the way|btw|though|too|as well|also|anymore|any more|any longer|now|"
    r"these days|nowadays|lately|recently|at the moment|right now|currently|originally|"
    r"for (?:now|work|a (?:while|bit|living))|for (?:most of )?(?:my|our) (?:life|lives)|"
    r"for (?:about |almost |over |nearly )?\w+ (?:days?|weeks?|months?|years?)|"
    r"in (?:the )?(?:last |past )?\w+ (?:days?|weeks?|months?|years?)|"
    r"since [\w\s]+|(?:until|till)(?: [\w\s]+)?|starting|beginning|from|"
    r"to save (?:my|our) li(?:fe|ves)|on weekends|at weekends|every day|in general|a lot|"
    r"so much|very much|"
    r"pretty well|very well|well|please|haha|lol|as far as i know|i think|i guess))+\s*$",
    re.IGNORECASE)
_END_PUNCT = re.compile(r"[\s.!?,;:…]+$")
# "I'm X and allergic to Y": a second predicate whose "I'm" the speaker left out.
_ELIDED_IM = re.compile(r"\s+and\s+(?:also\s+)?(?=(?:allergic|intolerant|vegetarian|vegan|"
                        r"pescatarian|married|engaged|single|divorced|retired)\b)",
                        re.IGNORECASE)


def sentences(text: str) -> list[str]:
    """Sentences of a turn, stripped; empty pieces dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def is_question(sentence: str) -> bool:
    return sentence.rstrip().endswith("?") or bool(_QUESTION_START.match(sentence))


def is_hypothetical(text: str) -> bool:
    return bool(_HYPOTHETICAL.match(text))


def clauses(sentence: str) -> list[str]:
    """First-person clauses of a sentence ("I'm Sara, I'm 29 and I live in Milan" -> three;
    "I'm vegetarian and allergic to nuts" -> "I'm vegetarian", "I'm allergic to nuts")."""
    body = _END_PUNCT.sub("", sentence)
    out = []
    for part in (c.strip() for c in _CLAUSE_BREAK.split(body) if c and c.strip()):
        if part[:4].casefold() == "i'm ":
            first, *rest = _ELIDED_IM.split(part)
            out += [first, *("I'm " + r for r in rest)]
        else:
            out.append(part)
    return out


def tidy(clause: str) -> str:
    """The clause without greetings, discourse markers, filler adverbs or end punctuation."""
    text = clause.replace("\u2019", "'").replace("\u2018", "'")
    text = re.sub(r"\bI am\b", "I'm", text)
    text = re.sub(r"\bdo not\b", "don't", text, flags=re.IGNORECASE)
    text = re.sub(r"\bcannot\b|\bcan not\b", "can't", text, flags=re.IGNORECASE)
    text = re.sub(r"\bI have been\b", "I've been", text)
    text = re.sub(r"\bwe are\b", "we're", text, flags=re.IGNORECASE)
    previous = None
    while previous != text:
        previous = text
        text = _LEADING.sub("", text).strip()
    text = _FILLERS.sub("", text)
    return _END_PUNCT.sub("", text).strip()


def trim(phrase: str) -> str:
    """A captured value without trailing qualifiers ("Lisbon for three years now" -> "Lisbon")."""
    phrase = _END_PUNCT.sub("", phrase.strip())
    previous = None
    while previous != phrase:
        previous = phrase
        phrase = _TRAILING.sub("", phrase)
        phrase = _END_PUNCT.sub("", phrase)
    return phrase.strip()


def split_list(phrase: str) -> list[str]:
    """'cats, dust and pollen' -> ['cats', 'dust', 'pollen']."""
    parts = re.split(r"\s*,\s*(?:and\s+|or\s+)?|\s+and\s+|\s+or\s+|\s*&\s*", phrase)
    return [p.strip() for p in parts if p.strip()]


_ARTICLES = re.compile(r"^(?:the|a|an|some)\s+", re.IGNORECASE)


def topic_key(phrase: str) -> str:
    """Slot key of a topic: casefolded, leading article dropped, single spaces."""
    return " ".join(_ARTICLES.sub("", phrase.strip()).casefold().split())


_PRONOUNS = {"my": "their", "me": "them", "i": "they", "i'm": "they're", "myself": "themselves",
             "mine": "theirs", "our": "their", "we": "they", "us": "them"}


def third_person(phrase: str) -> str:
    """'went to my cousin's wedding' -> 'went to their cousin's wedding' (for content text)."""
    return re.sub(r"\b(?:my|me|i'm|i|myself|mine|our|we|us)\b",
                  lambda m: _PRONOUNS[m.group(0).lower()], phrase, flags=re.IGNORECASE)


_ENTITY = re.compile(r"\b[A-ZÀ-Ý][\w'&.-]*(?:\s+(?:of\s+|de\s+)?[A-ZÀ-Ý][\w'&.-]*)*")
_NOT_ENTITIES = {"I", "I'm", "I've", "I'd", "I'll", "My", "We", "Our", "The", "A", "An",
                 "Hi", "Hey", "Yesterday", "Today", "Tomorrow", "Last", "Next", "This", "On",
                 "In", "Honestly", "Personally", "Please", "Right", "As", "Two", "Three", "And"}


def entities(text: str) -> list[str]:
    """Capitalised names in a clause (not the sentence-initial function word, not 'I')."""
    found: list[str] = []
    for match in _ENTITY.finditer(text):
        words = match.group(0).rstrip(".").split()
        while words and words[0] in _NOT_ENTITIES:
            words = words[1:]
        name = " ".join(words)
        if name and name not in found and not _is_weekday_or_month(name):
            found.append(name)
    return found


def _is_weekday_or_month(name: str) -> bool:
    return name.lower() in WEEKDAYS or name.lower() in MONTHS
