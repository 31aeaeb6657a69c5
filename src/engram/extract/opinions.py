"""Rules for what the speaker likes, can do, is learning, believes, and is in the middle of."""

from __future__ import annotations

import re

from engram.extract.claim import Claim, Clause
from engram.extract.lexicon import LANGUAGES
from engram.extract.text import split_list, topic_key, trim
from engram.model import Kind, Truth

# ---------------------------------------------------------------- preferences

_FAVORITE = re.compile(r"^(?i:my (?:all-time |absolute )?favou?rite)\s+([\w\s-]+?)\s+"
                       r"(?i:is|are|has to be|would be|was)\s+(.+)$")
_IS_FAVORITE = re.compile(r"^(.+?)\s+(?i:is|are)\s+(?i:my (?:all-time |absolute )?favou?rite)"
                          r"\s+([\w\s-]+)$")
_DISLIKE = re.compile(
    r"^(?i:i)\s+(?i:don't (?:like|love|enjoy|care for)|didn't (?:like|enjoy)|never liked|"
    r"no longer (?:like|love|enjoy)|hate|dislike|detest|loathe|despise|can't stand|"
    r"can't bear|used to (?:love|like|enjoy|adore))\s+(.+)$"
    r"|^(?i:i'm not (?:a )?(?:big |huge |massive )?fan of|i'm not into|i'm not fond of|"
    r"i'm tired of|i'm sick of|i'm no longer into)\s+(.+)$")
_LIKE = re.compile(
    r"^(?i:i|i've always|i've)\s+(?i:love|loved|like|liked|enjoy|adore|prefer|fancy|dig|"
    r"don't mind|'d rather|would rather|always liked|always loved)\s+(.+)$"
    r"|^(?i:i'd rather|i'd prefer|i'm (?:a )?(?:big |huge |massive |great )?fan of|i'm into|"
    r"i'm obsessed with|i'm crazy about|i'm passionate about|i'm fond of|i'm addicted to|"
    r"i'm a sucker for)\s+(.+)$")
_NOT_TOPICS = re.compile(r"^(?:it|that|this|them|him|her|you|those|these|one|so|what|how|"
                         r"when|being here|your|yours)\b", re.IGNORECASE)
_CUT_COMPARISON = re.compile(r"(?<!\bgoing)\s+(?:over|than|rather than|instead of|more than|"
                             r"to|but|because|since|so|when|whenever|if|and i)\s+.*$",
                             re.IGNORECASE)


def preferences(c: Clause) -> list[Claim]:
    text = c.text
    if m := (_FAVORITE.match(text) or _IS_FAVORITE.match(text)):
        category, value = (m.group(1), m.group(2)) if m.re is _FAVORITE else (m.group(2),
                                                                               m.group(1))
        category, value = topic_key(trim(category)), trim(value)
        if value and not _NOT_TOPICS.match(value):
            return [Claim(Kind.PREFERENCE, "favorite:" + category, value,
                          f"{{s}}'s favorite {category} is {value}", Truth.OPINION, 0.9)]
    negated = True
    m = _DISLIKE.match(text)
    if m is None:
        negated, m = False, _LIKE.match(text)
    if m is None:
        return []
    topic = trim(m.group(1) or m.group(2))
    topic = re.sub(r"^(?:to|doing|having)\s+", "", topic, flags=re.IGNORECASE)
    topic = trim(_CUT_COMPARISON.sub("", topic))
    if not topic or _NOT_TOPICS.match(topic) or len(topic.split()) > 6:
        return []
    verb = "dislikes" if negated else "likes"
    return [Claim(Kind.PREFERENCE, "preference:" + topic_key(topic), topic,
                  f"{{s}} {verb} {topic}", Truth.OPINION, 0.85, negated)]


# A setting asked for: "can I switch this app to dark mode?", "how do I get dark mode
# everywhere?". Alone it is a request; beside a dislike in the same turn ("I can't stand light
# themes") it states a preference between the two (`instead`).
_SWITCH = re.compile(r"^(?i:how (?:do|can|could) i|can i|could i|is there a way to)\s+"
                     r"(?i:switch|change|set)\s+(?:.+?\s+)?(?i:to)\s+"
                     r"(.+?)(?:\s+(?i:everywhere|by default))?$")
_EVERYWHERE = re.compile(r"^(?i:how (?:do|can|could) i|can i|could i|is there a way to)\s+"
                         r"(?i:get|have|use|turn on|enable)\s+(.+?)\s+(?i:everywhere)$")


def requested(question: str) -> str | None:
    """The setting a question asks to switch to or to have everywhere, if it asks for one."""
    m = _SWITCH.match(question) or _EVERYWHERE.match(question)
    if m is None:
        return None
    setting = trim(m.group(1))
    if not setting or _NOT_TOPICS.match(setting) or len(setting.split()) > 4:
        return None
    return setting


def instead(wanted: str, disliked: str) -> Claim:
    return Claim(Kind.PREFERENCE, "preference:" + topic_key(wanted), wanted,
                 f"{{s}} prefers {wanted} to {disliked}", Truth.OPINION, 0.75)


# ---------------------------------------------------------------- skills and learning

