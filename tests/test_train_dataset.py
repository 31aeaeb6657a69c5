"""Datasets from accepted memories: templated paraphrases, a validation split held out by
memory (stable as memories are added), the checks and their report, and the two JSONL
formats written by `engram train dataset`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from engram.cli.main import app
from engram.llm.openai_double import OpenAIDouble
from engram.memory import Memory
from engram.train import candidates as cands
from engram.train.checks import Example, check
from engram.train.dataset import build, held_out
from engram.train.questions import llm_questions, template_questions

runner = CliRunner()
FACTS = ["Ana lives in Oslo.", "Tom's favourite drink is cocoa.", "Mia works as a pilot.",
         "Leo likes opera.", "Zoe works at Lima Bank.", "Sam lives in Accra.",
         "Ivy's favourite sport is golf.", "Max works as a tailor.", "Kai is allergic to nuts.",
         "Eva lives in Quito."]


def test_templates_ask_each_fact_several_ways_with_its_value() -> None:
    asked = template_questions("Ana lives in Oslo.")
    assert len({q.question for q in asked}) == 5 and {q.expect for q in asked} == {"Oslo"}
    mine = template_questions("User is allergic to peanuts")
    assert mine[0].question == "What am I allergic to?" and mine[0].expect == "peanuts"
    assert "What gives me an allergic reaction?" in [q.question for q in mine]
    assert template_questions("Tom's favourite drink is cocoa.")[0].question == \
        "What is Tom's favourite drink?"
    other = template_questions("Ben met Una at the harbour.")
    assert other[0].question == "What do you know about Ben?"
    assert other[0].expect == "Ben met Una at the harbour."


def test_a_model_may_write_the_questions_and_bad_output_falls_back() -> None:
    numbered = llm_questions("Ana lives in Oslo.", lambda _: "1. Where is Ana based?\n"
                             "2) Which city is Ana's home?\nnot a question")
    assert [q.question for q in numbered] == ["Where is Ana based?", "Which city is Ana's home?"]
    assert {q.expect for q in numbered} == {"Oslo"}
    assert llm_questions("Ana lives in Oslo.", lambda _: "sorry") == \
        template_questions("Ana lives in Oslo.")


@given(st.lists(st.text("ABCDEFGHJKMNPQRSTVWXYZ0123456789", min_size=26, max_size=26),
                min_size=1, max_size=60, unique=True), st.integers(0, 59))
def test_the_validation_split_keeps_each_memory_on_its_side(ids: list[str], cut: int) -> None:
    grown = held_out(ids, 0.2)
    early = held_out(ids[:cut + 1], 0.2)
    if len(early) > 1:  # chosen by their hashes, not the at-least-one rule
        assert early <= grown  # a memory never moves from validation to training
    assert grown <= set(ids) and bool(grown) == (len(ids) >= 5)


def accepted(mem: Memory, facts: list[str]) -> list[cands.Candidate]:
    ids = [mem.add(f, user_id="ana", tier="persistent").id for f in facts]
    cands.curate(mem, ids, accept=True)
    return cands.candidates(mem, "ana", state="accepted")


def test_build_splits_by_memory_and_keeps_paraphrases_back(mem: Memory) -> None:
    data = build(accepted(mem, FACTS), per_memory=3, valid_fraction=0.2)
    trained = {e.memory_id for e in data.train}
    assert trained.isdisjoint(data.valid_ids) and data.valid_ids
    assert set(data.memory_ids) == trained
    assert {e.memory_id for e in data.probe} <= trained
    assert not {e.question for e in data.train} & {e.question for e in data.probe}
    assert all(sum(e.memory_id == i for e in data.train) == 3 for i in trained)
    again = build(cands.candidates(mem, "ana", state="accepted"), valid_fraction=0.2)
    assert data.report.ok and data.hash == again.hash


def test_checks_name_every_problem() -> None:
    rows = [Example("m1", "Where does Ana live?", "Ana lives in Oslo.", "Oslo"),
            Example("m2", "where does ana live", "Ana lives in Rome.", "Rome"),
            Example("m3", "Where does Ana live?", "Ana lives in Oslo.", "Oslo"),
            Example("m4", "What is Ana's PIN?", "Ana's PIN code is 4711 and secret.", "4711"),
            Example("m5", "What is empty?", " ", ""),
            Example("m6", "Long?", "x" * 3000, "x")]
    report = check(rows, private=["Ana's PIN code is 4711 and secret"])
    found = {(p["check"], p["example"]) for p in report.problems}
    assert found == {("conflict", 1), ("duplicate", 2), ("private_text", 3),
                     ("empty_answer", 4), ("too_long", 5)}
    assert not report.ok and report.to_dict()["examples"] == 6


def test_cli_writes_both_formats_and_refuses_a_leak(tmp_path: Path) -> None:
    data = str(tmp_path / "store")
    with Memory(data, embedder=None) as mem:
        accepted(mem, FACTS)
    out = tmp_path / "ds"
    done = runner.invoke(app, ["train", "dataset", "-u", "ana", "--out", str(out),
                               "--data", data, "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["report"]["ok"] and summary["memories"] == len(FACTS)
    instruction = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    chat = [json.loads(line) for line in (out / "train.chat.jsonl").read_text().splitlines()]
    assert len(instruction) == len(chat) == summary["train"]
    assert set(instruction[0]) == {"instruction", "input", "output"}
    assert [m["role"] for m in chat[0]["messages"]] == ["system", "user", "assistant"]
    assert (out / "valid.jsonl").is_file() and (out / "probe.jsonl").is_file()
    with Memory(data, embedder=None) as mem:
        mem.add("Ana lives in Oslo.", user_id="ana", sensitive=True, dedupe=False)
    leaked = runner.invoke(app, ["train", "dataset", "-u", "ana", "--out", str(out),
                                 "--data", data])
    assert leaked.exit_code == 2 and "private_text" in leaked.output
    assert "problem(s) found" in leaked.stderr
    nothing = runner.invoke(app, ["train", "dataset", "-u", "bob", "--out", str(out),
                                  "--data", data])
    assert nothing.exit_code == 2 and "none accepted" in nothing.stderr


def test_a_configured_model_writes_the_questions(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Over HTTP to the OpenAI stand-in (the real wire format; no paid API runs here)."""
    data = str(tmp_path / "store")
    with Memory(data, embedder=None) as mem:
        accepted(mem, FACTS[:1])
    asked: list[str] = []

    def reply(messages: list[dict[str, Any]]) -> str:
        asked.append(messages[-1]["content"])
        return "1. Which town is Ana's home?\n2. Where is Ana based?\n3. Where does Ana stay?"

    monkeypatch.setenv("OPENAI_API_KEY", "unused")
    out = tmp_path / "ds"
    with OpenAIDouble(reply=reply) as upstream:
        done = runner.invoke(app, ["train", "dataset", "-u", "ana", "--out", str(out),
                                   "--data", data, "--questions-model",
                                   f"openai:double-1@{upstream.base_url}", "--json"])
    assert done.exit_code == 0, done.output
    assert "Ana lives in Oslo." in asked[0]
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert [r["instruction"] for r in rows] == ["Which town is Ana's home?",
                                                "Where is Ana based?", "Where does Ana stay?"]
    assert {r["output"] for r in rows} == {"Ana lives in Oslo."}
