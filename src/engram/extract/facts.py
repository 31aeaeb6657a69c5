"""Rules for facts about the speaker: identity, places, work, diet, allergies, pets, family."""

from __future__ import annotations

import re

from engram.extract.claim import Claim, Clause
from engram.extract.dates import NUMBERS
from engram.extract.lexicon import (
    DEMONYMS,
    DIETS,
    JOBS,
    NOT_NAMES,
    PET_ADJECTIVES,
    ROLES,
    SPECIES,
    is_job,
)
from engram.extract.text import sentences, split_list, tidy, topic_key, trim
from engram.model import Kind, Truth

A, C = Truth.ABSOLUTE, Truth.CONTEXTUAL
NAME = r"([A-ZÀ-Ý][^\W\d_]+(?:-[A-ZÀ-Ý][^\W\d_]+)?)"
PROPER = (r"((?:[A-ZÀ-Ý][\w'&.-]*)(?:\s+(?:(?:of|de|del|da|la|upon|am|on)\s+)?"
          r"[A-ZÀ-Ý][\w'&.-]*)*)")
_THE = r"(?:(?i:the)\s+)?"
_SPECIES = "|".join(sorted(SPECIES, key=len, reverse=True))
_ROLES = "|".join(sorted(ROLES, key=len, reverse=True))
_DIETS = "|".join(sorted(DIETS, key=len, reverse=True))
_NUMWORD = r"(\d+|" + "|".join(k for k in NUMBERS if " " not in k and k not in ("a", "an")) + ")"


def _fact(attribute: str, value: str, content: str, truth: Truth = C, *,
          negated: bool = False, confidence: float = 0.9) -> Claim:
    return Claim(Kind.FACT, attribute, value, content, truth, confidence, negated)


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


# ---------------------------------------------------------------- identity

_NAME_IS = _re(r"^(?i:my name is|my name's|i'm called|i go by|people call me|you can call me|"
               r"call me|everyone calls me|they call me)\s+" + NAME)
_IM_NAME = _re(r"^(?i:i'm|this is)\s+" + NAME + "$")
_AGE = _re(r"^(?i:i'm|i turned)\s+(\d{1,3})(?:\s+(?i:years?\s+old|y/?o))?$")
_BIRTHDAY = _re(r"^(?i:my birthday is|my birthday's|i was born)(?:\s+(?i:on))?\s*$")
_STATUS = _re(r"^(?i:i'm|we're|i|we)\s+(?i:got\s+|happily\s+)?"
              r"(?i:(married|single|divorced|engaged|widowed|separated))$")
_MARRIED_TO = _re(r"^(?i:i'm (?:happily )?married to)\s+(?i:(?:a|an)\s+[\w\s-]+?\s+"
                  r"(?:named|called)\s+)?" + NAME)
_CHILDREN = _re(r"^(?i:i have|i've got|we have|we've got)\s+(?i:" + _NUMWORD + r")\s+"
                r"(?i:kids|children|sons|daughters|boys|girls)\b")


def identity(c: Clause) -> list[Claim]:
    text = c.text
    if (m := _NAME_IS.match(text)) and m.group(1) not in NOT_NAMES:
        return [_fact("name", m.group(1), "{s}'s name is " + m.group(1), A, confidence=0.95)]
    if m := _IM_NAME.match(text):
        word = m.group(1)
        if word.lower() in DEMONYMS:
            return [_fact("nationality", word, "{s} is " + word, A)]
        if word not in NOT_NAMES:
            return [_fact("name", word, "{s}'s name is " + word, A, confidence=0.8)]
    if (m := _AGE.match(text)) and 0 < int(m.group(1)) < 120:
        return [_fact("age", m.group(1), "{s} is " + m.group(1) + " years old", A)]
    if (day := _named_day(c)) and _BIRTHDAY.match(text):
        return [_fact("birthday", day, "{s}'s birthday is " + day, A)]
    if (day := _named_day(c)) and (whose := _whose_birthday(c)):
        key, who = whose
        return [_fact("birthday:" + key.casefold(), day, f"{who}'s birthday is {day}", A)]
    if m := _STATUS.match(text):
        status = m.group(1).lower()
        return [_fact("relationship_status", status, "{s} is " + status)]
    if m := _MARRIED_TO.match(text):
        return [_fact("relation:spouse", m.group(1), "{s} is married to " + m.group(1), A)]
    if m := _CHILDREN.match(text):
        word = m.group(1).lower()
        n = word if word.isdigit() else str(NUMBERS[word])
        return [_fact("children", n, "{s} has " + n + " children")]
    return []


