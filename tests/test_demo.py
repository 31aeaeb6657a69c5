"""`engram demo` (what `make run` runs) works end to end on a fresh store."""

from pathlib import Path

from typer.testing import CliRunner

from engram import Memory
from engram.cli.demo import load_sample, remember_sample
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
        assert "Alex lives in Prenzlauer Berg, Berlin" in [h.memory.content for h in top]
        stored = mem.count(user_id="alex", status="all")
    again = CliRunner().invoke(app, ["demo", "--data", str(data)])
    assert "already in" in again.output
    with Memory(data) as mem:
        assert mem.count(user_id="alex", status="all") == stored


def test_each_sample_question_is_answered_by_its_top_hit(tmp_path: Path) -> None:
    """What `make run` asks: the expected answer is in the first memory recalled (the district
    with its city, the course level, the sister's birthday, the theme asked for beside a
    dislike, the race time)."""
    sample = load_sample()
    with Memory(tmp_path / "m") as mem:
        remember_sample(mem, sample)
        for q in sample.questions:
            top = mem.search(q["question"], user_id=sample.user_id, limit=1)
            assert top and q["expect"].casefold() in top[0].memory.content.casefold(), (
                q, [h.memory.content for h in top])
