"""The `engram` command, driven through Typer's CliRunner against a real store."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engram.cli.main import app

runner = CliRunner()


@pytest.fixture
def data(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENGRAM_DATA", str(store_dir))
    monkeypatch.setenv("COLUMNS", "200")  # so Rich does not abbreviate table headers
    return store_dir


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_add_search_show_forget(data: Path) -> None:
    cli("init")
    memory_id = cli("add", "Caroline adopted a puppy named Oscar", "--user", "u1", "--tag",
                    "pets", "--meta", '{"dia_id": "D7:3"}', "--at", "2023-05-08T13:56:00").strip()
    cli("add", "Melanie paints sunsets", "--user", "u1")
    hits = json.loads(cli("search", "puppy", "--user", "u1", "--json"))
    assert [h["memory"]["id"] for h in hits] == [memory_id]
    assert hits[0]["memory"]["metadata"] == {"dia_id": "D7:3"}
    assert "Oscar" in cli("search", "puppy", "--user", "u1")
    assert json.loads(cli("search", "puppy", "--user", "nobody", "--json")) == []
    shown = json.loads(cli("show", memory_id, "--json"))
    assert shown["memory"]["tags"] == ["pets"]
    assert [e["type"] for e in shown["history"]] == ["memory.added"]
    cli("tag", memory_id, "--add", "dog")
    assert "memory.tagged" in cli("show", memory_id)
    cli("forget", memory_id)
    cli("show", memory_id, code=2)
    assert json.loads(cli("search", "puppy", "--user", "u1", "--json")) == []


def test_list_filters_and_json(data: Path) -> None:
    cli("add", "a preference", "--user", "u1", "--type", "preference", "--session", "s1")
    cli("add", "a fact", "--user", "u2")
    listed = json.loads(cli("list", "--json"))
    assert {m["content"] for m in listed} == {"a preference", "a fact"}
    only = json.loads(cli("list", "--type", "preference", "--json"))
    assert [m["content"] for m in only] == ["a preference"]
    assert json.loads(cli("list", "--user", "u2", "--session", "s1", "--json")) == []


def test_data_option_beats_default(tmp_path: Path) -> None:
    cli("add", "hello", "--data", str(tmp_path / "other"))
    assert (tmp_path / "other" / "engram.db").exists()


def test_stats_verify_rebuild(data: Path) -> None:
    cli("add", "one", "--user", "u")
    cli("add", "two", "--user", "u", "--tier", "long_term")
    stats = json.loads(cli("stats", "--json"))
    assert stats["memories"] == 2 and stats["by_tier"] == {"short_term": 1, "long_term": 1}
    assert json.loads(cli("verify", "--json"))["ok"] is True
    assert "rebuilt 2 memories" in cli("rebuild")


def test_export_import_round_trip(data: Path, tmp_path: Path) -> None:
    cli("add", "exported memory", "--user", "u")
    dump = tmp_path / "events.jsonl"
    cli("export", "--out", str(dump))
    assert cli("export") == dump.read_text()
    target = tmp_path / "copy"
    assert "imported 1 events" in cli("import", str(dump), "--data", str(target))
    assert json.loads(cli("list", "--json", "--data", str(target)))[0]["content"] == \
        "exported memory"


def test_export_parquet(data: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    cli("add", "in a table", "--user", "u", "--tag", "x", "--meta", '{"k": 1}')
    out = tmp_path / "memories.parquet"
    cli("export", "--parquet", str(out))
    table = pq.read_table(out).to_pylist()
    assert table[0]["content"] == "in a table" and table[0]["tags"] == ["x"]
    assert json.loads(table[0]["metadata"]) == {"k": 1}


@pytest.mark.parametrize("args, message", [
    (["add", "   "], "text: is empty"),
    (["add", "x", "--type", "gossip"], "memory_type: unknown value 'gossip'"),
    (["add", "x", "--tier", "forever"], "tier: unknown value"),
    (["add", "x", "--meta", "{not json"], "--meta: not valid JSON"),
    (["add", "x", "--meta", "[1]"], "--meta: expected a JSON object"),
    (["add", "x", "--at", "yesterday"], "at: 'yesterday' is not a date-time"),
    (["search", "  "], "query: is empty"),
    (["search", "x", "--limit", "0"], "limit: 0 is out of range"),
    (["show", "no-such-id"], "no memory 'no-such-id'"),
    (["import", "/no/such/file.jsonl"], "does not exist"),
])
def test_bad_input_exits_2_with_one_clear_line(data: Path, args: list[str],
                                              message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


def test_bad_input_leaves_the_store_unchanged(data: Path, tmp_path: Path) -> None:
    cli("add", "keep", "--user", "u")
    before = cli("export")
    big = "x" * (64 * 1024 + 1)
    assert "over the limit" in cli("add", big, code=2)
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(before.encode()[:-30])
    assert "line 1" in cli("import", str(broken), "--data", str(tmp_path / "fresh"), code=2)
    assert cli("export") == before


def test_search_explain_shows_score_parts(data: Path) -> None:
    cli("add", "Caroline adopted a puppy named Oscar", "--user", "u1")
    shown = cli("search", "puppy", "--user", "u1", "--explain")
    for part in ("keyword", "vector", "recency", "confidence", "Oscar"):
        assert part in shown
    hit = json.loads(cli("search", "puppy", "--user", "u1", "--json"))[0]
    assert hit["components"]["keyword"] > 0 and hit["components"]["vector"] > 0


def test_reembed_unknown_spec_is_a_clear_error(data: Path) -> None:
    cli("add", "x", "--user", "u")
    assert "unknown embedder 'word2vec'" in cli("reembed", "--embedder", "word2vec", code=2)
