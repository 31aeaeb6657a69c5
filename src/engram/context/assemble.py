"""Budgeted assembly: recalled memories, the recent turns verbatim and a summary of older ones,
chosen to fit a token budget measured on the rendered prompt. Pure: no I/O, no model calls."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from engram.context.concepts import prefer_concepts
from engram.context.styles import (
    SECTION_OF,
    Parts,
    Prompt,
    Sections,
    Turn,
    check_style,
    group,
    line_for,
    memory_item,
    one_line,
    render_parts,
    section_header,
    turn_cost,
)
from engram.context.tokens import TokenCounter, estimate_tokens, fit_text
from engram.errors import InvalidInput
from engram.model import MemoryEntry
from engram.query import Hit

Summarizer = Callable[[Sequence[Turn]], str]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")
_SUMMARY_WORDS = 40


@dataclass(frozen=True, slots=True)
class Limits:
    """How the budget is shared. Window defaults from the Phi-3 seed (10 exchanges, 2,000
    tokens); `memory_share` of the budget is kept from the window for memories when any were
    recalled (the window may not crowd them out)."""

    window_size: int = 10
    window_max_tokens: int = 2000
    summary_max_tokens: int = 300
    memory_share: float = 0.5

    def __post_init__(self) -> None:
        for name in ("window_size", "window_max_tokens", "summary_max_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInput(name, f"{value!r} is not a count", "give a whole number >= 0")
        if not 0.0 <= self.memory_share <= 1.0:
            raise InvalidInput("memory_share", f"{self.memory_share!r} is out of range",
                               "give a number from 0.0 to 1.0")


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class ContextPlan:
    """An assembled context: what was chosen, why it fits, and the prompt it renders to."""

    style: str
    budget_tokens: int
    tokens_used: int  # the rendered prompt, counted with the counter it was built with
    memories: tuple[MemoryEntry, ...]  # chosen, best first
    window: tuple[dict[str, str], ...]  # the latest turns, verbatim (the newest maybe cut)
    summary: str  # of the turns before the window; "" when there are none
    summarized_turns: int  # how many turns the summary stands for
    left_out_memories: int  # recalled but not fitting
    instructions: str
    prompt: Prompt

    @property
    def memory_ids(self) -> tuple[str, ...]:
        """The memories this context used: what "why did the model know that?" reads."""
        return tuple(m.id for m in self.memories)

    @property
    def sections(self) -> Sections:
        return group(self.memories)

    @property
    def text(self) -> str:
        """The measured prompt as one text: a chat style's system text (instructions,
        memories, summary) or the whole document (markdown, json)."""
        return self.prompt.system

    @property
    def tokens_left(self) -> int:
        return self.budget_tokens - self.tokens_used

    def parts(self) -> Parts:
        return Parts(self.sections, self.summary, self.window, self.instructions)


def select_within_budget(hits: Sequence[Hit], budget_tokens: int,
                         count: TokenCounter = estimate_tokens) -> list[MemoryEntry]:
    """The best hits, in rank order, whose lines fit in `budget_tokens` together."""
    _check_budget(budget_tokens)
    chosen, used = [], 0
    for hit in hits:
        cost = count(line_for(hit.memory)) + 2
        if used + cost > budget_tokens:
            continue
        chosen.append(hit.memory)
        used += cost
    return chosen


def build_context(hits: Sequence[Hit], conversation: Sequence[Turn] = (), *,
                  budget_tokens: int, style: str = "claude",
                  count: TokenCounter = estimate_tokens, limits: Limits = DEFAULT_LIMITS,
                  summarize: Summarizer | None = None, instructions: str = "",
                  query: str | None = None) -> ContextPlan:
    """Everything a model should see next, within `budget_tokens` as `style` renders it.

    The newest exchanges come first (the newest turn always, cut if it must be), then the
    recalled memories in rank order, then a summary of the turns before the window:
    `summarize(turns)` when given (an LLM, say), else their first sentences. `hits` are best
    first; `conversation` is the session so far, oldest first, newest user turn last. Concepts
    among the hits stand in for their members when these do not fit (`concepts`); `query`
    (default: the last user turn) says which details a member must keep."""
    _check_budget(budget_tokens)
    check_style(style)
    turns = _check_conversation(conversation)
    frame = render_parts(Parts(instructions=instructions), style).tokens(count)
    if frame > budget_tokens:
        raise InvalidInput("budget_tokens", f"{budget_tokens} tokens cannot hold the "
                           f"instructions ({frame} tokens)",
                           "raise budget_tokens or shorten the instructions")
    avail = budget_tokens - frame
    memories = _unique([h.memory for h in hits])
    keep_for_memories = int(avail * limits.memory_share) if memories else 0
    window_cap = min(limits.window_max_tokens, avail - keep_for_memories)
    window, older, window_cost = _window(turns, limits.window_size, window_cap, avail, style,
                                         count)
    left = avail - window_cost
    written = one_line(summarize(older)) if summarize is not None and older else None
    # The summary may take up to a quarter of what is left before memories are chosen, and
    # whatever they leave after.
    first = _summary(older, min(limits.summary_max_tokens, left // 4), count, written)
    cap = left - (count(first) + 1 if first else 0)
    asked = query or next((t["content"] for t in reversed(turns) if t["role"] == "user"), None)
    considered = prefer_concepts(memories, asked,
                                 lambda ms: _memories(ms, cap, style, count)[0],
                                 lambda m: count(memory_item(style, m)) + 1)
    chosen, memory_cost = _memories(considered, cap, style, count)
    left -= memory_cost
    summary = _summary(older, min(limits.summary_max_tokens, left), count, written)
    parts = Parts(group(chosen), summary, tuple(window), instructions)
    parts, prompt, used = _fit(parts, chosen, budget_tokens, style, count)
    kept_ids = {m.id for _, items in parts.sections for m in items}
    kept = tuple(m for m in chosen if m.id in kept_ids)
    return ContextPlan(style, budget_tokens, used, kept,
                       tuple(dict(t) for t in parts.window), parts.summary,
                       len(older) if parts.summary else 0, len(memories) - len(kept),
                       instructions, prompt)


def render_plan(plan: ContextPlan, style: str | None = None) -> Prompt:
    """The plan in another style (its budget was measured for `plan.style`)."""
    return render_parts(plan.parts(), check_style(style or plan.style))


def exchanges(turns: Sequence[Turn]) -> list[list[Turn]]:
    """Turns grouped into exchanges: each user turn opens one, its answers follow it."""
    out: list[list[Turn]] = []
    for turn in turns:
        if turn["role"] == "user" or not out:
            out.append([turn])
        else:
            out[-1].append(turn)
    return out


def extractive_summary(turns: Sequence[Turn], max_tokens: int,
                       count: TokenCounter = estimate_tokens) -> str:
    """The first sentence of each user turn, without repeats, as bullets; the newest are kept
    when they do not all fit."""
    sentences: dict[str, str] = {}
    for turn in turns:
        if turn["role"] == "user" and (sentence := first_sentence(turn["content"])):
            sentences.setdefault(sentence.casefold(), sentence)
    lines: list[str] = []
    used = 0
    for sentence in reversed(list(sentences.values())):
        cost = count(f"- {sentence}") + 1
        if used + cost > max_tokens:
            break
        lines.insert(0, f"- {sentence}")
        used += cost
    return "\n".join(lines)


def summary_prompt(turns: Sequence[Turn], max_words: int = 120) -> list[dict[str, str]]:
    """Messages asking a model to summarise `turns`: wire it as
    `summarize=lambda turns: provider.complete(summary_prompt(turns))`."""
    transcript = "\n".join(f"{t['role']}: {one_line(t['content'])}" for t in turns)
    return [{"role": "system", "content":
             "Summarise this conversation for the assistant's memory in at most "
             f"{max_words} words. Keep names, dates, decisions, preferences and open "
             "questions; leave out pleasantries. Answer with the summary only."},
            {"role": "user", "content": transcript}]


def first_sentence(text: str) -> str:
    """The opening sentence of `text` on one line, cut at _SUMMARY_WORDS words."""
    head = _SENTENCE_END.split(text.strip(), maxsplit=1)[0]
    words = one_line(head).split(" ")
    return " ".join(words[:_SUMMARY_WORDS]) + ("…" if len(words) > _SUMMARY_WORDS else "")


def _check_budget(budget_tokens: int) -> None:
    if isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int) \
            or budget_tokens <= 0:
        raise InvalidInput("budget_tokens", f"{budget_tokens!r} is not positive",
                           "give a token budget of at least 1")


def _check_conversation(conversation: Sequence[Turn]) -> list[Turn]:
    """User and assistant turns; system turns are left out (pass them as `instructions`)."""
    if isinstance(conversation, str | bytes):
        raise InvalidInput("conversation", "expected a list of {role, content} dicts",
                           'pass e.g. [{"role": "user", "content": "hello"}]')
    turns: list[Turn] = []
    for i, turn in enumerate(conversation):
        role = turn.get("role") if isinstance(turn, Mapping) else None
        content = turn.get("content") if isinstance(turn, Mapping) else None
        if role not in ("user", "assistant", "system"):
            raise InvalidInput(f"conversation[{i}].role", f"{role!r} is not a chat role",
                               "use user or assistant")
        if not isinstance(content, str):
            raise InvalidInput(f"conversation[{i}].content", "must be a string",
                               "pass the turn's text as a str")
        if role != "system":
            turns.append({"role": role, "content": content})
    return turns


def _unique(memories: Sequence[MemoryEntry]) -> list[MemoryEntry]:
    seen: set[str] = set()
    out = []
    for m in memories:
        if m.id not in seen:
            seen.add(m.id)
            out.append(m)
    return out


def _window(turns: list[Turn], size: int, cap: int, avail: int, style: str,
            count: TokenCounter) -> tuple[list[Turn], list[Turn], int]:
    """(the window, the turns before it, the window's cost). The newest exchange may use the
    whole budget and is cut to its newest turns (the newest itself cut) when it must be."""
    groups = exchanges(turns)
    if not groups or size == 0:
        return [], turns, 0
    newest = groups[-1]
    window: list[Turn] = []
    used = 0
    for turn in reversed(newest):
        cost = turn_cost(style, turn, count)
        if used + cost <= avail:
            window.insert(0, turn)
            used += cost
            continue
        if not window:  # the newest turn alone is too long: keep its end, the question
            overhead = turn_cost(style, {**turn, "content": ""}, count)
            cut = fit_text(turn["content"], avail - overhead, count, keep="end")
            if cut:
                window.insert(0, {**turn, "content": cut})
                used += turn_cost(style, window[0], count)
        break
    start = len(groups) - 1
    for ex in reversed(groups[max(0, len(groups) - size):-1]):
        cost = sum(turn_cost(style, t, count) for t in ex)
        if used + cost > cap:
            break
        window = ex + window
        used += cost
        start -= 1
    older = [t for ex in groups[:start] for t in ex]
    if len(window) < len(newest):  # turns of the newest exchange that did not fit
        older += newest[:len(newest) - len(window)]
    return window, older, used


def _memories(memories: list[MemoryEntry], cap: int, style: str,
              count: TokenCounter) -> tuple[list[MemoryEntry], int]:
    chosen: list[MemoryEntry] = []
    opened: set[str] = set()
    used = 0
    for m in memories:
        section = SECTION_OF[m.memory_type]
        cost = count(memory_item(style, m)) + 1
        if section not in opened:
            cost += count(section_header(style, section)) + 1
        if used + cost > cap:
            continue
        chosen.append(m)
        opened.add(section)
        used += cost
    return chosen, used


def _summary(older: list[Turn], cap: int, count: TokenCounter, written: str | None) -> str:
    """The summarizer's text cut to `cap`, or the extractive summary within it."""
    if not older or cap <= 0:
        return ""
    if written is not None:
        return fit_text(written, cap, count)
    return extractive_summary(older, cap, count)


def _fit(parts: Parts, ranked: list[MemoryEntry], budget: int, style: str,
         count: TokenCounter) -> tuple[Parts, Prompt, int]:
    """Render and measure; while over budget (estimates are per item, a tokenizer counts the
    whole), drop the least needed piece: summary lines, the lowest memory, the oldest turn."""
    memories = list(ranked)
    while True:
        prompt = render_parts(parts, style)
        used = prompt.tokens(count)
        if used <= budget:
            return parts, prompt, used
        if parts.summary:
            lines = parts.summary.split("\n")
            parts = replace(parts, summary="\n".join(lines[1:]))
        elif memories:
            memories.pop()
            parts = replace(parts, sections=group(memories))
        elif len(parts.window) > 1:
            parts = replace(parts, window=parts.window[1:])
        elif parts.window:
            last = parts.window[0]
            over = used - budget
            cut = fit_text(last["content"], max(count(last["content"]) - over, 0), count,
                           keep="end")
            parts = replace(parts, window=({**last, "content": cut},) if cut else ())
        else:  # pragma: no cover - the frame was checked to fit before anything was chosen
            raise AssertionError("the empty context does not fit its budget")