_NOT_SKILLS = frozenset("""
stand bear wait believe remember find see tell imagine understand hear help try go come get do
think say guess send give ask sleep decide figure afford eat drink make take be have keep
recommend suggest use call explain thank agree""".split())
_SPEAK = re.compile(r"^(?i:i|i can)\s+(?i:speak)\s+(?i:(?:fluent|some|a bit of|a little|basic|"
                    r"conversational|native|good|decent|broken)\s+)?(.+)$")
_CANT = re.compile(r"^(?i:i)(?:\s+|(?='))(?i:can't|am unable to|'m unable to|don't know how to|"
                   r"never learned to|never learned how to|'ve never learned to|"
                   r"have never learned to|'ve never learned how to)\s+(.+)$")
_CAN = re.compile(r"^(?i:i)(?:\s+|(?='))(?i:can|know how to|'m able to|learned to|learned how to|"
                  r"'ve learned to|'ve learned how to)\s+(.+)$")
_GOOD_AT = re.compile(r"^(?i:i'm)\s+(?i:(?:pretty|quite|very|fairly|so|rather|super|an)\s+)?"
                      r"(?i:(good|great|skilled|decent|excellent|proficient|experienced|expert|"
                      r"bad|terrible|awful|hopeless|useless|not good|no good|not great))"
                      r"\s+(?i:at|in|with)\s+(.+)$")
_KNOW = re.compile(r"^(?i:i know)\s+([A-Z][\w+#.-]*(?:(?:,\s*|\s+and\s+)[A-Z][\w+#.-]*)*)$")
_PLAY = re.compile(r"^(?i:i play)\s+(?i:the\s+)?(?i:(piano|guitar|violin|cello|drums|bass|flute|"
                   r"saxophone|trumpet|ukulele|harp|clarinet|chess|tennis|football|soccer|"
                   r"basketball|golf|volleyball|badminton|squash|hockey|baseball))\b")
_LEARNING = re.compile(r"^(?i:i'm|i've been|i started|i'm starting|i began|i've started)\s+"
                       r"(?i:learning|practi[cs]ing)\s+(?:(?i:how\s+)?(?i:to)\s+)?(.+)$")
_CLASSES = re.compile(r"^(?i:i'm taking|i take|i've been taking|i signed up for|i enrolled in|"
                      r"i'm doing)\s+(?:(?i:some|a few)\s+)?(.+?)\s+(?i:classes|lessons|"
                      r"courses?)\b")


# A language course's CEFR level: "I've signed up for a B1 evening class", "the school put me
# into the B1 class", "my French is at B2 level". The language is the one the clause names, or
# else the only one the turn has named before it; with none or two, the level stays in the turn.
_LEVEL = r"\b([ABC][12])\b"
_COURSE = r"(?:\s+[\w-]+){0,3}?\s+(?i:class|classes|course|courses|group|lessons|level)\b"
_ENROLLED = re.compile(
    r"^(?i:i|i've|i'm|we|we've|we're)\s+(?i:(?:just|now|also)\s+)?(?i:signed up for|"
    r"enrolled in|registered for|joined|started|booked|taking|take|been taking|in|doing|"
    r"attending|attend|moved up to|got into|got placed in|got placed into|was placed in|"
    r"was put into|now in|starting)\s+(?i:(?:a|an|the|my|our)\s+)?(?:[\w-]+\s+){0,2}?"
    + _LEVEL + _COURSE)
_PLACED = re.compile(r"\b(?i:put|placed|moved)\s+(?i:me|us)\s+(?:\w+\s+)?(?i:in|into)\s+"
                     r"(?i:a|an|the)\s+(?:[\w-]+\s+){0,2}?" + _LEVEL + _COURSE)
_MY_LEVEL = re.compile(r"^(?i:my)\s+([A-Z]\w+)\s+(?i:is)\s+(?:(?i:now|at|level)\s+)*"
                       + _LEVEL + r"(?:\s+(?i:level))?$")
_NAMED_LANGUAGE = re.compile(r"\b(" + "|".join(sorted(LANGUAGES)) + r")\b")


def course_level(c: Clause) -> list[Claim]:
    if (m := _MY_LEVEL.match(c.text)) and m.group(1) in LANGUAGES:
        language, level = m.group(1), m.group(2)
        return [_level(language, level, f"{{s}}'s {language} is at level {level}")]
    m = _ENROLLED.match(c.text) or _PLACED.search(c.text)
    if m is None:
        return []
    named = set(_NAMED_LANGUAGE.findall(c.text)) or set(_NAMED_LANGUAGE.findall(c.earlier))
    if len(named) != 1:
        return []
    language, level = named.pop(), m.group(1)
    return [_level(language, level, f"{{s}}'s {language} course is at level {level}")]


def _level(language: str, level: str, content: str) -> Claim:
    return Claim(Kind.SKILL, "level:" + language.casefold(), level, content, Truth.CONTEXTUAL,
                 0.85)


