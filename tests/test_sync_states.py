"""Saved model states travel with sync: `engram sync export --states` writes them (and the
Ollama contexts) beside the bundle, `engram sync import` checks them before the events and takes
them in after, so a session saved on one store (a tiny Llama built here) resumes from its
restored state on the other; `engram sync peer --states` exchanges them with a real
`engram serve` over HTTP, each side sending only the chunks the other lacks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from engram import Memory
from engram.cli.main import app
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.keys import KeyRing
from engram.server.service import ServerConfig
from engram.state import peer as state_peer
from engram.state.store import StateStore
from engram.store.settings import OLLAMA_CONTEXT
from state_model import prompt, tiny_path

runner = CliRunner()


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def generate(data: Path, session: str, file: Path) -> dict[str, object]:
    return dict(json.loads(cli("state", "generate", "--model", f"hf:{tiny_path()}",
                               "--session", session, "--prompt-file", str(file),
                               "--max-new-tokens", "2", "--json", "--data", str(data))))


@pytest.fixture
def laptop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store with a memory, a saved session s1 and an Ollama context of alice's chat."""
    monkeypatch.delenv("ENGRAM_STATE", raising=False)
    store = tmp_path / "laptop"
    with Memory(store, embedder=None) as mem:
        mem.add("Alice likes green tea", user_id="alice")
        mem.store.set_setting(OLLAMA_CONTEXT, "[1, 2, 3]", "alice:chat:ollama:phi3")
    (tmp_path / "turn1.txt").write_text(prompt(6))
    assert generate(store, "s1", tmp_path / "turn1.txt")["restored"] is False
    return store


def test_a_session_saved_on_one_store_resumes_on_the_other(laptop: Path,
                                                           tmp_path: Path) -> None:
    board, bundle = tmp_path / "board", tmp_path / "out.bundle"
    sent = json.loads(cli("sync", "export", str(bundle), "--states", "--json",
                          "--data", str(laptop)))
    assert sent["events"] > 0 and sent["states"]["sessions"] == ["s1"]
    assert sent["states"]["contexts"] == 1 and (tmp_path / "out.bundle.states.tar").is_file()

    came = json.loads(cli("sync", "import", str(bundle), "--json", "--data", str(board)))
    assert came["new"] == sent["events"] and came["states"]["sessions"] == ["s1"]
    listed = json.loads(cli("state", "list", "--json", "--data", str(board)))
    assert [s["session"] for s in listed["sessions"]] == ["s1"]
    assert listed["sessions"][0]["model"] == "tiny"
    (tmp_path / "turn2.txt").write_text(prompt(6) + " Ivo likes ferns.")
    resumed = generate(board, "s1", tmp_path / "turn2.txt")
    assert resumed["restored"] is True and int(str(resumed["prefilled_tokens"])) <= 8
    with Memory(board, embedder=None) as mem:
        assert [m.content for m in mem.list(user_id="alice")] == ["Alice likes green tea"]
        assert mem.store.settings_of(OLLAMA_CONTEXT) == {"alice:chat:ollama:phi3": "[1, 2, 3]"}
    again = json.loads(cli("sync", "import", str(bundle), "--json", "--data", str(board)))
    assert again["new"] == 0 and again["states"]["sessions"] == ["s1"]  # twice: the same