# "Her birthday is ...", "my dad's birthday is ...", "it's Tom's birthday tomorrow".
_OTHERS_BIRTHDAY = _re(r"^(?:(?i:it's)\s+)?(?:(?i:(his|her|their))|(?i:my|our)\s+(?:(?i:older|"
                       r"younger|little|big|baby|twin)\s+)?(?i:(" + _ROLES + r"))(?:\s+" + NAME
                       + r")?(?i:'s)|" + NAME + r"(?i:'s))\s+(?i:birthday)(?:(?i:'s|\s+is|"
                       r"\s+falls))?(?:\s+(?i:on))?$")


def _named_day(c: Clause) -> str | None:
    """The clause's date as "September 12", when it names one day ("next week" does not)."""
    when = c.when
    if when is None or when.precision != "day" or when.approximate:
        return None
    return f"{when.moment:%B} {when.moment.day}"


def _whose_birthday(c: Clause) -> tuple[str, str] | None:
    """(slot key, how the content names them) for a birthday said of someone else; "her" is
    the one person the turn named before it ("my sister Maya, ... Her birthday"), or no one."""
    m = _OTHERS_BIRTHDAY.match(c.text)
    if m is None:
        return None
    pronoun, role, name = m.group(1), m.group(2), m.group(3) or m.group(4)
    if pronoun:
        named = mentioned(c.earlier)
        if len(named) != 1 or named[0][1] is None:
            return None
        role, name = named[0]
    if name is not None and name in NOT_NAMES:
        return None
    if role and name:
        return name, f"{{s}}'s {role.lower()} {name}"
    return (name, name) if name else (role.lower(), "{s}'s " + role.lower())


# ---------------------------------------------------------------- places

_LIVE = _re(r"^(?i:i|we)(?i:'ve|'m| have| are|'re)?(?:\s+(?i:been))?\s+(?i:(live|living|reside|"
            r"residing|lived|based))(?:\s+(?i:with)\s+[^,]+?)?\s+(?i:in|out of)\s+" + _THE + PROPER)
_MOVED = _re(r"^(?i:i|we)(?i:'ve| have)?\s+(?i:moved|relocated)(?:\s+(?i:back))?"
             r"(?:\s+(?i:from)\s+.+?)?\s+(?i:to)\s+" + _THE + PROPER)
_HOME = _re(r"^(?i:my|our)\s+(?i:apartment|flat|house|home|place)\s+(?i:is)\s+(?i:in)\s+"
            + _THE + PROPER)
_MOVED_INTO = _re(r"^(?i:i|we)(?i:'ve| have)?\s+(?i:moved into|moved in to)\s+(?i:a|an|my|our)"
                  r"\s+(?:(?i:new)\s+)?(?i:apartment|flat|house|home|place)\s+(?i:in)\s+"
                  + _THE + PROPER)
_NOT_LIVE = _re(r"^(?i:i|we)\s+(?i:no longer live|don't live|used to live|moved out of|"
                r"moved away from|don't live|no longer reside)\s+(?:(?i:in)\s+)?" + _THE + PROPER)
_ORIGIN = _re(r"^(?i:i'm|i come|i came|we're|we come)\s+(?i:originally\s+)?(?i:from)\s+"
              + _THE + PROPER)
_BORN = _re(r"^(?i:i was born(?: and raised)?|i grew up|i was raised)\s+(?i:in)\s+"
            r"(?:(?i:(?:a|an|the)\s+[\w\s-]+?\s+(?:in|near|outside(?: of)?))\s+)?" + _THE + PROPER)


# Where the turn is sent from: "Greetings from Berlin.", "I'm in Munich now." A new home named
# by its district alone ("our new flat in Prenzlauer Berg") is in that city.
_FROM = _re(r"^(?:(?i:greetings|hello|hi|hallo|writing|waving)\s+)?(?i:from)\s+" + PROPER + "$")
_HERE = _re(r"^(?i:i'm|we're)\s+(?:(?i:now|finally|back|here)\s+)*(?i:in)\s+" + PROPER + "$")


