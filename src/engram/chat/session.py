"""A chat with memory, without the terminal: slash commands parsed, and each turn carried from
the user's message through recall and context assembly to the model and back into memory.

`chat_cli` is the thin terminal loop around it. Every model a `Chat` talks to reads and writes
the same store, so switching models mid-session keeps what the first one was told.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast
from urllib.parse import urlsplit

from engram.context import ContextPlan, Turn, extractive_summary, summary_prompt
from engram.errors import InvalidInput, NotFound
from engram.llm import Provider, ProviderError, load_provider
from engram.memory import Memory
from engram.model import MemoryEntry, check_id
from engram.plm.teacher import logged
from engram.state import attention
from engram.store.settings import CHAT_SUMMARY, OLLAMA_CONTEXT

if TYPE_CHECKING:  # httpx is imported only when an Ollama model is chosen
    from engram.llm.ollama import OllamaProvider
    from engram.state.route import Decision

INSTRUCTIONS = ("You are a helpful assistant with a long-term memory of this user. Use what "
                "you remember when it helps, and say so when you do not know.")
# command → (argument shown in /help, what it does)
COMMANDS: dict[str, tuple[str, str]] = {
    "remember": ("TEXT", "remember TEXT for this user"),
    "forget": ("ID", "forget a memory everywhere"),
    "why": ("", "the memories the last answer was given, where it was routed, and the "
                "attention a local model paid each memory"),
    "memories": ("", "this user's latest memories"),
    "session": ("new | resume ID", "start a new conversation or go back to one"),
    "model": ("SPEC", "talk to another model, with the same memory"),
    "help": ("", "this list"),
    "quit": ("", "leave (Ctrl-D too)"),
}
ALIASES = {"exit": "quit", "q": "quit", "?": "help"}
# The model rewrites a session's summary of the turns before the window only when this many
# more turns have left the window; the ones in between are summarised extractively.
SUMMARY_STEP = 10
TAIL_SUMMARY_TOKENS = 150
# A model with saved state sees the session's last STATE_TURNS messages, the oldest dropped
# STATE_STEP at a time, so its saved prefix stays valid between the drops.
STATE_TURNS = 40
STATE_STEP = 20
NEEDS_ARGUMENT = frozenset({"remember", "forget", "session", "model"})


@dataclass(frozen=True, slots=True)
class Command:
    """A slash command: its name (aliases resolved) and the rest of the line."""

    name: str
    argument: str = ""


def parse(line: str) -> Command | str:
    """A `/command`, or the message itself; `//text` sends a message that starts with `/`."""
    text = line.strip()
    if text.startswith("//"):
        return text[1:]
    if not text.startswith("/"):
        return text
    head, _, rest = text[1:].partition(" ")
    name = ALIASES.get(head.lower(), head.lower())
    if name not in COMMANDS:
        raise InvalidInput("command", f"/{head} is not a command", "type /help for the list")
    argument = rest.strip()
    if name in NEEDS_ARGUMENT and not argument:
        raise InvalidInput(f"/{name}", "needs an argument",
                           f"type /{name} {COMMANDS[name][0]}")
    return Command(name, argument)


def help_lines() -> list[str]:
    usages = {name: f"/{name} {arg}".rstrip() for name, (arg, _) in COMMANDS.items()}
    width = max(map(len, usages.values())) + 2
    return [usages[name].ljust(width) + what for name, (_, what) in COMMANDS.items()]


def new_session_id() -> str:
    return f"chat-{secrets.token_hex(4)}"


def style_for(provider: Provider) -> str:
    """The context style the provider's models read best."""
    kind = provider.name.partition(":")[0]
    return {"anthropic": "claude", "ollama": "ollama"}.get(kind, "openai")


