"""Routing between an edge model (a small board) and a laptop model: each request goes to one
side by a complexity score, and to the other when the chosen one is unreachable or times out.

The score (0 to 1) adds three parts, each capped: the message's length (up to 0.4 at
LONG_WORDS words), its kind of question (0.35 for asking why, how, to explain, compare, plan,
write or code; 0 for a plain who/what/when/where), and how much memory it needs (up to 0.25 at
MANY_MEMORIES recalled memories). At or above the threshold (default 0.5) it goes to the laptop:
a 35-word "why … explain" question does, a plain question with ten memories does not.

    route:edge=ollama:phi3@http://board:11434,laptop=openai:qwen2.5@http://127.0.0.1:8000/v1
    (optional: threshold=0.6, timeout=20 seconds per side)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from engram.errors import InvalidInput
from engram.llm.base import Message, Provider, ProviderError

SIDES = ("edge", "laptop")
DEFAULT_THRESHOLD = 0.5
LONG_WORDS = 60
MANY_MEMORIES = 10
HARD = re.compile(r"\b(why|how|explain|compare|analy[sz]e|plan|write|draft|code|debug|"
                  r"summari[sz]e|prove|design|reason|step by step)\b", re.IGNORECASE)
USAGE = ("write edge=SPEC,laptop=SPEC (model specs or OpenAI-compatible URLs), optionally "
         ",threshold=0.5,timeout=SECONDS")


@dataclass(frozen=True, slots=True)
class RouteSpec:
    edge: str
    laptop: str
    threshold: float = DEFAULT_THRESHOLD
    timeout_s: float | None = None

    def side(self, name: str) -> str:
        return self.edge if name == "edge" else self.laptop


@dataclass(frozen=True, slots=True)
class Score:
    value: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a request went and why: `side` answered, with `model`."""

    side: str
    model: str
    score: float
    reason: str
    fallback: str = ""  # why the first choice did not answer, when it did not

    def headers(self) -> dict[str, str]:
        """The proxy's response headers (ASCII only)."""
        out = {"x-engram-route": self.side, "x-engram-route-model": self.model,
               "x-engram-route-score": f"{self.score:.2f}", "x-engram-route-reason": self.reason}
        if self.fallback:
            out["x-engram-route-fallback"] = self.fallback
        return {k: v.encode("ascii", "replace").decode() for k, v in out.items()}

    def explain(self) -> str:
        moved = f"; {self.fallback}" if self.fallback else ""
        return f"routed to {self.side} ({self.model}): {self.reason}{moved}"


def parse_route(text: str) -> RouteSpec:
    """`edge=SPEC,laptop=SPEC[,threshold=X][,timeout=S]` (a leading `route:` is allowed)."""
    body = text.removeprefix("route:").strip()
    found = dict(re.findall(r"(edge|laptop|threshold|timeout)=(.*?)(?=,(?:edge|laptop|"
                            r"threshold|timeout)=|$)", body))
    missing = [side for side in SIDES if not found.get(side, "").strip()]
    if missing:
        raise InvalidInput("route", f"{text!r} names no {missing[0]} model", USAGE)
    try:
        threshold = float(found.get("threshold", DEFAULT_THRESHOLD))
        timeout = float(found["timeout"]) if "timeout" in found else None
    except ValueError:
        raise InvalidInput("route", f"{text!r} has a threshold or timeout that is not a "
                           "number", USAGE) from None
    if not 0 <= threshold <= 1 or (timeout is not None and timeout <= 0):
        raise InvalidInput("route", "threshold must be within 0..1 and timeout positive", USAGE)
    return RouteSpec(found["edge"].strip(), found["laptop"].strip(), threshold, timeout)


def complexity(text: str, memories: int = 0) -> Score:
    """How hard a request looks, 0 (a greeting) to 1 (a long, open question with much
    memory), with the parts that made it up."""
    words = len(text.split())
    length = 0.4 * min(words / LONG_WORDS, 1.0)
    kind = 0.35 if HARD.search(text) else 0.0
    need = 0.25 * min(memories / MANY_MEMORIES, 1.0)
    reasons = [f"{words} words"]
    if kind:
        reasons.append(f"asks {HARD.search(text).group(0).lower()}")  # type: ignore[union-attr]
    reasons.append(f"{memories} memories")
    return Score(round(length + kind + need, 4), tuple(reasons))


def choose(score: Score, threshold: float) -> tuple[str, str]:
    """The side for a score, and the reason in words."""
    side = "laptop" if score.value >= threshold else "edge"
    sign = ">=" if side == "laptop" else "<"
    return side, f"score {score.value:.2f} {sign} {threshold:g} ({', '.join(score.reasons)})"


def falls_back(exc: ProviderError) -> bool:
    """Unreachable, timed out or failing (5xx, 429): the other side is asked instead. A
    refusal of the request itself (400, 401, 404) is not the side's absence, so it surfaces."""
    return exc.status is None or exc.retryable


class Router:
    """A provider that answers with the edge or the laptop model (`Provider`), keeping the
    decision of its last answer in `last`."""

    def __init__(self, spec: RouteSpec, load: Callable[..., Provider]) -> None:
        self.spec = spec
        options: dict[str, Any] = {} if spec.timeout_s is None else {"timeout_s": spec.timeout_s}
        self.sides = {name: _load(load, spec.side(name), options) for name in SIDES}
        self.name = f"route:edge={self.sides['edge'].name},laptop={self.sides['laptop'].name}"
        self.last: Decision | None = None

    def complete(self, messages: Sequence[Message], **options: Any) -> str:
        return "".join(self.stream(messages, **options))

    def stream(self, messages: Sequence[Message], **options: Any) -> Iterator[str]:
        text = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        return self.stream_with(lambda p: p.stream(messages, **options), text)

    def stream_with(self, start: Callable[[Provider], Iterator[str]], text: str,
                    memories: int = 0) -> Iterator[str]:
        """`start(provider)` on the chosen side, or on the other if the chosen one fails
        before its first piece; `last` says which answered and why."""
        score = complexity(text, memories)
        side, reason = choose(score, self.spec.threshold)
        other = "edge" if side == "laptop" else "laptop"
        try:
            pieces = iter(start(self.sides[side]))
            first = next(pieces, None)
        except ProviderError as exc:
            if not falls_back(exc):
                raise
            fallback = f"{side} failed ({exc.problem}), answered by {other}"
            side, pieces = other, iter(start(self.sides[other]))
            first = next(pieces, None)
        else:
            fallback = ""
        self.last = Decision(side, self.sides[side].name, score.value, reason, fallback)
        if first is not None:
            yield first
        yield from pieces


def _load(load: Callable[..., Provider], spec: str, options: dict[str, Any]) -> Provider:
    """A side's provider; the timeout goes to providers that take one."""
    try:
        return load(spec, **options)
    except InvalidInput as exc:
        if options and exc.field == "timeout_s":
            return load(spec)
        raise