def skills(c: Clause) -> list[Claim]:
    text = c.text
    if found := course_level(c):
        return found
    if m := _SPEAK.match(text):
        languages = split_list(trim(m.group(1)))
        if all(lang[:1].isupper() for lang in languages):
            return [_skill("speak " + lang) for lang in languages]
        return [_skill("speak " + trim(m.group(1)))]
    if m := (_CANT.match(text) or _CAN.match(text)):
        action = trim(m.group(1))
        negated = m.re is _CANT
        first = action.split()[0].lower() if action else ""
        if action and first not in _NOT_SKILLS and len(action.split()) <= 6:
            return [_skill(action, negated=negated)]
        return []
    if m := _GOOD_AT.match(text):
        negated = m.group(1).lower() in ("bad", "terrible", "awful", "hopeless", "useless",
                                         "not good", "no good", "not great")
        topic = trim(m.group(2))
        verb = "is not good at " if negated else "is good at "
        return [Claim(Kind.SKILL, "skill:" + topic_key(topic), topic, "{s} " + verb + topic,
                      Truth.CONTEXTUAL, 0.8, negated)]
    if m := _KNOW.match(trim(text)):
        return [_skill(item, verb="knows") for item in split_list(m.group(1))]
    if m := _PLAY.match(text):
        return [_skill("play " + m.group(1).lower())]
    if m := (_LEARNING.match(text) or _CLASSES.match(text)):
        topic = trim(m.group(1))
        if topic and not topic.lower().startswith(("a lot", "that", "about")) \
                and not re.search(_LEVEL, topic):  # "a B2 course" without its language
            return [Claim(Kind.SKILL, "learning:" + topic_key(topic), topic,
                          "{s} is learning " + topic, Truth.CONTEXTUAL, 0.85)]
    return []


def _skill(action: str, *, negated: bool = False, verb: str = "can") -> Claim:
    says = ("cannot" if verb == "can" else "does not know") if negated else verb
    return Claim(Kind.SKILL, "skill:" + topic_key(action), action, f"{{s}} {says} {action}",
                 Truth.CONTEXTUAL, 0.85, negated)


# ---------------------------------------------------------------- beliefs

_BELIEF = re.compile(
    r"^(?i:(i don't think|i don't believe|i doubt|i think|i believe|i reckon|i suspect|"
    r"i feel|i'm convinced|i'm sure|i'm certain|i'm of the opinion|in my opinion|in my view|"
    r"imo|imho|i'm pretty sure|i firmly believe|i strongly believe))\s*,?\s*(.+)$")
_NOT_PROPOSITIONS = re.compile(r"^(?:so|not|it|it's|that|that's|this|you|you're|he|she|they|"
                               r"there|we|maybe|about|of|like|sorry|ok|okay)\b", re.IGNORECASE)
HEDGED = re.compile(r"^(?i:i)\b")


def beliefs(c: Clause) -> list[Claim] | str:
    """Belief claims, or the inner clause (a string) when the speaker hedges about themself."""
    m = _BELIEF.match(c.text)
    if m is None:
        return []
    lead, rest = m.group(1).lower(), m.group(2).strip()
    if lead.startswith("i feel") and not rest.lower().startswith("that "):
        return []
    rest = re.sub(r"^(?i:that)\s+", "", rest)
    if HEDGED.match(rest):
        return rest
    if rest.lower().startswith("in ") and lead in ("i believe", "i don't believe"):
        rest = rest[3:]
    elif len(rest.split()) < 3 or _NOT_PROPOSITIONS.match(rest):
        return []
    negated = lead in ("i don't think", "i don't believe", "i doubt")
    verb = "does not believe" if negated else "believes"
    return [Claim(Kind.BELIEF, "belief", rest, f"{{s}} {verb} {rest}", Truth.OPINION, 0.75,
                  negated)]


# ---------------------------------------------------------------- current situation

_CONTEXT = re.compile(
    r"^(?i:i'm|we're)\s+(?i:(?:still|now|busy|also)\s+)?(?i:((?:writing|working on|preparing for|"
    r"training for|recovering from|studying for|planning|building|renovating|saving (?:up )?for|"
    r"dealing with|going through|applying (?:for|to)|fighting|caring for|taking care of|"
    r"looking after|expecting|organi[sz]ing|job hunting|house hunting|"
    r"looking for (?:a )?(?:new )?(?:job|apartment|flat|house|place to live)|"
    r"on (?:vacation|holiday|leave|parental leave|maternity leave|sick leave|a trip|"
    r"a business trip|a diet|medication|antibiotics|a break)|feeling|pregnant|sick|ill|"
    r"unemployed|between jobs|in (?:the )?hospital|in therapy|in rehab|in quarantine|"
    r"stressed|burned out|burnt out|grieving)\b.*))$")
_NOT_CONTEXT = re.compile(r"^feeling (?:fine|good|great|ok|okay|better|well|alright)$",
                          re.IGNORECASE)


def context(c: Clause) -> list[Claim]:
    m = _CONTEXT.match(c.text)
    if m is None:
        return []
    situation = trim(m.group(1))
    if _NOT_CONTEXT.match(situation):
        return []
    return [Claim(Kind.CONTEXT, "context", situation, "{s} is currently " + situation,
                  Truth.CONTEXTUAL, 0.75)]