def is_local(provider: Provider) -> bool:
    """True when the model runs on this machine (in this process, or its base URL is a
    loopback address): only then may memories marked sensitive reach it."""
    if getattr(provider, "local", False) is True:  # a model in this process (hf:PATH)
        return True
    url = getattr(provider, "base_url", None)
    host = urlsplit(url).hostname if isinstance(url, str) else None
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def load_model(spec: str, data: str | None = None) -> Provider:
    """A provider spec, or a route between two (`route:edge=SPEC,laptop=SPEC`). A local
    model (hf:PATH) keeps its saved states beside the store at `data`."""

    def load(one: str, **options: object) -> Provider:
        if one.startswith("hf:") and data is not None:
            options["data"] = data
        return load_provider(one, **options)

    if spec.startswith("route:"):
        from engram.state.route import Router, parse_route

        return Router(parse_route(spec), load)
    return load(spec)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command did, for the terminal to show: a line, a list of memories (with the
    share of a local model's attention each received, when known), or quit."""

    message: str = ""
    memories: tuple[MemoryEntry, ...] = ()
    quit: bool = False
    attention: dict[str, float] | None = None


class Chat:
    """One user's conversation with a model over a memory store.

    `send` streams the answer and, once it is complete, records the exchange and what can be
    extracted from it; an answer that fails midway records nothing.
    """

    def __init__(self, mem: Memory, provider: Provider, *, user_id: str,
                 session_id: str | None = None, budget_tokens: int = 2000,
                 model_summaries: bool = True,
                 load: Callable[[str], Provider] = load_model) -> None:
        self.mem, self.provider = mem, provider
        self.user_id = check_id(user_id, "user_id", required=True) or user_id
        self.session_id = check_id(session_id, "session_id") or new_session_id()
        self.budget_tokens = budget_tokens
        self.model_summaries = model_summaries
        self.last_plan: ContextPlan | None = None
        self.last_route: Decision | None = None
        self.last_attention: dict[str, float] | None = None
        self.notice = ""  # something the person should know about the last answer
        self._load = load

    # ------------------------------------------------------------ turns

    def history(self) -> list[dict[str, str]]:
        """This session's recorded turns, oldest first."""
        return self.mem.conversation(self.session_id, user_id=self.user_id)

    def plan(self, text: str) -> ContextPlan:
        """Recall and assemble the context for the next message (nothing is sent)."""
        conversation = [*self.history(), {"role": "user", "content": text}]
        return self.mem.assemble(conversation=conversation, user_id=self.user_id,
                                 budget_tokens=self.budget_tokens,
                                 style=style_for(self.provider), instructions=INSTRUCTIONS,
                                 include_sensitive=is_local(self.provider),
                                 session_id=self.session_id,
                                 summarize=self.summarize if self.model_summaries else None)

    def summarize(self, older: Sequence[Turn]) -> str:
        """The turns before the window, summarised by the chat's model. The summary is kept
        per session and rewritten every SUMMARY_STEP turns; turns newer than it are added
        extractively. If the model fails, the whole summary is extractive."""
        key = f"{self.user_id}:{self.session_id}"
        saved = json.loads(self.mem.store.get_setting(CHAT_SUMMARY, key) or "null")
        if saved and saved["turns"] <= len(older) < saved["turns"] + SUMMARY_STEP:
            tail = extractive_summary(older[saved["turns"]:], TAIL_SUMMARY_TOKENS)
            return "\n".join(part for part in (saved["text"], tail) if part)
        try:
            text = self.provider.complete(summary_prompt(older)).strip()
        except ProviderError:
            return extractive_summary(older, self.budget_tokens)
        self.mem.store.set_setting(CHAT_SUMMARY, json.dumps({"turns": len(older), "text": text}),
                                   key)
        return text

    def send(self, text: str) -> Iterator[str]:
        """The answer to `text`, piece by piece; the turn is remembered after the last piece,
        a routed one with the model that answered (as its agent_id)."""
        if not text.strip():
            raise InvalidInput("message", "is empty", "type something to say")
        plan = self.plan(text)
        self.last_plan, self.last_route, self.last_attention, self.notice = plan, None, None, ""
        pieces: list[str] = []
        route = getattr(self.provider, "stream_with", None)
        if route is not None:  # a Router: the edge or the laptop model answers
            stream = route(lambda p: self._pieces(p, plan, text), text, len(plan.memories))
        else:
            stream = self._pieces(self.provider, plan, text)
        for piece in stream:
            pieces.append(piece)
            yield piece
        self.last_route = getattr(self.provider, "last", None) if route is not None else None
        agent = self.last_route.model if self.last_route is not None else None
        leaned = attention.kept(self.last_attention, {m.id for m in plan.memories})
        logged(self.mem, self.mem.remember_turn(text, "".join(pieces), user_id=self.user_id,
                                                session_id=self.session_id, agent_id=agent,
                                                metadata=leaned),
               agent or self.provider.name)

    def _pieces(self, provider: Provider, plan: ContextPlan, text: str) -> Iterator[str]:
        """One provider's answer: Ollama continues from its saved context tokens, a model
        with saved sessions (hf:, llamacpp:) from its saved state, others from the prompt."""
        if provider.name.startswith("ollama:"):
            yield from self._ollama_pieces(cast("OllamaProvider", provider), plan, text)
            return
        stream_session = getattr(provider, "stream_session", None)
        if stream_session is None:
            yield from provider.stream(plan.prompt.chat())
            return
        watch = {m.id: m.content for m in plan.memories}
        yield from stream_session(self._stateful_messages(plan, text),
                                  self._context_key(provider), watch=watch)
        last = getattr(provider, "last", None)
        self.last_attention = dict(getattr(last, "attention", {}) or {}) or None
        pop_notice = getattr(provider, "pop_notice", None)
        self.notice = pop_notice() if pop_notice is not None else ""

    def _stateful_messages(self, plan: ContextPlan, text: str) -> list[dict[str, str]]:
        """For a model that keeps its state between turns: what stays the same comes first
        (the instructions, the session's turns, dropped from the front only STATE_STEP
        messages at a time), what changes every turn last (this turn's memories, with the
        message), so the saved prefix is reused."""
        turns = self.history()
        start = max(0, len(turns) - STATE_TURNS)
        start -= start % STATE_STEP
        recalled = plan.prompt.system.removeprefix(INSTRUCTIONS).strip()
        said = f"{recalled}\n\n{text}" if recalled else text
        return [{"role": "system", "content": INSTRUCTIONS}, *turns[start:],
                {"role": "user", "content": said}]

    def _ollama_pieces(self, provider: OllamaProvider, plan: ContextPlan,
                       text: str) -> Iterator[str]:
        """Ollama's /api/generate, continuing from the session's saved context tokens: the
        earlier turns live in those tokens, so only memories and the new message are sent.
        Without saved tokens (a new session, one another model began, or an Ollama that
        returns none) the recent turns go into the system prompt."""
        key = self._context_key(provider)
        saved = self.mem.store.get_setting(OLLAMA_CONTEXT, key)
        context = json.loads(saved) if saved else None
        system = plan.prompt.system
        earlier = plan.window[:-1]
        if not context and earlier:
            lines = "\n".join(f"{t['role']}: {t['content']}" for t in earlier)
            system = f"{system}\n\nRecent conversation:\n{lines}".strip()
        stream = provider.generate_stream(text, context=context or None, system=system or None)
        yield from stream
        tokens = stream.context or []  # none: an old context must not be sent again either
        self.mem.store.set_setting(OLLAMA_CONTEXT, json.dumps(tokens), key)
        if not tokens:
            self.notice = (f"{provider.name} returned no context tokens (newer Ollama versions "
                           "drop them): the conversation continues from memory recall and the "
                           "recent turns")

    def _context_key(self, provider: Provider) -> str:
        """A model's saved state (Ollama's context tokens, a local model's KV cache) is that
        one model's: kept per user, session and model."""
        return f"{self.user_id}:{self.session_id}:{provider.name}"

    # ------------------------------------------------------------ commands

    def run(self, command: Command) -> Outcome:
        handler: Callable[[str], Outcome] = getattr(self, f"_cmd_{command.name}")
        return handler(command.argument)

    def _cmd_remember(self, text: str) -> Outcome:
        entry = self.mem.add(text, user_id=self.user_id, session_id=self.session_id)
        return Outcome(f"remembered {entry.id}")

    def _cmd_forget(self, memory_id: str) -> Outcome:
        entry = self.mem.get(memory_id)
        if entry.user_id != self.user_id:
            raise NotFound(memory_id)  # another user's memory does not exist for this one
        self.mem.forget(memory_id, reason="forgotten in chat")
        return Outcome(f"forgot {memory_id}")

    def _cmd_why(self, _: str) -> Outcome:
        if self.last_plan is None:
            return Outcome("nothing asked yet in this chat")
        used = self.mem.store.get_many(self.last_plan.memory_ids)
        memories = tuple(used[i] for i in self.last_plan.memory_ids if i in used)
        lines = [self.last_route.explain()] if self.last_route is not None else []
        if not memories:
            return Outcome("\n".join([*lines, "the last answer used no memories"]))
        lines.append(f"the last answer was given {len(memories)} memories")
        if self.last_attention is not None:
            lines.append("attention: the share of the model's attention (summed over layers "
                         "and heads, for the tokens it generated) each memory received")
        return Outcome("\n".join(lines), memories, attention=self.last_attention)

    def _cmd_memories(self, _: str) -> Outcome:
        entries = tuple(self.mem.list(user_id=self.user_id, limit=20))
        return Outcome(f"{len(entries)} latest memories of {self.user_id}", entries)

    def _cmd_session(self, argument: str) -> Outcome:
        action, _, session_id = argument.partition(" ")
        if action == "new" and not session_id.strip():
            self.session_id, self.last_plan = new_session_id(), None
            return Outcome(f"new session {self.session_id}")
        if action == "resume" and session_id.strip():
            return Outcome(self.resume(session_id.strip()))
        raise InvalidInput("/session", f"{argument!r} is not understood",
                           "type /session new, or /session resume ID")

    def resume(self, session_id: str) -> str:
        """Go back to a session; says how many of its turns were found."""
        self.session_id = check_id(session_id, "session_id", required=True) or session_id
        self.last_plan = None
        turns = len(self.history())
        if not turns:
            return f"session {self.session_id} has no turns yet; starting it"
        return f"resumed session {self.session_id} ({turns} turns)"

    def _cmd_model(self, spec: str) -> Outcome:
        self.provider = self._load(spec)
        return Outcome(f"now talking to {self.provider.name}, with the same memory")

    def _cmd_help(self, _: str) -> Outcome:
        return Outcome("\n".join(help_lines()))

    def _cmd_quit(self, _: str) -> Outcome:
        return Outcome(quit=True)
