"""`engram chat` as a person uses it: the real command in a pseudo-terminal (pexpect), talking
over HTTP on 127.0.0.1 to `OpenAIDouble`, which speaks the OpenAI wire format and records what
each "model" was sent."""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engram.llm.openai_double import OpenAIDouble

pexpect = pytest.importorskip("pexpect")

PROMPT = "you> "
TIMEOUT_S = 60


class Terminal:
    """One `engram chat` process in a pseudo-terminal."""

    def __init__(self, data: Path, model: str, *extra: str, user: str = "alice") -> None:
        env = {**os.environ, "TERM": "dumb", "NO_COLOR": "1", "COLUMNS": "160",
               "PYTHONUNBUFFERED": "1"}
        env.pop("ENGRAM_MODEL", None)
        self.child = pexpect.spawn(
            sys.executable, ["-m", "engram", "chat", "--model", model, "--user", user,
                             "--data", str(data), *extra],
            env=env, encoding="utf-8", timeout=TIMEOUT_S, dimensions=(50, 160))

    def expect(self, pattern: str) -> str:
        """Wait for `pattern` (a regex); returns the text that matched."""
        self.child.expect(pattern)
        return str(self.child.after)

    def say(self, line: str) -> str:
        """Type a line; returns everything printed before the next prompt."""
        self.child.sendline(line)
        self.child.expect_exact(PROMPT)
        return str(self.child.before)

    def quit(self) -> str:
        self.child.sendline("/quit")
        self.child.expect(pexpect.EOF)
        self.child.close()
        assert self.child.exitstatus == 0, self.child.before
        return str(self.child.before)


def model_at(up: OpenAIDouble) -> str:
    return f"openai:{up.model}@{up.base_url}"


@pytest.fixture
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(model="double-1") as up:
        yield up


def start(data: Path, model: str, *extra: str) -> tuple[Terminal, str]:
    term = Terminal(data, model, *extra)
    banner = term.expect(r"session (\S+)")
    term.child.expect_exact(PROMPT)
    session = re.search(r"session (\S+)", banner)
    assert session is not None
    return term, session.group(1)


def test_a_conversation_with_every_command(store_dir: Path, double: OpenAIDouble) -> None:
    term, session = start(store_dir, model_at(double))
    answer = term.say("My sister is called Priya and she lives in Porto")
    assert "openai:double-1> You said: My sister is called Priya and she lives in Porto" \
        in answer
    assert double.requests[-1]["stream"] is True
    assert "Priya" in term.say("/memories")

    remembered = term.say("/remember I am allergic to peanuts")
    memory_id = re.search(r"remembered (\S+)", remembered)
    assert memory_id is not None
    term.say("Can I eat satay?")
    system = double.requests[-1]["messages"][0]
    assert system["role"] == "system" and "peanuts" in system["content"]
    assert memory_id.group(1) in term.say("/why")

    assert f"forgot {memory_id.group(1)}" in term.say(f"/forget {memory_id.group(1)}")
    assert "peanuts" not in term.say("/memories")
    assert "/session new | resume ID" in term.say("/help")
    assert "not a command" in term.say("/frobnicate")
    assert "needs an argument" in term.say("/forget")
    assert f"resume with --session {session}" in term.quit()


def test_session_resume_keeps_the_window(store_dir: Path, double: OpenAIDouble) -> None:
    term, session = start(store_dir, model_at(double))
    term.say("I am reading Middlemarch")
    term.quit()

    term, resumed = start(store_dir, model_at(double), "--session", session)
    assert resumed == session
    term.say("Who wrote it?")
    sent = double.requests[-1]["messages"]
    assert {"role": "user", "content": "I am reading Middlemarch"} in sent
    assert {"role": "assistant", "content": "You said: I am reading Middlemarch"} in sent
    new = term.say("/session new")
    term.say("Hello again")
    assert {"role": "user", "content": "I am reading Middlemarch"} \
        not in double.requests[-1]["messages"]
    assert "new session chat-" in new
    term.quit()


def test_one_model_learns_a_fact_another_recalls_it(store_dir: Path,
                                                    double: OpenAIDouble) -> None:
    term, _ = start(store_dir, model_at(double))
    term.say("My dog is called Biscuit")
    term.quit()

    with OpenAIDouble(model="double-2") as other:
        term, _ = start(store_dir, model_at(other))  # a new session, another model
        term.say("What is my dog called?")
        system = other.requests[-1]["messages"][0]
        assert system["role"] == "system" and "Biscuit" in system["content"]
        assert all(m["content"] != "My dog is called Biscuit"
                   for m in other.requests[-1]["messages"][1:])  # from memory, not the window
        term.quit()


def test_model_switch_mid_session(store_dir: Path, double: OpenAIDouble) -> None:
    term, _ = start(store_dir, model_at(double))
    term.say("I play the oboe")
    with OpenAIDouble(model="double-2") as other:
        assert "now talking to openai:double-2" in term.say(f"/model {model_at(other)}")
        assert "openai:double-2> You said: Which instrument?" in term.say("Which instrument?")
        sent = other.requests[-1]["messages"]
        assert {"role": "user", "content": "I play the oboe"} in sent  # the session goes on
        # ... and its own turn is in the window, not recalled into the memories a second time
        assert sent[0]["role"] == "system" and "I play the oboe" not in sent[0]["content"]
        term.quit()


def test_ctrl_c_stops_an_answer_and_it_is_not_remembered(store_dir: Path) -> None:
    with OpenAIDouble(model="slow", delay_s=3.0) as slow:
        term, session = start(store_dir, model_at(slow))
        term.child.sendline("Tell me a long story")
        term.child.expect_exact("openai:slow> ")
        term.child.sendintr()
        term.child.expect_exact(PROMPT)
        assert "stopped; not remembered" in str(term.child.before)
        assert "has no turns yet" in term.say(f"/session resume {session}")
        term.quit()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_model_names_the_url(store_dir: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    term, _ = start(store_dir, f"openai:gpt-4o-mini@{url}")
    said = term.say("hello?")
    assert "error:" in said and url in said and "cannot be reached" in said
    assert "no memories" in term.say("/why")  # the chat goes on
    term.quit()


def test_bad_model_spec_exits_with_a_clear_error(store_dir: Path) -> None:
    term = Terminal(store_dir, "gpt-4")
    term.child.expect(pexpect.EOF)
    term.child.close()
    assert term.child.exitstatus == 2
    assert "error: model: unknown provider 'gpt-4'" in str(term.child.before)
