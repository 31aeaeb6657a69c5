"""Forget means forget: no byte of the text survives anywhere in the store.

SQLite only: it reads the store's files (test_postgres.py checks every PostgreSQL table)."""

from pathlib import Path

from engram import EventType, ManualClock, Memory

SECRET = "Zanzibarian quokka passphrase plumwyvern"


def store_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def test_forgotten_text_is_gone_from_every_file(store_dir: Path, clock: ManualClock) -> None:
    mem = Memory(store_dir, clock=clock)
    for i in range(200):
        mem.add(f"ordinary memory number {i} about tea and walks", user_id="u")
    secret = mem.add(SECRET, user_id="u", tags=["private"])
    mem.update(secret.id, text=SECRET + " (updated)")
    mem.tag(secret.id, add=["vault"])
    mem.search("quokka passphrase", user_id="u")
    mem.flush()
    for i in range(50):
        mem.add(f"later memory {i}", user_id="u")
    assert SECRET.encode() in store_bytes(store_dir)

    mem.forget(secret.id, reason="user asked")

    raw = store_bytes(store_dir)  # the WAL and shm files included, while the store is open
    for needle in (SECRET, "Zanzibarian", "quokka", "zanzibarian", "plumwyvern"):
        assert needle.encode() not in raw, needle
    assert mem.search("quokka", user_id="u") == []
    history = mem.history(secret.id)
    assert history[-1].type is EventType.FORGOTTEN
    assert all(e.payload is None for e in history[:-1])
    assert mem.verify().ok  # redacted payloads keep their hashes
    assert mem.rebuild() == 250
    mem.close()
    raw = store_bytes(store_dir)
    assert b"quokka" not in raw and b"Zanzibarian" not in raw


def test_forget_drops_the_vectors_of_every_text_the_memory_had(store_dir: Path,
                                                               clock: ManualClock) -> None:
    """A vector can be inverted into its text: the old text's vector must go too."""
    with Memory(store_dir, clock=clock) as mem:  # the default MiniLM
        kept = mem.add("Lisbon trams are yellow", user_id="u")
        secret = mem.add(SECRET, user_id="u")
        mem.update(secret.id, text="nothing to see here")
        assert mem.stats()["vectors"] == {"all-MiniLM-L6-v2": 3}
        mem.forget(secret.id)
        assert mem.stats()["vectors"] == {"all-MiniLM-L6-v2": 1}
        assert mem.search("yellow trams", user_id="u")[0].memory.id == kept.id
