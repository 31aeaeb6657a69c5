"""`engram demo` (what `make run` runs) works end to end on a fresh store."""

from pathlib import Path

from typer.testing import CliRunner

from engram import Memory
from engram.cli.demo import load_sample
from engram.cli.main import app


def test_sample_is_a_multi_week_multi_session_conversation() -> None:
    sample = load_sample()
    assert 40 <= sample.turn_count <= 80
    assert len(sample.sessions) >= 4
    days = {t["at"][:10] for s in sample.sessions for t in s["turns"]}
    assert len(days) >= 4
    user_text = " ".join(t["text"] for s in sample.sessions for t in s["turns"]
                         if t["role"] == "user")
    for q in sample.questions:
        assert q["expect"] in user_text, q


def test_demo_remembers_recalls_and_builds_context(tmp_path: Path) -> None:
    data = tmp_path / "engram-data"
    result = CliRunner().invoke(app, ["demo", "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert "remembered" in result.output and "<user_profile>" in result.output
    exchanges = sum(t["role"] == "user" for s in load_sample().sessions for t in s["turns"])
    with Memory(data) as mem:
        assert mem.count(user_id="alex", tags=["turn"], status="all") == exchanges
        assert mem.verify().ok
        # what Alex said was extracted, and the move superseded the old address
        old = [m for m in mem.list(user_id="alex", status="superseded")
               if m.content == "Alex lives in Lisbon"]
        assert old and old[0].links.superseded_by
        top = mem.search("Where does Alex live now?", user_id="alex", limit=3)
        assert "Alex lives in Prenzlauer Berg" in [h.memory.content for h in top]
        stored = mem.count(user_id="alex", status="all")
    again = CliRunner().invoke(app, ["demo", "--data", str(data)])
    assert "already in" in again.output
    with Memory(data) as mem:
        assert mem.count(user_id="alex", status="all") == stored
