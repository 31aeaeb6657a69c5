"""Training candidates and their curation: which memories are worth learning (weights by type
and feedback, exclusions), accept/reject as events in the log (rebuilt the same), on the
command line and on the dashboard page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from engram.cli.main import app
from engram.errors import InvalidInput
from engram.log.events import EventType
from engram.memory import Memory
from engram.server.app import create_app
from engram.server.service import ServerConfig
from engram.train import candidates as cands

runner = CliRunner()


def add(mem: Memory, text: str, **fields: object) -> str:
    fields.setdefault("tier", "persistent")
    return mem.add(text, user_id="ana", **fields).id  # type: ignore[arg-type]


def test_scores_weigh_type_then_feedback_and_say_why(mem: Memory) -> None:
    fact = add(mem, "Ana lives in Oslo.", confidence=0.8)
    pref = add(mem, "Ana likes opera.", memory_type="preference", confidence=0.8)
    skill = add(mem, "Ana can play the cello.", memory_type="skill", confidence=0.8)
    event = add(mem, "Ana went to Rome.", memory_type="event", confidence=0.8)
    good = add(mem, "Ana's favourite drink is tea.", confidence=0.4)
    bad = add(mem, "Ana works as a baker.", confidence=0.8)
    fixed = add(mem, "Ana works at Lima Bank.", confidence=0.8)
    mem.feedback(good, "good")
    mem.feedback(bad, "bad")
    mem.feedback(fixed, "correction", correction="Ana works at Oslo Bank.")
    found = {c.memory.id: c for c in cands.candidates(mem, "ana")}
    score = {i: found[i].score for i in found}
    assert score[fact] == score[pref] == pytest.approx(0.8)
    assert score[skill] == pytest.approx(0.6 * 0.8)
    assert score[event] == pytest.approx(0.3 * 0.8)
    assert score[good] == pytest.approx(1.5 * 0.6)  # x1.5 weight, confidence 0.4 x1.5
    assert score[bad] == pytest.approx(0.5 * 0.4)  # x0.5 weight, confidence 0.8 x0.5
    assert score[fixed] == pytest.approx(3.0 * 1.0)  # x3, confidence capped at 1
    assert found[fixed].memory.content == "Ana works at Oslo Bank."  # the correction is learnt
    assert "feedback correction x3" in found[fixed].reason and "skill x0.6" in found[skill].reason
    assert cands.candidates(mem, "ana")[0].memory.id == fixed  # best first


def test_only_confirmed_live_and_shareable_memories_are_candidates(mem: Memory) -> None:
    keep = add(mem, "Ana lives in Oslo.")
    confident = add(mem, "Ana likes golf.", tier="long_term", confidence=0.9)
    add(mem, "Ana likes chess.", tier="long_term", confidence=0.5)  # below train.min_confidence
    add(mem, "Ana likes tea.", tier="short_term", confidence=0.9)
    add(mem, "Ana's PIN is 4711.", sensitive=True)
    add(mem, "Ana's diagnosis is private.", tags=["private"])
    gone = add(mem, "Ana's old address is Elm Street.")
    mem.forget(gone)
    old = mem.remember_turn("I live in Paris.", user_id="ana", session_id="s1").extracted[0]
    mem.remember_turn("I moved to Berlin.", user_id="ana", session_id="s2")
    assert mem.get(old.id).status.value == "superseded"
    mem.set_tier(old.id, "persistent", "test")
    found = {c.memory.id for c in cands.candidates(mem, "ana")}
    assert keep in found and confident in found
    assert old.id not in found and gone not in found
    assert not any("PIN" in m.content or "private" in m.content or "chess" in m.content
                   or "tea" in m.content for m in (mem.get(i) for i in found))
    assert cands.candidates(mem, "bob") == []


def test_accept_and_reject_are_events_that_a_rebuild_keeps(mem: Memory) -> None:
    first, second = add(mem, "Ana lives in Oslo."), add(mem, "Ana likes opera.")
    assert cands.curate(mem, [first, second, first], accept=True, user_id="ana") == [
        first, second]
    cands.curate(mem, [second], accept=False)
    states = {c.memory.id: c.state for c in cands.candidates(mem, "ana")}
    assert states == {first: "accepted", second: "rejected"}
    tagged = [e for e in mem.history(second) if e.type is EventType.TAGGED]
    assert [e.payload["add"] for e in tagged if e.payload] == [[cands.ACCEPTED],
                                                              [cands.REJECTED]]
    mem.rebuild()
    assert [c.memory.id for c in cands.candidates(mem, "ana", state="accepted")] == [first]


def test_curation_refuses_what_it_cannot_mean(mem: Memory) -> None:
    short = add(mem, "Ana likes tea.", tier="short_term")
    bob = mem.add("Bob likes jazz.", user_id="bob", tier="persistent").id
    keep = add(mem, "Ana lives in Oslo.")
    with pytest.raises(InvalidInput, match="not a training candidate"):
        cands.curate(mem, [keep, short], accept=True)
    with pytest.raises(InvalidInput, match="another user"):
        cands.curate(mem, [bob], accept=True, user_id="ana")
    with pytest.raises(InvalidInput, match="unknown state"):
        cands.candidates(mem, "ana", state="maybe")
    assert cands.candidates(mem, "ana")[0].state == "pending"  # one transaction: none accepted


def test_cli_lists_accepts_and_rejects_as_json(tmp_path: Path) -> None:
    data = str(tmp_path / "store")
    with Memory(data, embedder=None) as mem:
        oslo, opera = add(mem, "Ana lives in Oslo."), add(mem, "Ana likes opera.")
    listed = runner.invoke(app, ["train", "candidates", "--user", "ana", "--data", data,
                                 "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert {r["id"] for r in rows} == {oslo, opera}
    assert all({"id", "score", "reason"} <= set(r) for r in rows)
    done = runner.invoke(app, ["train", "accept", oslo, "--data", data, "--json"])
    assert json.loads(done.stdout) == {"accepted": [oslo]}
    runner.invoke(app, ["train", "reject", opera, "--data", data])
    accepted = runner.invoke(app, ["train", "candidates", "-u", "ana", "--state", "accepted",
                                   "--data", data, "--json"])
    assert [r["id"] for r in json.loads(accepted.stdout)] == [oslo]
    missing = runner.invoke(app, ["train", "accept", "NOPE", "--data", data])
    assert missing.exit_code == 2 and "NOPE" in missing.stderr
    assert "Traceback" not in missing.output


def test_dashboard_page_lists_candidates_with_working_buttons(tmp_path: Path) -> None:
    with Memory(tmp_path / "store", embedder=None) as mem:
        oslo, opera = add(mem, "Ana lives in Oslo."), add(mem, "Ana likes opera.")
    application = create_app(ServerConfig(data=tmp_path / "store", readers=0))

    with TestClient(application, base_url="http://127.0.0.1",
                    client=("127.0.0.1", 50000)) as client:
        page = client.get("/dashboard/train", params={"user": "ana"})
        assert page.status_code == 200
        assert "Ana lives in Oslo." in page.text and page.text.count('class="accept"') == 2
        token = re.findall(r'name="csrf_token" value="([^"]+)"', page.text)
        assert len(token) == 2 and token[0] == client.cookies["engram_csrf"]
        forged = client.post("/dashboard/train", data={"user": "ana", "memory_id": [oslo],
                                                       "action": "accept"})
        assert forged.status_code == 403  # the form's CSRF token is required (issue 19)
        done = client.post("/dashboard/train", data={"user": "ana", "memory_id": [oslo],
                                                     "action": "accept", "csrf_token": token[0]},
                           follow_redirects=False)
        assert done.status_code == 303
        client.post("/dashboard/train", data={"user": "ana", "memory_id": opera,
                                              "action": "reject", "csrf_token": token[0]})
        after = client.get("/dashboard/train", params={"user": "ana", "state": "accepted"})
        assert "Ana lives in Oslo." in after.text and "Ana likes opera." not in after.text
        refused = client.post("/dashboard/train", data={"user": "bob", "memory_id": oslo,
                                                        "action": "accept",
                                                        "csrf_token": token[0]})
        assert "another user" in refused.text
    with Memory(tmp_path / "store", embedder=None) as mem:
        assert {c.memory.id: c.state for c in cands.candidates(mem, "ana")} == {
            oslo: "accepted", opera: "rejected"}
