"""Saved KV caches on disk: one manifest per session, content-addressed chunks shared between
sessions, least-recently-used eviction under a byte cap, crash-safe writes.

    root/sessions/<sha256 of the session name>.json   the manifest (`manifest.py`)
    root/chunks/<aa>/<address>.safetensors            keys and values of a span of positions

A save writes only the chunks not already held, each to a temporary file renamed into place,
and the manifest last: a save that fails part way leaves the session's previous state whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engram.clock import Clock, SystemClock
from engram.errors import InvalidInput
from engram.state.codec import Layers, Part, Unsealed, check_storage, decode_into, encode, unseal
from engram.state.errors import StateCorrupt, StateMismatch, StateNotSaved
from engram.state.fingerprint import Fingerprint, tokens_hash
from engram.state.manifest import Chunk, Manifest, address, common_prefix, spans
from engram.state.settings import DEFAULT_MAX_BYTES

CHUNK_TOKENS = 256


@dataclass(frozen=True, slots=True)
class Restored:
    """The part of a prompt a saved state covers: its first `tokens` positions."""

    tokens: int
    layers: Layers | None
    source: str  # "session", "shared prefix" or "" (nothing restored)


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    problem: str


class StateStore:
    """The saved states under one folder (by default the store's `state/` folder)."""

    def __init__(self, root: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
                 chunk_tokens: int = CHUNK_TOKENS, clock: Clock | None = None) -> None:
        if chunk_tokens < 1:
            raise InvalidInput("chunk_tokens", f"must be at least 1, got {chunk_tokens}",
                               f"use e.g. {CHUNK_TOKENS}")
        self.root = Path(root)
        self.max_bytes, self.chunk_tokens = max_bytes, chunk_tokens
        self.clock = clock or SystemClock()

    # ------------------------------------------------------------ reading

    def manifest(self, session: str) -> Manifest | None:
        """The session's saved state, or None; a damaged manifest raises StateCorrupt."""
        path = self.manifest_path(session)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return Manifest.from_json(text)
        except (ValueError, KeyError, TypeError) as exc:
            raise StateCorrupt(str(path), str(exc)) from None

    def sessions(self) -> list[Manifest]:
        """Every readable saved state, most recently used first (damaged ones: `verify`)."""
        found = []
        for path in sorted(self._sessions_dir().glob("*.json")):
            try:
                found.append(Manifest.from_json(path.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError, OSError):
                continue
        return sorted(found, key=lambda m: (m.used_at, m.session), reverse=True)

    def require(self, session: str) -> Manifest:
        manifest = self.manifest(session)
        if manifest is None:
            raise InvalidInput("session", f"no saved state for {session!r}",
                               "list saved sessions with `engram state list`")
        return manifest

    def bytes_used(self) -> int:
        return sum(p.stat().st_size for p in self.chunk_files())

    def restore(self, session: str, fingerprint: Fingerprint, ids: Sequence[int],
                dtype: str, storage: str = "native") -> Restored:
        """The longest saved prefix of `ids` (at most all but its last token, whose logits the
        next step needs): from the session's own state, or from chunks of any session that
        began with the same tokens. A session saved by another model is refused."""
        limit = len(ids) - 1
        manifest = self.manifest(session)
        own = 0
        if manifest is not None:
            self._check(manifest, fingerprint)
            own = min(common_prefix(manifest.tokens, ids), limit)
        shared = self._shared_prefix(fingerprint, check_storage(storage), ids, limit)
        if max(own, shared) <= 0:
            return Restored(0, None, "")
        if manifest is not None and own >= shared:
            chunks = [c for c in manifest.chunks if c.start < own]
            layers = self._read(chunks, own, fingerprint, dtype)
            self._touch(manifest)
            return Restored(own, layers, "session")
        ends = [end for _, end in spans(shared, self.chunk_tokens)]
        chunks = [Chunk(end - self.chunk_tokens, end,
                        address(fingerprint, storage, ids[:end]), 0) for end in ends]
        return Restored(shared, self._read(chunks, shared, fingerprint, dtype), "shared prefix")

    def load(self, session: str, fingerprint: Fingerprint, prefix: Sequence[int],
             dtype: str) -> Layers:
        """Exactly the saved state of `session` for `prefix`: any difference is refused."""
        manifest = self.require(session)
        self._check(manifest, fingerprint)
        if tokens_hash(prefix) != manifest.prefix:
            raise StateMismatch("prefix", session, f"{manifest.prefix} ({len(manifest.tokens)} "
                                "tokens)", f"{tokens_hash(prefix)} ({len(prefix)} tokens)")
        layers = self._read(list(manifest.chunks), len(prefix), fingerprint, dtype)
        self._touch(manifest)
        return layers

    # ------------------------------------------------------------ writing

    def save(self, session: str, fingerprint: Fingerprint, ids: Sequence[int], layers: Layers,
             storage: str = "native", *, memories: dict[str, list[int]] | None = None,
             turns: int = 0, merged_at: int | None = None, parent: str | None = None
             ) -> Manifest:
        """Save the state of `session` (its keys and values for `ids`), sharing the chunks
        already held; then evict down to `max_bytes`. `merged_at`: the state was merged, its
        positions from there on were not prefilled (a continuation of it stays so)."""
        from engram.state.cache import cut, length

        check_storage(storage)
        if length(layers) != len(ids):
            raise InvalidInput("ids", f"{len(ids)} tokens for a cache of {length(layers)}",
                               "pass the token ids the cache was computed from")
        chunks = []
        with self.locked():
            try:
                old = self.manifest(session)
                if merged_at is None and old is not None and old.merged_at is not None and \
                        common_prefix(old.tokens, ids) > old.merged_at:
                    merged_at = old.merged_at
                for start, end in spans(len(ids), self.chunk_tokens):
                    where = address(fingerprint, storage, ids[:end], merged_at)
                    path = self.chunk_path(where)
                    if not path.exists():
                        meta = {"address": where, "fingerprint": fingerprint.key(),
                                "start": str(start), "end": str(end)}
                        write_atomic(path, encode(cut(layers, start, end), storage, meta))
                    chunks.append(Chunk(start, end, where, path.stat().st_size))
                now = self.clock.now().isoformat()
                kept = {} if old is None else {  # earlier memories still in the prefix
                    k: v for k, v in old.memories.items()
                    if v[1] <= common_prefix(old.tokens, ids)}
                manifest = Manifest(session, fingerprint, storage, tuple(ids), tuple(chunks),
                                    old.created_at if old else now, now,
                                    parent or (old.parent if old else None),
                                    kept | (memories or {}), turns, merged_at)
                write_atomic(self.manifest_path(session), [manifest.to_json().encode()])
            except OSError as exc:
                raise StateNotSaved(session, exc) from exc
            self._evict(self.max_bytes)
        return manifest

    def branch(self, session: str, new: str) -> Manifest:
        """A new session starting from `session`'s saved state: its chunks are shared."""
        with self.locked():
            source = self.require(session)
            if self.manifest(new) is not None:
                raise InvalidInput("new", f"session {new!r} already has a saved state",
                                   "pick another name, or drop it with "
                                   f"`engram state gc --drop {new}`")
            now = self.clock.now().isoformat()
            manifest = Manifest(new, source.fingerprint, source.storage, source.tokens,
                                source.chunks, now, now, session, dict(source.memories),
                                source.turns, source.merged_at)
            write_atomic(self.manifest_path(new), [manifest.to_json().encode()])
        return manifest

    def drop(self, session: str) -> bool:
        """Forget a session's saved state (its chunks go at the next gc unless shared)."""
        with self.locked():
            path = self.manifest_path(session)
            existed = path.exists()
            path.unlink(missing_ok=True)
        return existed

    def gc(self, max_bytes: int | None = None, *, repair: bool = True) -> tuple[list[str], int]:
        """Drop what `verify` finds broken (with `repair`: damaged chunks, and the sessions
        that need them re-prefill), chunks no session uses and leftovers of failed saves, then
        evict to the cap: the sessions dropped and the bytes freed."""
        with self.locked():
            dropped = self._repair() if repair else []
            evicted, freed = self._evict(self.max_bytes if max_bytes is None else max_bytes)
            return dropped + evicted, freed

    def verify(self) -> list[Problem]:
        """Every manifest and chunk checked (checksums, lengths, addresses): what is wrong."""
        problems: list[Problem] = []
        for path in sorted(self._sessions_dir().glob("*.json")):
            try:
                manifest = Manifest.from_json(path.read_text(encoding="utf-8"))
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(Problem(str(path), str(exc)))
                continue
            for chunk in manifest.chunks:
                if not self.chunk_path(chunk.address).exists():
                    problems.append(Problem(str(self.chunk_path(chunk.address)),
                                            f"is missing (session {manifest.session!r})"))
        for path in self.chunk_files():
            try:
                meta = unseal(path.read_bytes())
            except Unsealed as exc:
                problems.append(Problem(str(path), str(exc)))
                continue
            if meta.get("address") != path.stem:
                problems.append(Problem(str(path), "is stored under another chunk's address"))
        return problems

    # ------------------------------------------------------------ inside

    def _check(self, manifest: Manifest, fingerprint: Fingerprint) -> None:
        field = manifest.fingerprint.first_difference(fingerprint)
        if field is not None:
            raise StateMismatch(field, manifest.session, getattr(manifest.fingerprint, field),
                                getattr(fingerprint, field))

    def _shared_prefix(self, fingerprint: Fingerprint, storage: str, ids: Sequence[int],
                       limit: int) -> int:
        """The longest run of whole aligned chunks held for `ids`, from any session."""
        covered = 0
        for end in range(self.chunk_tokens, limit + 1, self.chunk_tokens):
            if not self.chunk_path(address(fingerprint, storage, ids[:end])).exists():
                break
            covered = end
        return covered

    def _read(self, chunks: list[Chunk], tokens: int, fingerprint: Fingerprint,
              dtype: str) -> Layers:
        """The chunks' keys and values, checked and copied once into tensors of the model's
        dtype, cut to `tokens` positions."""
        import torch

        size = (fingerprint.kv_heads, chunks[-1].end if chunks else 0, fingerprint.head_dim)
        target = getattr(torch, dtype)
        layers = [(torch.empty(size, dtype=target), torch.empty(size, dtype=target))
                  for _ in range(fingerprint.layers)]
        key, at = fingerprint.key(), 0
        for chunk in chunks:
            path = self.chunk_path(chunk.address)
            try:
                data = _read_file(path)
                meta = unseal(data)
                if meta.get("fingerprint") != key or meta.get("address") != chunk.address:
                    raise Unsealed("holds another model's or prefix's state")
                at += decode_into(data, layers, at)
            except FileNotFoundError:
                raise StateCorrupt(str(path), "is missing") from None
            except (Unsealed, KeyError, ValueError, RuntimeError) as exc:
                raise StateCorrupt(str(path), str(exc)) from None
        return [(k[:, :tokens], v[:, :tokens]) for k, v in layers]

    def _touch(self, manifest: Manifest) -> None:
        with contextlib.suppress(OSError):  # a read-only store still restores
            write_atomic(self.manifest_path(manifest.session),
                         [manifest.used(self.clock.now().isoformat()).to_json().encode()])

    def _repair(self) -> list[str]:
        for path in self.chunk_files():
            try:
                if unseal(path.read_bytes()).get("address") == path.stem:
                    continue
            except Unsealed:
                pass
            path.unlink()
        dropped = []
        for path in sorted(self._sessions_dir().glob("*.json")):
            try:
                manifest = Manifest.from_json(path.read_text(encoding="utf-8"))
            except (ValueError, KeyError, TypeError):
                path.unlink()
                dropped.append(path.stem)
                continue
            if not all(self.chunk_path(c.address).exists() for c in manifest.chunks):
                path.unlink()
                dropped.append(manifest.session)
        return dropped

    def _evict(self, cap: int) -> tuple[list[str], int]:
        for leftover in self.root.glob("**/*.tmp-*"):
            leftover.unlink(missing_ok=True)
        live = self.sessions()  # most recently used first
        sizes = {p.stem: p.stat().st_size for p in self.chunk_files()}
        total, freed, evicted = sum(sizes.values()), 0, []

        def unused(keep: list[Manifest]) -> set[str]:
            used = {c.address for m in keep for c in m.chunks}
            return {a for a in sizes if a not in used}

        for name in unused(live):
            freed += self._remove_chunk(name, sizes)
        while total - freed > cap and live:
            victim = live.pop()
            self.manifest_path(victim.session).unlink(missing_ok=True)
            evicted.append(victim.session)
            for name in unused(live):
                freed += self._remove_chunk(name, sizes)
        return evicted, freed

    def _remove_chunk(self, name: str, sizes: dict[str, int]) -> int:
        self.chunk_path(name).unlink(missing_ok=True)
        return sizes.pop(name)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One writer at a time across processes (saves, evictions, imports)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _sessions_dir(self) -> Path:
        return self.root / "sessions"

    def manifest_path(self, session: str) -> Path:
        name = hashlib.sha256(session.encode()).hexdigest()[:32]
        return self._sessions_dir() / f"{name}.json"

    def chunk_path(self, where: str) -> Path:
        return self.root / "chunks" / where[:2] / f"{where}.safetensors"

    def chunk_files(self) -> list[Path]:
        return sorted((self.root / "chunks").glob("*/*.safetensors"))


def write_atomic(path: Path, parts: list[Part]) -> None:
    """Write the parts to `path` whole or not at all: a temporary file, synced, renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as handle:
            for part in parts:
                handle.write(part)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_file(path: Path) -> bytearray:
    """A file's bytes in a writable buffer (tensors view it without a copy)."""
    with open(path, "rb") as handle:
        data = bytearray(os.fstat(handle.fileno()).st_size)
        if handle.readinto(data) != len(data):
            raise Unsealed("changed while it was read")
    return data


def state_root(data: str | Path, override: str | Path | None = None) -> Path:
    """Where a store's saved states live: `override` (ENGRAM_STATE), else the store's own
    folder's `state/`, else ./engram-state for a store reached by URL."""
    if override:
        return Path(override)
    if str(data).startswith(("postgres://", "postgresql://")):
        return Path(os.environ.get("ENGRAM_STATE") or "engram-state")
    return Path(os.environ.get("ENGRAM_STATE") or Path(data) / "state")
