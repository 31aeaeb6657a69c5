"""Access control over real HTTP: keys (hashed in the store), 401/403, loopback without keys,
privacy levels, and a property test that no sequence of requests leaks a private memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from engram.cli.main import app as cli
from engram.memory import Memory
from engram.server.access import ANY_USER, READ, WRITE, Forbidden, Principal, can_read, can_write
from engram.server.app import create_app
from engram.server.background import serving
from engram.server.keys import KeyRing
from engram.server.service import ServerConfig
from engram.store.settings import API_KEYS
from store_contract import Backend

USERS = ("alice", "bob", "carol")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """One server with a read+write key per user, an admin key and a read-only key."""
    data = tmp_path_factory.mktemp("auth") / "store"
    mem = Memory(data, embedder=None)
    ring, now = KeyRing(mem.store), mem.clock.now()
    tokens = {u: ring.create(u, "read,write", now=now)[0] for u in USERS}
    tokens["admin"] = ring.create("ops", "read,write,admin", now=now)[0]
    tokens["alice-read"] = ring.create("alice", "read", now=now)[0]
    with serving(create_app(ServerConfig(data=data), mem)) as url:
        yield url, tokens


def client(url: str, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=30)


def test_keys_are_stored_hashed(tmp_path: Path) -> None:
    with Memory(tmp_path, embedder=None) as mem:
        token, key = KeyRing(mem.store).create("alice", "read", now=mem.clock.now())
        stored = mem.store.get_setting(API_KEYS) or ""
    assert token.startswith("egm_") and token not in stored
    assert json.loads(stored)[0]["token_sha256"] == key.token_sha256


def test_missing_invalid_and_revoked_keys_are_refused(
        world: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, tokens = world
    assert client(url, None).get("/memories").status_code == 401  # keys exist: loopback too
    wrong = client(url, "egm_00000000_nope").get("/memories")
    assert wrong.status_code == 401 and "not known" in wrong.json()["error"]["problem"]
    assert client(url, tokens["alice"]).get("/memories").status_code == 200
    assert client(url, None).get("/health").status_code == 200


def test_revoking_takes_effect_at_once(tmp_path: Path) -> None:
    mem = Memory(tmp_path / "s", embedder=None)
    ring = KeyRing(mem.store)
    token, key = ring.create("alice", "read", now=mem.clock.now())
    with serving(create_app(ServerConfig(data=tmp_path / "s"), mem)) as url:
        assert client(url, token).get("/memories").status_code == 200
        result = CliRunner().invoke(cli, ["keys", "revoke", key.id, "--data",
                                          str(tmp_path / "s")])
        assert result.exit_code == 0, result.output
        refused = client(url, token).get("/memories")
        assert refused.status_code == 401 and "revoked" in refused.json()["error"]["problem"]


def test_scopes_and_users_are_enforced(world: tuple[str, dict[str, str]]) -> None:
    url, tokens = world
    reader = client(url, tokens["alice-read"])
    assert reader.post("/memories", json={"text": "hi"}).status_code == 403
    assert reader.post("/maintain").status_code == 403
    alice = client(url, tokens["alice"])
    assert alice.get("/export").status_code == 403
    other = alice.post("/memories", json={"text": "hi", "user_id": "bob"})
    assert other.status_code == 403 and other.json()["error"]["field"] == "user_id"
    assert alice.post("/search", json={"query": "x", "user_id": "bob"}).status_code == 403
    assert alice.get("/stats").json()["user_id"] == "alice"
    assert client(url, tokens["admin"]).get("/export").status_code == 200


def test_privacy_levels(world: tuple[str, dict[str, str]]) -> None:
    url, tokens = world
    alice, bob, carol = (client(url, tokens[u]) for u in USERS)
    secret = alice.post("/memories", json={"text": "my pin is 4711"}).json()["id"]
    shared = alice.post("/memories", json={"text": "party on friday", "privacy": "shared",
                                           "shared_with": ["bob"]}).json()["id"]
    public = alice.post("/memories", json={"text": "I write a blog",
                                           "privacy": "public"}).json()["id"]
    assert bob.get(f"/memories/{secret}").status_code == 404
    assert bob.get(f"/memories/{secret}/history").status_code == 404
    assert bob.get(f"/memories/{shared}").status_code == 200
    assert carol.get(f"/memories/{shared}").status_code == 404
    assert carol.get(f"/memories/{public}").status_code == 200
    assert bob.delete(f"/memories/{shared}").status_code == 403  # readable, not writable
    seen = {m["id"] for m in bob.get("/memories", params={"user_id": "alice"}).json()}
    assert seen == {shared, public}


def test_loopback_needs_no_key_until_one_exists(tmp_path: Path) -> None:
    mem = Memory(tmp_path / "s", embedder=None)
    with serving(create_app(ServerConfig(data=tmp_path / "s"), mem)) as url:
        assert client(url, None).get("/memories").status_code == 200
        KeyRing(mem.store).create("alice", "read", now=mem.clock.now())
        assert client(url, None).get("/memories").status_code == 401


def test_require_key_refuses_loopback_without_keys(tmp_path: Path) -> None:
    mem = Memory(tmp_path / "s", embedder=None)
    app = create_app(ServerConfig(data=tmp_path / "s", require_key=True), mem)
    with serving(app) as url:
        assert client(url, None).get("/memories").status_code == 401


def test_serving_beyond_loopback_without_a_key_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--data", str(tmp_path)])
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in result.output
    assert "engram keys create" in result.output


def test_keys_cli(tmp_path: Path) -> None:
    run = CliRunner().invoke
    made = run(cli, ["keys", "create", "--user", "alice", "--scope", "read,write",
                     "--data", str(tmp_path)])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("egm_")
    listed = json.loads(run(cli, ["keys", "list", "--json", "--data", str(tmp_path)]).stdout)
    assert listed[0]["user_id"] == "alice" and "token_sha256" not in listed[0]
    bad = run(cli, ["keys", "create", "--user", "a", "--scope", "root", "--data",
                    str(tmp_path)])
    assert bad.exit_code == 2 and "scope" in bad.output


# ---------------------------------------------------------------- the property

ACTION = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(USERS),
              st.sampled_from(["private", "shared", "public"]),
              st.lists(st.sampled_from(USERS), max_size=2)),
    st.tuples(st.just("get"), st.sampled_from(USERS), st.integers(0, 50)),
    st.tuples(st.just("history"), st.sampled_from(USERS), st.integers(0, 50)),
    st.tuples(st.just("list"), st.sampled_from(USERS), st.sampled_from([*USERS, None])),
    st.tuples(st.just("search"), st.sampled_from(USERS), st.sampled_from([*USERS, None])),
    st.tuples(st.just("context"), st.sampled_from(USERS)),
    st.tuples(st.just("update"), st.sampled_from(USERS), st.integers(0, 50)),
    st.tuples(st.just("forget"), st.sampled_from(USERS), st.integers(0, 50)),
)


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(actions=st.lists(ACTION, min_size=1, max_size=12))
def test_no_request_returns_another_users_private_memory(
        world: tuple[str, dict[str, str]], actions: list[tuple[object, ...]]) -> None:
    url, tokens = world
    clients = {u: client(url, tokens[u]) for u in USERS}
    owner: dict[str, tuple[str, str, list[str]]] = {}  # id -> (user, privacy, shared_with)
    ids: list[str] = []

    def allowed(reader: str, memory: dict[str, object]) -> bool:
        user, privacy = memory["user_id"], memory.get("privacy", "private")
        shared_with = memory.get("shared_with", [])
        assert isinstance(shared_with, list)
        return user == reader or privacy == "public" or (
            privacy == "shared" and reader in shared_with)

    def pick(i: object) -> str:
        assert isinstance(i, int)
        return ids[i % len(ids)] if ids else "01NOSUCHMEMORY0000000000000"

    for action in actions:
        kind, user = action[0], str(action[1])
        c = clients[user]
        seen: list[dict[str, object]] = []
        if kind == "add":
            _, _, privacy, shared_with = action
            assert isinstance(shared_with, list)
            made = c.post("/memories", json={
                "text": f"secret of {user} number {len(ids)} about puppies",
                "privacy": privacy, "shared_with": shared_with, "dedupe": False})
            assert made.status_code == 201
            ids.append(made.json()["id"])
            owner[ids[-1]] = (user, str(privacy), list(shared_with))
        elif kind == "get":
            got = c.get(f"/memories/{pick(action[2])}")
            seen = [got.json()] if got.status_code == 200 else []
        elif kind == "history":
            got = c.get(f"/memories/{pick(action[2])}/history")
            if got.status_code == 200:
                seen = [e["payload"]["memory"] for e in got.json()
                        if e["type"] == "memory.added" and e["payload"]]
        elif kind == "list":
            params = {"user_id": str(action[2])} if action[2] else {}
            seen = c.get("/memories", params=params).json()
        elif kind == "search":
            got = c.post("/search", json={"query": "puppies secret", "user_id": action[2]})
            seen = [h["memory"] for h in got.json()] if got.status_code == 200 else []
            assert got.status_code == 200 or action[2] not in (None, user)
        elif kind == "context":
            got = c.post("/context", json={"query": "puppies secret"}).json()
            for other, (who, privacy, _) in owner.items():
                if who != user and privacy == "private":
                    assert other not in got["memory_ids"]
        elif kind in ("update", "forget"):
            target = pick(action[2])
            done = c.patch(f"/memories/{target}", json={"add_tags": ["x"]}) \
                if kind == "update" else c.delete(f"/memories/{target}")
            if target in owner and owner[target][0] != user:
                assert done.status_code in (403, 404)  # never someone else's memory
            if kind == "forget" and done.status_code == 204:
                ids.remove(target)
        for memory in seen:
            assert allowed(user, memory), (user, memory)


def test_access_rules_are_pure_functions(mem: Memory) -> None:
    alice = Principal("alice", frozenset({READ, WRITE}), "k1")
    relay = Principal("relay", frozenset({READ, ANY_USER}), "k2")
    shared = mem.add("trip on friday", user_id="bob", privacy="shared",
                     shared_with=["alice"])
    private = mem.add("my diary", user_id="bob")
    assert can_read(alice, shared) and not can_write(alice, shared)
    assert not can_read(alice, private) and can_read(relay, private)
    assert alice.acting_user(None) == "alice" and relay.acting_user("bob") == "bob"
    with pytest.raises(Forbidden, match="belongs to 'alice'"):
        alice.acting_user("bob")
    with pytest.raises(Forbidden, match="lacks the 'write' scope"):
        relay.require(WRITE)


class ServerAuthContract(Backend):
    """Access control shared through the store, on every backend; run by test_store_*.py."""

    def test_every_server_on_a_store_sees_its_keys(self, store_dir: str | Path) -> None:
        """Two servers on one store (a SQLite file or a PostgreSQL database): a key created or
        revoked through one counts at once on the other."""
        one, two = Memory(store_dir, embedder=None), Memory(store_dir, embedder=None)
        with serving(create_app(ServerConfig(data=store_dir), one)) as first, \
                serving(create_app(ServerConfig(data=store_dir), two)) as second:
            ring = KeyRing(one.store)
            token, key = ring.create("alice", "read,write", now=one.clock.now())
            made = client(first, token).post("/memories", json={"text": "seen everywhere"})
            assert made.status_code == 201
            assert client(second, token).get(f"/memories/{made.json()['id']}").status_code == 200
            assert client(second, None).get("/memories").status_code == 401
            ring.revoke(key.id, now=one.clock.now())
            assert client(second, token).get("/memories").status_code == 401
