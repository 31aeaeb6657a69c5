"""Cross-session fact recall: does Engram answer with the *latest* value of a fact?

A seeded generator writes multi-session conversations for synthetic personas: facts are
stated, repeated, changed and changed back, between small talk and passing context. After
every fourth session each persona asks about each fact it has stated; a question is answered
when the current value appears in one of the top 5 recalled memories, and stale when a value
it no longer holds ranks above the current one. Engram (remember_turn: extraction,
consolidation, tiers with lazy maintenance) runs beside a baseline that stores every raw turn
(`add`, no extraction) in the same process, on the same conversations and questions.

    .venv/bin/python bench/facts.py [--personas 20] [--sessions 24] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from engram import ManualClock, Memory

# attribute → (values, how it is said, how it is asked)
FACTS: dict[str, tuple[list[str], list[str], str]] = {
    "residence": (["Lisbon", "Berlin", "Osaka", "Toronto", "Nairobi", "Lima", "Oslo", "Hanoi"],
                  ["I live in {v}.", "I moved to {v} last month."], "Which city do I live in?"),
    "employer": (["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay"],
                 ["I work at {v}.", "I started a new job at {v}."],
                 "Which company do I work for?"),
    "job_title": (["nurse", "teacher", "pilot", "chef", "architect", "plumber"],
                  ["I work as a {v}.", "I am a {v}."], "What is my job?"),
    "diet": (["vegetarian", "vegan", "pescatarian"], ["I am {v}.", "I went {v}."],
             "What diet do I follow?"),
    "favorite:food": (["sushi", "tacos", "ramen", "lasagna", "falafel"],
                      ["My favorite food is {v}.", "My favourite food is {v}."],
                      "What is my favorite food?"),
    "favorite:color": (["blue", "green", "orange", "purple", "yellow"],
                       ["My favorite color is {v}."], "What is my favorite color?"),
    "pet:dog": (["Rex", "Biscuit", "Luna", "Pepper", "Ziggy"], ["I have a dog named {v}."],
                "What is my dog's name?"),
    "age": ([str(n) for n in range(24, 60)], ["I'm {v} years old.", "I just turned {v}."],
            "How old am I?"),
}
SMALL_TALK = ["Hi there!", "Thanks, that helps.", "Can you suggest a good book?",
              "What's the weather usually like in spring?", "Tell me a joke.",
              "How do I boil an egg?", "Okay, let's continue tomorrow.", "That's funny."]
CONTEXT = ["I'm feeling tired today.", "I'm watching a movie tonight.",
           "I'm stuck in traffic right now.", "I'm cooking dinner at the moment."]
TOP_K = 5


@dataclass
class Persona:
    user: str
    current: dict[str, str] = field(default_factory=dict)
    held: dict[str, set[str]] = field(default_factory=dict)  # every value it ever had

    def state(self, attribute: str, value: str) -> None:
        self.current[attribute] = value
        self.held.setdefault(attribute, set()).add(value)


@dataclass(frozen=True)
class Turn:
    user: str
    session: str
    at: datetime
    text: str


@dataclass(frozen=True)
class Question:
    user: str
    at: datetime
    attribute: str
    text: str
    answer: str
    stale: frozenset[str]


def conversations(personas: int, sessions: int, seed: int) -> list[Turn | Question]:
    """The whole timeline, in order: turns and the questions asked after them."""
    rng = random.Random(seed)
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    timeline: list[tuple[datetime, int, Turn | Question]] = []
    for p in range(personas):
        person = Persona(f"persona-{p:02d}")
        for s in range(sessions):
            at = start + timedelta(days=3 * s, hours=rng.randint(0, 10), minutes=p)
            facts: list[tuple[str, str]] = []  # (attribute, value) in the order said
            if s == 0:
                facts = [(attribute, rng.choice(values))
                         for attribute, (values, _, _) in FACTS.items()]
            else:
                for attribute in rng.sample(list(FACTS), rng.randint(1, 2)):  # changes
                    values = FACTS[attribute][0]
                    old = sorted(person.held[attribute] - {person.current[attribute]})
                    value = rng.choice(old) if old and rng.random() < 0.25 else \
                        rng.choice([v for v in values if v != person.current[attribute]])
                    facts.append((attribute, value))
                changed = {a for a, _ in facts}
                for attribute in rng.sample(sorted(set(FACTS) - changed), rng.randint(0, 2)):
                    facts.append((attribute, person.current[attribute]))  # repetitions
            said = [rng.choice(FACTS[a][1]).format(v=v) for a, v in facts]
            for a, v in facts:
                person.state(a, v)
            if s:
                said += rng.sample(SMALL_TALK, rng.randint(1, 3))
                said += rng.sample(CONTEXT, rng.randint(0, 1))
                rng.shuffle(said)  # each fact is said once per session: order is free
            for n, text in enumerate(said):
                turn = Turn(person.user, f"{person.user}/s{s:02d}", at + timedelta(minutes=n),
                            text)
                timeline.append((turn.at, len(timeline), turn))
            if (s + 1) % 4 == 0:
                asked = at + timedelta(minutes=len(said) + 1)
                for attribute, value in person.current.items():
                    timeline.append((asked, len(timeline), Question(
                        person.user, asked, attribute, FACTS[attribute][2], value,
                        frozenset(person.held[attribute] - {value}))))
    timeline.sort(key=lambda item: (item[0], item[1]))
    return [item for _, _, item in timeline]


def mentions(text: str, value: str) -> bool:
    return re.search(rf"\b{re.escape(value)}\b", text, re.IGNORECASE) is not None


@dataclass
class Score:
    answered: int = 0
    stale: int = 0
    asked: int = 0
    latencies: list[float] = field(default_factory=list)

    def grade(self, question: Question, texts: list[str]) -> None:
        self.asked += 1
        first = next((i for i, t in enumerate(texts) if mentions(t, question.answer)), None)
        old = next((i for i, t in enumerate(texts)
                    if any(mentions(t, v) for v in question.stale)), None)
        self.answered += first is not None
        self.stale += old is not None and (first is None or old < first)


def run(mem: Memory, clock: ManualClock, timeline: list[Turn | Question],
        engram: bool) -> Score:
    score = Score()
    for item in timeline:
        clock.set(item.at)
        if isinstance(item, Turn):
            if engram:
                mem.remember_turn(item.text, user_id=item.user, session_id=item.session)
            else:
                mem.add(item.text, user_id=item.user, session_id=item.session, at=item.at,
                        dedupe=False)
            continue
        started = time.perf_counter()
        hits = mem.search(item.text, user_id=item.user, limit=TOP_K)
        score.latencies.append((time.perf_counter() - started) * 1000)
        score.grade(item, [h.memory.content for h in hits])
    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--embedder", default="auto", help="'none' for keyword search only")
    args = parser.parse_args()
    timeline = conversations(args.personas, args.sessions, args.seed)
    turns = [t for t in timeline if isinstance(t, Turn)]
    questions = [q for q in timeline if isinstance(q, Question)]
    embedder = None if args.embedder == "none" else args.embedder
    print(f"{args.personas} personas x {args.sessions} sessions: {len(turns)} turns, "
          f"{len(questions)} questions (seed {args.seed}, embedder {args.embedder})\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, engram in (("raw turns (add)", False), ("Engram (remember_turn)", True)):
            clock = ManualClock(timeline[0].at)
            with Memory(Path(tmp) / name[:3], clock=clock, embedder=embedder) as mem:
                started = time.perf_counter()
                score = run(mem, clock, timeline, engram)
                took = time.perf_counter() - started
                report = mem.maintain() if engram else None
                everything = mem.list(limit=None, status="all")
                live = [m for m in everything if m.status.value == "active"]
                tiers = Counter(m.tier.value for m in live)
                rows.append((name, score, took, len(everything), len(live), tiers, report))
    print("| memory | fact recall@5 | stale answers | search p50 / p95 | memories (active) "
          "| per raw turn | tiers of active memories | run |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for name, score, took, stored, active, tiers, _ in rows:
        p95 = statistics.quantiles(score.latencies, n=20)[18]
        tier_text = ", ".join(f"{k} {v}" for k, v in sorted(tiers.items()))
        print(f"| {name} | {score.answered / score.asked:.1%} | {score.stale / score.asked:.1%} "
              f"| {statistics.median(score.latencies):.1f} / {p95:.1f} ms | {stored} ({active}) "
              f"| {active / len(turns):.2f} | {tier_text} | {took:.0f} s |")


if __name__ == "__main__":
    main()