def _sent_from(earlier: str) -> str | None:
    places = {m.group(1) for s in sentences(earlier)
              if (m := _FROM.match(trim(tidy(s))) or _HERE.match(trim(tidy(s))))}
    return places.pop() if len(places) == 1 else None


def places(c: Clause) -> list[Claim]:
    text = c.text
    if m := _NOT_LIVE.match(text):
        return [_fact("residence", m.group(1), "{s} no longer lives in " + m.group(1),
                      negated=True)]
    if m := _LIVE.match(text):
        past = m.group(1).lower() == "lived" and not re.match(r"(?i)^(i|we)('ve| have)", text)
        if past:
            return [_fact("residence", m.group(2), "{s} used to live in " + m.group(2),
                          negated=True, confidence=0.7)]
        return [_fact("residence", m.group(2), "{s} lives in " + m.group(2))]
    if m := (_HOME.match(text) or _MOVED_INTO.match(text)):
        home = m.group(1)
        city = _sent_from(c.earlier)
        if city and city.casefold() not in home.casefold():
            home = f"{home}, {city}"
        return [_fact("residence", home, "{s} lives in " + home)]
    if m := _MOVED.match(text):
        return [_fact("residence", m.group(1), "{s} lives in " + m.group(1))]
    if m := (_ORIGIN.match(text) or _BORN.match(text)):
        return [_fact("origin", m.group(1), "{s} is from " + m.group(1), A)]
    return []


# ---------------------------------------------------------------- work and study

_ORG = r"\s+(?i:at|for|with)\s+" + _THE + r"(?:(?i:(?:a|an)\s+[\w\s-]+?\s+(?:called|named))\s+)?" \
    + PROPER
_WORK_AT = _re(r"^(?i:i|we)(?i:'ve been|'m| have been|'ve)?\s+(?i:(work|working|worked))" + _ORG)
_JOINED = _re(r"^(?i:i)\s+(?i:joined|started (?:a new job|a job|my new job|working|work)|"
              r"started|got a job|got hired|got an offer|'m employed|was hired)(?:\s+(?i:at|by))?"
              r"\s+" + _THE + PROPER)
_LEFT_JOB = _re(r"^(?i:i)\s+(?i:quit my job|left my job|quit|no longer work|don't work|"
                r"used to work|got laid off|was laid off|got fired|was fired|resigned|retired)"
                r"(?:\s+(?i:at|for|from))?\s+" + _THE + PROPER)
_JOB = _re(r"^(?i:(i'm|i've been|i used to be|i was|as|i'm not|i'm no longer|i work as|"
           r"i'm working as|i'm now|i became|i'm training to be|i'm studying to be|i'll be|"
           r"i will be))\s+"
           r"(?i:an?)\s+(.+?)(?:" + _ORG + r")?$")
_RETIRED = _re(r"^(?i:i'm|i am)\s+(?i:(retired|unemployed|self-employed|a stay-at-home \w+))$")
_STUDY = _re(r"^(?i:i|i'm)\s+(?i:study|studying|studied)\s+([a-z][\w\s-]*?)(?:\s+(?i:at)\s+"
             + _THE + PROPER + ")?$")
_ACCEPTED = _re(r"^(?i:i|i've)\s+(?i:accepted|took)\s+" + PROPER + r"(?i:'s)\s+(?i:job\s+)?"
                r"(?i:offer)$")
_NOW_AT = _re(r"^(?i:i'm)\s+(?i:now\s+)?(?i:at)\s+" + PROPER + "$")


