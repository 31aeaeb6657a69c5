"""Checks a dataset must pass before anything trains on it: no duplicate or conflicting
questions, no empty answers, nothing another user's or a sensitive memory holds, and every
example within the length limit. The report lists each problem with the example it names."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engram.errors import InvalidInput

MAX_CHARS = 2000  # question + answer: longer examples are cut by the tokenizer, so refused


@dataclass(frozen=True, slots=True)
class Example:
    """One question/answer pair and where it came from."""

    memory_id: str
    question: str
    answer: str
    expect: str
    weight: float = 1.0


@dataclass
class CheckReport:
    examples: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "examples": self.examples, "problems": self.problems}

    def raise_if_failed(self) -> None:
        if self.problems:
            first = self.problems[0]
            raise InvalidInput("dataset", f"{len(self.problems)} problem(s), first: "
                               f"{first['check']} in example {first['example']} "
                               f"({first['detail']})",
                               "fix or reject those memories, then build the dataset again")


def _norm(text: str) -> str:
    return " ".join(text.lower().split()).rstrip("?.! ")


def check(examples: Sequence[Example], private: Iterable[str] = (),
          max_chars: int = MAX_CHARS) -> CheckReport:
    """Every problem of `examples`; `private` are texts that must appear in none."""
    report = CheckReport(examples=len(examples))
    secrets = [p for p in (_norm(t) for t in private) if len(p) >= 8]
    seen: dict[str, tuple[int, str]] = {}

    def problem(kind: str, index: int, detail: str) -> None:
        report.problems.append({"check": kind, "example": index, "detail": detail})

    for i, ex in enumerate(examples):
        if not ex.answer.strip() or not ex.expect.strip():
            problem("empty_answer", i, f"memory {ex.memory_id}")
        if not ex.question.strip():
            problem("empty_question", i, f"memory {ex.memory_id}")
        if len(ex.question) + len(ex.answer) > max_chars:
            problem("too_long", i, f"{len(ex.question) + len(ex.answer)} > {max_chars} chars")
        both = f"{_norm(ex.question)} {_norm(ex.answer)}"
        if any(secret in both for secret in secrets):
            problem("private_text", i, f"memory {ex.memory_id} repeats a sensitive memory")
        key = _norm(ex.question)
        if key in seen:
            first, answer = seen[key]
            kind = "duplicate" if _norm(answer) == _norm(ex.answer) else "conflict"
            problem(kind, i, f"same question as example {first}")
        else:
            seen[key] = (i, ex.answer)
    return report