def test_a_damaged_states_file_refuses_the_whole_import(laptop: Path, tmp_path: Path) -> None:
    board, bundle = tmp_path / "board", tmp_path / "out.bundle"
    cli("sync", "export", str(bundle), "--states", "--data", str(laptop))
    beside = tmp_path / "out.bundle.states.tar"
    damaged = bytearray(beside.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # inside a chunk (they are the bulk): its checksum fails
    beside.write_bytes(bytes(damaged))
    said = cli("sync", "import", str(bundle), "--data", str(board), code=2)
    assert "states.tar" in said and "Traceback" not in said
    with Memory(board, embedder=None) as mem:
        assert mem.list(user_id="alice") == []  # the events were not applied either
    assert json.loads(cli("state", "list", "--json", "--data", str(board)))["sessions"] == []


def test_user_scope_and_an_export_without_states(laptop: Path, tmp_path: Path) -> None:
    cli("state", "branch", "s1", "alice:chat:hf:tiny", "--data", str(laptop))
    bundle, beside = tmp_path / "a.bundle", tmp_path / "a.bundle.states.tar"
    sent = json.loads(cli("sync", "export", str(bundle), "--states", "--user", "alice",
                          "--json", "--data", str(laptop)))
    assert sent["states"]["sessions"] == ["alice:chat:hf:tiny"]
    assert sent["states"]["contexts"] == 1
    sent = json.loads(cli("sync", "export", str(bundle), "--states", "--user", "bob",
                          "--json", "--data", str(laptop)))
    assert sent["states"] is None and not beside.exists()  # bob has none: no file
    cli("sync", "export", str(bundle), "--states", "--data", str(laptop))
    assert "saved states" in cli("sync", "export", str(bundle), "--states",
                                 "--data", str(laptop))
    sent = json.loads(cli("sync", "export", str(bundle), "--json", "--data", str(laptop)))
    assert sent["states"] is None and not beside.exists()  # an older one never travels


def test_sync_peer_carries_states_both_ways_and_each_chunk_once(laptop: Path,
                                                               tmp_path: Path) -> None:
    board = tmp_path / "board"
    with Memory(board, embedder=None) as mem, \
            serving(create_app(ServerConfig(data=board), mem)) as url:
        done = json.loads(cli("sync", "peer", url, "--states", "--json", "--data", str(laptop)))
        assert done["pushed_new"] > 0 and done["states"]["received"] is None
        sent = done["states"]["sent"]
        assert sent["sessions"] == ["s1"] and sent["chunks"] > 0 and sent["contexts"] == 1
        assert mem.store.settings_of(OLLAMA_CONTEXT) == {"alice:chat:ollama:phi3": "[1, 2, 3]"}
        cli("state", "branch", "s1", "s2", "--data", str(board))  # made on the board
        again = json.loads(cli("sync", "peer", url, "--states", "--json", "--data",
                               str(laptop)))["states"]
        assert sorted(again["received"]["sessions"]) == ["s1", "s2"]
        assert again["received"]["chunks"] == 0 and again["sent"]["chunks"] == 0  # held
    (tmp_path / "turn2.txt").write_text(prompt(6) + " Ivo likes ferns.")
    assert generate(board, "s1", tmp_path / "turn2.txt")["restored"] is True
    listed = json.loads(cli("state", "list", "--json", "--data", str(laptop)))
    assert sorted(s["session"] for s in listed["sessions"]) == ["s1", "s2"]


def test_a_key_of_one_user_cannot_push_another_users_states(laptop: Path,
                                                            tmp_path: Path) -> None:
    board = tmp_path / "board"
    with Memory(laptop, embedder=None) as mem:
        tar, _ = state_peer.packed(StateStore(laptop / "state"), mem.store, None, [])
    with Memory(board, embedder=None) as mem:
        token, _ = KeyRing(mem.store).create("alice", "sync",
                                             now=datetime(2026, 1, 5, tzinfo=UTC))
        with serving(create_app(ServerConfig(data=board), mem)) as url:
            refused = httpx.post(f"{url}/sync/states/push", json={"tar": tar},
                                 headers={"Authorization": f"Bearer {token}"})
            assert refused.status_code == 403
            assert "'s1', not a chat of user 'alice'" in refused.text
            middle = len(tar) // 2  # inside a chunk: its checksum fails
            damaged = tar[:middle] + ("B" if tar[middle] == "A" else "A") + tar[middle + 1:]
            garbled = httpx.post(f"{url}/sync/states/push", json={"tar": damaged},
                                 headers={"Authorization": f"Bearer {token}"})
            assert garbled.status_code == 409 and "not a whole state export" in garbled.text
    assert StateStore(board / "state").sessions() == []
