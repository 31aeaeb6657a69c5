"""Teacher logs: with `plm.teacher` set (engram config), an exchange that model answers through
`engram chat` or the OpenAI-compatible proxy is marked as the teacher's by one event on its turn;
`engram plm teacher-data` writes the set. The models are `OpenAIDouble`, a stand-in for a paid
API speaking its wire format on 127.0.0.1 (the real one cannot run here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from typer.testing import CliRunner

from engram import Memory
from engram.chat.session import Chat
from engram.cli.main import app
from engram.errors import InvalidInput
from engram.llm import load_provider
from engram.llm.openai_double import OpenAIDouble
from engram.log.events import EventType
from engram.plm import teacher
from engram.plm.settings import Settings
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.service import ServerConfig

runner = CliRunner()


@pytest.fixture
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(model="big-1") as up:
        yield up


def _chat(mem: Memory, up: OpenAIDouble) -> Chat:
    provider = load_provider(f"openai:{up.model}@{up.base_url}", attempts=1)
    return Chat(mem, provider, user_id="ana", session_id="s1")


def test_the_setting_is_an_engram_config_key(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "set", "plm.teacher", "openai:big-1",
                                 "--data", str(tmp_path)])
    assert result.exit_code == 0, result.output
    with Memory(tmp_path, embedder=None) as mem:
        assert isinstance(mem.policy, Settings) and mem.policy.plm_teacher == "openai:big-1"


@pytest.mark.parametrize(("setting", "logged"), [
    ("openai:big-1", True), ("*", True), ("openai:small-1", False), ("", False)])
def test_chat_logs_the_configured_teachers_answers(tmp_path: Path, double: OpenAIDouble,
                                                   setting: str, logged: bool) -> None:
    with Memory(tmp_path, embedder=None, policy=Settings(plm_teacher=setting)) as mem:
        answer = "".join(_chat(mem, double).send("Where does Hugo live?"))
        found = teacher.examples(mem, "ana")
        assert found == ([teacher.Example("Where does Hugo live?", answer, "openai:big-1",
                                          found[0].memory_id)] if logged else [])
        if logged:  # one event on the turn, in the log
            kinds = [e.type for e in mem.history(found[0].memory_id)]
            assert kinds == [EventType.ADDED, EventType.UPDATED]
            assert teacher.examples(mem, "bob") == []


def test_the_proxy_logs_the_requested_model(tmp_path: Path, double: OpenAIDouble) -> None:
    mem = Memory(tmp_path, embedder=None, policy=Settings(plm_teacher="big-1"))
    application = create_app(ServerConfig(data=tmp_path, upstream=double.base_url), mem)
    with serving(application) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused-on-loopback")
        for model in ("big-1", "other"):
            client.chat.completions.create(model=model, user="ana", messages=[
                {"role": "user", "content": f"What is {model}?"}])
        found = teacher.examples(mem, "ana")
    assert [(e.query, e.response, e.teacher) for e in found] == \
        [("What is big-1?", "You said: What is big-1?", "big-1")]


def test_teacher_data_writes_the_set_rebuild_keeps_it_forget_drops_it(
        tmp_path: Path, double: OpenAIDouble) -> None:
    with Memory(tmp_path, embedder=None, policy=Settings(plm_teacher="*")) as mem:
        chat = _chat(mem, double)
        for question in ("Where does Hugo live?", "What does Omar do?"):
            "".join(chat.send(question))
    out = tmp_path / "set" / "teacher.jsonl"
    result = runner.invoke(app, ["plm", "teacher-data", "-u", "ana", "--out", str(out),
                                 "--data", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["examples"] == 2 and manifest["teachers"] == ["openai:big-1"]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["query"] for line in lines] == ["Where does Hugo live?", "What does Omar do?"]
    assert lines[0]["response"] == "You said: Where does Hugo live?"
    with Memory(tmp_path, embedder=None) as mem:
        mem.rebuild()
        assert len(teacher.examples(mem, "ana")) == 2
        mem.forget(lines[0]["memory_id"])
        assert [e.query for e in teacher.examples(mem, "ana")] == ["What does Omar do?"]
    other = runner.invoke(app, ["plm", "teacher-data", "-u", "ana", "--teacher", "openai:x",
                                "--out", str(tmp_path / "none.jsonl"), "--data", str(tmp_path)])
    assert other.exit_code == 2 and "plm.teacher" in other.stderr
    assert not (tmp_path / "none.jsonl").exists()


def test_user_texts_are_grouped_by_domain_and_a_turn_gives_its_query(tmp_path: Path) -> None:
    with Memory(tmp_path, embedder=None) as mem:
        mem.add("Hugo lives in Oslo.", user_id="ana", domains=["places"])
        mem.add("Omar works as a pilot.", user_id="ana", tags=["work", "train:accepted"])
        mem.add("Tom likes tea.", user_id="bob", domains=["food"])
        mem.remember_turn("Where is Accra?", "In Ghana.", user_id="ana", session_id="s1")
        texts = teacher.user_texts(mem, "ana")
        assert texts["places"] == ["Hugo lives in Oslo."]
        assert texts["work"] == ["Omar works as a pilot."]  # system tags are not domains
        assert ["Where is Accra?"] in texts.values()  # the query, not the model's answer
        assert "food" not in texts
        with pytest.raises(InvalidInput) as caught:
            teacher.user_texts(mem, "nobody")
        assert caught.value.field == "user"
