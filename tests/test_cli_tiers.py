"""`engram config`, `maintain`, `feedback`, `list --status` and why `show` gives a tier."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engram.cli.main import app

runner = CliRunner()


@pytest.fixture
def data(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENGRAM_DATA", str(store_dir))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("ENGRAM_CONFIG", raising=False)
    return store_dir


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_config_show_and_set_write_only_what_differs(data: Path) -> None:
    shown = json.loads(cli("config", "show", "--json"))
    assert shown["short_term.ttl_hours"] == 72.0 and shown["long_term.min_corroborations"] == 2
    cli("config", "set", "short_term.ttl_hours", "24")
    cli("config", "set", "persistent.identity_tag", "core")
    written = tomllib.loads((data / "engram.toml").read_text())
    assert written == {"short_term": {"ttl_hours": 24.0}, "persistent": {"identity_tag": "core"}}
    assert json.loads(cli("config", "show", "--json"))["short_term.ttl_hours"] == 24.0
    assert "meaning" in cli("config", "show")


@pytest.mark.parametrize(("key", "value", "names"), [
    ("short_term.ttl", "24", "short_term.ttl"),
    ("short_term.ttl_hours", "soon", "short_term.ttl_hours"),
    ("long_term.min_corroborations", "1.5", "long_term.min_corroborations"),
    ("decay.half_life_days", "-3", "decay.half_life_days"),
])
def test_bad_settings_name_the_key_and_change_nothing(data: Path, key: str, value: str,
                                                      names: str) -> None:
    result = runner.invoke(app, ["config", "set", "--", key, value])
    assert result.exit_code == 2 and names in result.output
    assert not (data / "engram.toml").exists()


def test_a_broken_config_file_is_reported(data: Path) -> None:
    data.mkdir(parents=True)
    (data / "engram.toml").write_text("[short_term\n")
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 2 and "engram.toml" in result.output


def test_maintain_feedback_status_and_why(data: Path) -> None:
    cli("config", "set", "short_term.ttl_hours", "0")  # everything unconfirmed expires now
    kept = cli("add", "Ada prefers tea", "--user", "ada").strip()
    gone = cli("add", "Ada is tired", "--user", "ada", "--type", "context").strip()
    assert "confidence 0.75" in cli("feedback", kept, "good")
    report = json.loads(cli("maintain", "--json"))
    assert (report["promoted"], report["expired"]) == (1, 1)
    assert json.loads(cli("show", kept, "--json"))["why"].startswith(
        "long_term since") and "validated by the user" in cli("show", kept)
    assert "expired on" in json.loads(cli("show", gone, "--json"))["why"]
    assert [m["id"] for m in json.loads(cli("list", "--json"))] == [kept]
    assert [m["id"] for m in json.loads(cli("list", "--status", "expired", "--json"))] == [gone]
    assert len(json.loads(cli("list", "--status", "all", "--json"))) == 2
    assert "rating" in cli("feedback", kept, "meh", code=2)
    assert "status" in cli("list", "--status", "zombie", code=2)
