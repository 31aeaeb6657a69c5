"""Questions a memory answers, from templates (offline) or from an LLM provider: several
phrasings per fact, so an adapter learns the fact rather than one sentence of it.

Each shape of statement ("X's A is V", "X lives in V", "X works at V", ...) has its
templates; `expect` is the value a closed-book answer must contain to count as recalled."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from engram.extract.text import entities


@dataclass(frozen=True, slots=True)
class Question:
    question: str
    expect: str  # what a correct answer contains (normalised containment)


_SUBJECT = r"(?P<s>[A-Z][\w'-]*(?: [A-Z][\w'-]*)?|I)"
# (pattern, templates); {s} subject, {a} attribute, {do} "does"/"do", {v} verb
SHAPES: list[tuple[re.Pattern[str], tuple[str, ...]]] = [
    (re.compile(rf"^{_SUBJECT}'s (?P<a>[a-z][\w -]*?) (?:is|are|was) (?P<x>.+?)\.?$"),
     ("What is {pos} {a}?", "Tell me {pos} {a}.", "Do you know {pos} {a}?",
      "What {a} does {s} have?", "{pos} {a}: what is it?")),
    (re.compile(rf"^{_SUBJECT} (?:lives?|moved) (?:in|to) (?P<x>.+?)\.?$"),
     ("Where {do} {s} live?", "In which place {do} {s} live?", "Where is {pos} home?",
      "Which city {do} {s} live in?", "Where {has} {s} settled?")),
    (re.compile(rf"^{_SUBJECT} works? (?:as an?|as) (?P<x>.+?)\.?$"),
     ("What {do} {s} do for a living?", "What is {pos} job?", "What work {do} {s} do?",
      "What is {pos} profession?", "How {do} {s} earn a living?")),
    (re.compile(rf"^{_SUBJECT} works? (?:at|for) (?P<x>.+?)\.?$"),
     ("Where {do} {s} work?", "Which company {do} {s} work for?", "Who employs {s}?",
      "What is {pos} employer?", "At which firm {do} {s} work?")),
    (re.compile(rf"^{_SUBJECT} (?:is|am) allergic to (?P<x>.+?)\.?$"),
     ("What {be} {s} allergic to?", "Which allergy {do} {s} have?",
      "What must {s} avoid eating?", "What gives {obj} an allergic reaction?",
      "Name {pos} allergy.")),
    (re.compile(rf"^{_SUBJECT} (?P<v>likes?|loves?|prefers?|enjoys?) (?P<x>.+?)\.?$"),
     ("What {do} {s} {v}?", "Tell me something {s} {vs}.", "What is it that {s} {vs}?",
      "Name a thing {s} {vs}.", "What {do} {s} really {v}?")),
]


def template_questions(text: str) -> list[Question]:
    """Every templated question `text` answers; a statement of no known shape gets two
    open questions whose answer is the statement itself."""
    statement = text.strip()
    for pattern, templates in SHAPES:
        match = pattern.match(statement)
        if not match:
            continue
        parts = match.groupdict()
        me = parts["s"] in ("I", "User")  # extraction writes the speaker as "User"
        subject = "I" if me else parts["s"]
        fill = {"s": subject, "a": parts.get("a") or "", "do": "do" if me else "does",
                "pos": "my" if me else f"{subject}'s", "be": "am" if me else "is",
                "has": "have" if me else "has", "obj": "me" if me else subject}
        verb = parts.get("v")
        if verb:
            base = verb[:-1] if verb.endswith("s") else verb
            fill |= {"v": base, "vs": base if subject == "I" else verb}
        return [Question(t.format(**fill), parts["x"].strip()) for t in templates]
    names = entities(statement)
    if names:
        return [Question(f"What do you know about {names[0]}?", statement),
                Question(f"Tell me about {names[0]}.", statement),
                Question(f"What do you remember about {names[0]}?", statement)]
    topic = " ".join(statement.rstrip(".").split()[:4])
    return [Question(f"What do you remember about this: {topic}?", statement),
            Question(f"Tell me what you know about this: {topic}.", statement)]


def llm_questions(text: str, complete: Callable[[str], str], n: int = 5) -> list[Question]:
    """`n` questions written by a model (`complete` sends a prompt, returns its answer);
    the templated ones when the model gives nothing usable."""
    answer = complete(f"Write {n} different questions, one per line and nothing else, that "
                      f"this statement answers:\n{text.strip()}")
    lines = [re.sub(r"^\s*(?:\d+[.)]|[-*])\s*", "", line).strip() for line in answer.splitlines()]
    asked = [line for line in lines if line.endswith("?")][:n]
    if not asked:
        return template_questions(text)
    expect = template_questions(text)[0].expect
    return [Question(q, expect) for q in asked]