def work(c: Clause) -> list[Claim]:
    text = c.text
    if m := _LEFT_JOB.match(text):
        return [_fact("employer", m.group(1), "{s} no longer works at " + m.group(1),
                      negated=True)]
    if m := _JOB.match(text):
        lead, job, org = m.group(1).lower(), trim(m.group(2)), m.group(3)
        job = re.split(r"\s*,\s*|\s+(?:who|and|in|with|since|from|at|for|starting)(?:\s+|$)",
                       job)[0]
        if is_job(job):
            negated = lead in ("i'm not", "i'm no longer", "i used to be", "i was")
            verb = "is not" if negated else "works as"
            article = "an" if job[:1].lower() in "aeiou" else "a"
            out = [_fact("job_title", job, f"{{s}} {verb} {article} {job}", negated=negated)]
            if org and job.lower() == "student":
                out.append(_fact("school", org, "{s} studies at " + org))
            elif org and not negated:
                out.append(_fact("employer", org, "{s} works at " + org))
            return out
    if m := _RETIRED.match(text):
        return [_fact("job_title", m.group(1).lower(), "{s} is " + m.group(1).lower())]
    if m := _WORK_AT.match(text):
        past = m.group(1).lower() == "worked" and not re.match(r"(?i)^i('ve| have)", text)
        verb = "used to work" if past else "works"
        return [_fact("employer", m.group(2), f"{{s}} {verb} at {m.group(2)}", negated=past)]
    if m := (_JOINED.match(text) or _ACCEPTED.match(text)):
        return [_fact("employer", m.group(1), "{s} works at " + m.group(1))]
    if (m := _STUDY.match(text)) and not m.group(1).casefold().startswith("for "):
        field = trim(m.group(1))
        out = [_fact("field_of_study", field, "{s} studies " + field)]
        if m.group(2):
            out.append(_fact("school", m.group(2), "{s} studies at " + m.group(2)))
        return out
    if (m := _NOW_AT.match(text)) and c.previous_attribute == "employer":
        return [_fact("employer", m.group(1), "{s} works at " + m.group(1))]
    return []


# ---------------------------------------------------------------- diet and allergies

_DIET = _re(r"^(?i:i'm|i've been|i went|i became|i'm now|i eat|i'm on an?|i follow an?)\s+"
            r"(?i:an?\s+)?(?i:(?:strict|full|mostly|fully|full-time)\s+)?(?i:(" + _DIETS + r"))\b")
_NOT_DIET = _re(r"^(?i:i'm not|i'm no longer|i stopped being|i used to be|i'm not an?)\s+"
                r"(?i:an?\s+)?(?i:(" + _DIETS + r"))\b")
_AVOID = _re(r"^(?i:i)\s+(?i:don't|can't|won't|no longer|never|stopped|quit|gave up|avoid|cut out|"
             r"haven't|have not|try not to|gave up on)\s+(?i:(?:eat|drink|eating|drinking|"
             r"eaten|drunk|had|touch|touched)\s+)?(.+)$")
_ALLERGIC = _re(r"^(?i:i'm|i've always been)\s+(?i:(not\s+)?)(?i:(?:very|severely|highly|"
                r"mildly|deathly|slightly|super)\s+)?(?i:allergic to)\s+(.+)$")
_ALLERGY = _re(r"^(?i:i have|i've got|i've)\s+(?i:an?\s+)?(?i:(?:severe|mild|bad|serious|"
               r"slight)\s+)?([\w\s-]+?)\s+(?i:allergy|allergies|intolerance)$")
_INTOLERANT = _re(r"^(?i:i'm)\s+([\w-]+)\s+(?i:intolerant)$")
_AFTERTHOUGHT = re.compile(r",?\s+(?i:so|but|because|which|since|though|although)\b.*$")
_NOT_FOODS = {"it", "that", "this", "them", "anything", "everything", "much", "enough", "any",
              "well", "out", "up", "my job", "smoking", "there"}


def diet(c: Clause) -> list[Claim]:
    text = c.text
    if m := _NOT_DIET.match(text):
        word = m.group(1).lower()
        return [_fact("diet", word, "{s} is no longer " + word, negated=True)]
    if m := _DIET.match(text):
        word = m.group(1).lower()
        return [_fact("diet", word, "{s} is " + word)]
    if m := _AVOID.match(text):
        verb_given = re.search(r"(?i)\b(eat|drink|eating|drinking|eaten|drunk|had|cut out)\b",
                               text)
        food = trim(m.group(1)).lower()
        food = re.sub(r"^(?:any|anymore)\s+", "", food)
        if verb_given and food and food not in _NOT_FOODS and len(food.split()) <= 3:
            return [_fact("diet:" + topic_key(food), food, "{s} does not eat or drink " + food,
                          negated=True)]
    return []


