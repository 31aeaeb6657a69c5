"""`engram state …` against a real store and a tiny Llama model folder: generate resumes a
session (only the new text prefilled), list/show/branch/verify/gc/export/import, and bad input
answered with one line and exit code 2."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engram import Memory
from engram.cli.main import app
from engram.store.settings import OLLAMA_CONTEXT
from state_model import prompt, tiny_path

runner = CliRunner()


@pytest.fixture
def data(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENGRAM_DATA", str(store_dir))
    monkeypatch.delenv("ENGRAM_STATE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return store_dir


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def generate(session: str, file: Path, *extra: str) -> dict[str, object]:
    return dict(json.loads(cli("state", "generate", "--model", f"hf:{tiny_path()}", "--session",
                               session, "--prompt-file", str(file), "--max-new-tokens", "4",
                               "--json", *extra)))


def test_generate_resumes_a_session_and_the_state_commands_see_it(
        data: Path, tmp_path: Path) -> None:
    first = tmp_path / "turn1.txt"
    first.write_text(prompt(10))
    answer = generate("s1", first)
    assert answer["restored"] is False and int(str(answer["prefilled_tokens"])) > 100
    assert isinstance(answer["text"], str) and float(str(answer["ttft_ms"])) > 0
    second = tmp_path / "turn2.txt"
    second.write_text(prompt(10) + " Ivo likes ferns.")
    again = generate("s1", second)
    assert again["restored"] is True and int(str(again["prefilled_tokens"])) <= 8

    listed = json.loads(cli("state", "list", "--json"))
    assert [s["session"] for s in listed["sessions"]] == ["s1"]
    assert listed["sessions"][0]["model"] == "tiny" and listed["bytes"] > 0
    cli("state", "branch", "s1", "s2")
    shown = json.loads(cli("state", "show", "s2", "--json"))
    assert shown["parent"] == "s1" and shown["layers"] == 2 and shown["dtype"] == "float32"
    assert "chunks: " in cli("state", "show", "s2")
    assert json.loads(cli("state", "verify", "--json"))["ok"] is True
    assert generate("s2", second)["restored"] is True

    bundle = tmp_path / "states.tar"
    with Memory(data) as mem:
        mem.store.set_setting(OLLAMA_CONTEXT, "[1, 2, 3]", "alice:s1:ollama:phi3")
    cli("state", "export", str(bundle), "--session", "s1")
    other = tmp_path / "board"
    carried = json.loads(cli("state", "import", str(bundle), "--data", str(other), "--json"))
    assert carried["sessions"] == ["s1"] and carried["contexts"] == 1
    with Memory(other) as mem:
        assert mem.store.get_setting(OLLAMA_CONTEXT, "alice:s1:ollama:phi3") == "[1, 2, 3]"
    on_board = json.loads(cli("state", "generate", "--model", f"hf:{tiny_path()}", "--session",
                              "s1", "--prompt-file", str(second), "--max-new-tokens", "4",
                              "--json", "--data", str(other)))
    assert on_board["restored"] is True and on_board["text"] == again["text"]

    gone = json.loads(cli("state", "gc", "--drop", "s1", "--drop", "s2", "--json"))
    assert gone["dropped"] == ["s1", "s2"] and gone["bytes"] == 0


def test_a_tampered_state_is_reported_by_verify_and_refused_by_generate(
        data: Path, tmp_path: Path) -> None:
    file = tmp_path / "p.txt"
    file.write_text(prompt(4))
    generate("s", file)
    chunk = next((data / "state" / "chunks").glob("*/*.safetensors"))
    chunk.write_bytes(chunk.read_bytes()[:-10])
    assert "truncated" in cli("state", "verify", code=1)
    refused = runner.invoke(app, ["state", "generate", "--model", f"hf:{tiny_path()}",
                                  "--session", "s", "--prompt-file", str(file)])
    assert refused.exit_code == 2 and "engram state verify" in refused.output
    assert "Traceback" not in refused.output
    cli("state", "gc")
    assert generate("s", file)["restored"] is False


@pytest.mark.parametrize(("args", "says"), [
    (["--model", "ollama:phi3"], "is not a local model"),
    (["--model", "hf:/nowhere/at/all"], "no Hugging Face model folder"),
    (["--storage", "int4"], "'int4' is not a storage type"),
])
def test_bad_input_is_one_line_and_exit_code_2(
        data: Path, tmp_path: Path, args: list[str], says: str) -> None:
    file = tmp_path / "p.txt"
    file.write_text("hello")
    base = {"--model": f"hf:{tiny_path()}", "--session": "s", "--prompt-file": str(file)}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = runner.invoke(app, ["state", "generate", *[x for kv in base.items() for x in kv]])
    assert result.exit_code == 2, result.output
    assert says in result.output and len(result.output.strip().splitlines()) == 1


def test_import_of_a_damaged_file_changes_nothing(data: Path, tmp_path: Path) -> None:
    file = tmp_path / "p.txt"
    file.write_text(prompt(4))
    generate("s", file)
    bundle = tmp_path / "states.tar"
    cli("state", "export", str(bundle))
    with tarfile.open(bundle) as tar:
        chunk = next(m for m in tar.getmembers() if m.name.startswith("chunks/"))
    raw = bytearray(bundle.read_bytes())
    raw[chunk.offset_data + chunk.size - 7] ^= 0xFF  # inside a chunk's tensor data
    bundle.write_bytes(bytes(raw))
    other = tmp_path / "board"
    result = runner.invoke(app, ["state", "import", str(bundle), "--data", str(other)])
    assert result.exit_code == 2, result.output
    assert "is not a whole state export (does not match its checksum" in result.output
    assert not list((other / "state").glob("**/*.safetensors"))
    bundle.write_bytes(bytes(raw[: chunk.offset_data + 100]))  # cut off in the middle
    result = runner.invoke(app, ["state", "import", str(bundle), "--data", str(other)])
    assert result.exit_code == 2 and "state export" in result.output
    assert not list((other / "state").glob("**/*.safetensors"))


def test_state_max_bytes_from_engram_config_caps_what_is_kept(data: Path, tmp_path: Path) -> None:
    file = tmp_path / "p.txt"
    file.write_text(prompt(6))
    generate("big", file)
    size = json.loads(cli("state", "list", "--json"))["bytes"]
    cli("config", "set", "state.max_bytes", str(size + size // 2))
    file.write_text(prompt(6, seed=9))
    generate("other", file)  # both do not fit: the least recently used goes
    listed = json.loads(cli("state", "list", "--json"))
    assert [s["session"] for s in listed["sessions"]] == ["other"]
    assert listed["bytes"] <= listed["max_bytes"] == size + size // 2