def allergy(c: Clause) -> list[Claim]:
    text = c.text
    items: list[str] = []
    negated = False
    if m := _ALLERGIC.match(text):
        negated = bool(m.group(1))
        items = split_list(trim(_AFTERTHOUGHT.sub("", m.group(2))))
    elif m := (_ALLERGY.match(text) or _INTOLERANT.match(text)):
        items = [m.group(1)]
    out: list[Claim] = []
    for item in items:
        thing = re.sub(r"^(?:the|some|most|all)\s+", "", item.lower())
        if thing.split()[0] in ("anything", "everything", "nothing", "it", "that"):
            continue
        verb = "is not allergic to " if negated else "is allergic to "
        out.append(_fact("allergy:" + topic_key(thing), thing, "{s} " + verb + thing, A,
                         negated=negated, confidence=0.95))
    return out


# ---------------------------------------------------------------- pets and people

_HAS_PETS = _re(r"^(?i:i|we)(?:\s+(?i:have|got|own|adopted|rescued|bought|have got|"
                r"also have)|(?i:'ve got|'ve))\b")
_PET = _re(r"(?i:\b(?:an?|one|two|three|four|\d+)\s+(?:(?:" + PET_ADJECTIVES + r")\s+)*"
           r"(" + _SPECIES + r")(?:s|es)?\b)(?:,?\s+(?i:named|called)\s+" + NAME + ")?")
_MY_PET = _re(r"(?i:\b(?:my|our)\s+(?:(?:" + PET_ADJECTIVES + r")\s+)*(" + _SPECIES + r"))"
              r"(?:(?i:'s name is)\s+|,?\s+(?:(?i:named|called)\s+)?)" + NAME + r"\b")


def pets(c: Clause) -> list[Claim]:
    found: list[tuple[str, str | None]] = []
    if _HAS_PETS.match(c.text):
        found += [(m.group(1), m.group(2)) for m in _PET.finditer(c.text)]
    found += [(m.group(1), m.group(2)) for m in _MY_PET.finditer(c.text)]
    out: list[Claim] = []
    for word, name in found:
        species = SPECIES[word.lower()]
        if name is not None and name in NOT_NAMES:
            name = None
        value = name or species
        content = f"{{s}} has a {species} named {name}" if name else f"{{s}} has a {species}"
        claim = _fact("pet:" + species, value, content)
        if claim not in out:
            out.append(claim)
    return out


_MY_ROLE = _re(r"(?i:\b(?:my|our)\s+(?:(?:older|younger|little|big|baby|twin|eldest|oldest|"
               r"youngest)\s+)?(" + _ROLES + r"))(?:(?i:'s name is)\s+|,?\s+(?:(?i:named|called)"
               r"\s+)?)" + NAME + r"\b")
_NAME_IS_MY = _re(NAME + r"(?i:\s+is\s+my\s+(" + _ROLES + r"))\b")
_THEIR_NAME = _re(r"^(?i:his|her|their)\s+(?i:name is)\s+" + NAME + r"\s+(?i:and)\s+"
                  r"(?i:he|she|they)(?i:'s| is| are|'re)\s+(?i:my)\s+(?i:(" + _ROLES + r"))\b")


_MENTION = _re(r"(?i:\b(?:my|our)\s+(?:(?:older|younger|little|big|baby|twin|eldest|oldest|"
               r"youngest)\s+)?(" + _ROLES + r"))\b(?:,?\s+(?:(?i:named|called)\s+)?" + NAME
               + r"\b)?")


def mentioned(text: str) -> list[tuple[str, str | None]]:
    """The people a text names by their relation to the speaker, in order, with their names
    where it gives them: "my sister Maya and my cousin" -> [("sister", "Maya"),
    ("cousin", None)]."""
    out: list[tuple[str, str | None]] = []
    for m in _MENTION.finditer(text):
        person = (m.group(1).lower(), m.group(2) if m.group(2) not in NOT_NAMES else None)
        if person not in out:
            out.append(person)
    return out


def relations(c: Clause) -> list[Claim]:
    pairs = [(m.group(1), m.group(2)) for m in _MY_ROLE.finditer(c.text)]
    pairs += [(m.group(2), m.group(1)) for m in _NAME_IS_MY.finditer(c.text)]
    if m := _THEIR_NAME.match(c.text):
        pairs.append((m.group(2), m.group(1)))
    out: list[Claim] = []
    for role, name in pairs:
        if name in NOT_NAMES or name.lower() in JOBS:
            continue
        role = role.lower()
        claim = _fact("relation:" + role, name, f"{{s}}'s {role} is named {name}", A)
        if claim not in out:
            out.append(claim)
    return out
