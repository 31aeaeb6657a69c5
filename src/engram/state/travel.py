"""Saved states carried to another device as one tar file: the sessions' manifests, their
chunks (each shared chunk once) and, beside them, Ollama context tokens. An import checks every
manifest and chunk before anything is written, so a damaged file changes nothing.

`engram state export/import` write and read one; `engram sync export --states` writes one
beside its bundle (`beside`), and `engram sync import` takes it in after the events.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from engram.errors import InvalidInput
from engram.state.codec import Unsealed, unseal
from engram.state.manifest import Manifest
from engram.state.store import StateStore, write_atomic
from engram.store.base import Store
from engram.store.settings import OLLAMA_CONTEXT

CONTEXTS = "ollama-contexts.json"
CHUNK_NAME = re.compile(r"chunks/([0-9a-f]{64})\.safetensors")
SESSION_NAME = re.compile(r"sessions/[0-9a-f]{1,64}\.json")


@dataclass(frozen=True, slots=True)
class Carried:
    """What an export wrote or an import took in."""

    sessions: list[str]
    chunks: int
    bytes: int
    contexts: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def beside(bundle: Path) -> Path:
    """The states file that travels with a sync bundle: OUT.states.tar next to OUT."""
    return bundle.with_name(f"{bundle.name}.states.tar")


def contexts_of(store: Store, sessions: Sequence[str] = (), user: str | None = None,
                ) -> dict[str, str]:
    """The Ollama contexts the store keeps (by user:session:model), of the named sessions
    and of one user's chats when asked (default: all)."""
    return {key: value for key, value in store.settings_of(OLLAMA_CONTEXT).items()
            if (not sessions or any(f":{s}:" in key for s in sessions))
            and (user is None or key.startswith(f"{user}:"))}


def keep_contexts(store: Store, contexts: dict[str, str]) -> None:
    """Store Ollama contexts that came with an import (one that is held is replaced)."""
    for key, value in contexts.items():
        store.set_setting(OLLAMA_CONTEXT, value, key)


def of_user(states: StateStore, user: str | None) -> list[str]:
    """The saved sessions a sync carries: all, or one user's chats (named user:session:…)."""
    return [m.session for m in states.sessions()
            if user is None or m.session.startswith(f"{user}:")]


def export(states: StateStore, out: Path, sessions: Sequence[str] = (),
           contexts: dict[str, str] | None = None, skip: Collection[str] = ()) -> Carried:
    """Write the chosen sessions (default: all) and Ollama contexts to `out`, without the
    chunks in `skip` (those the receiver holds already)."""
    chosen = [states.require(s) for s in sessions] if sessions else states.sessions()
    addresses = sorted({c.address for m in chosen for c in m.chunks} - set(skip))
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    try:
        with tarfile.open(tmp, mode="w") as tar:
            for manifest in chosen:
                _add(tar, f"sessions/{states.manifest_path(manifest.session).name}",
                     manifest.to_json().encode())
            for where in addresses:
                _add(tar, f"chunks/{where}.safetensors", states.chunk_path(where).read_bytes())
            _add(tar, CONTEXTS, json.dumps(contexts or {}, sort_keys=True).encode())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return Carried([m.session for m in chosen], len(addresses), out.stat().st_size,
                   len(contexts or {}))


def import_(states: StateStore, file: Path) -> tuple[Carried, dict[str, str]]:
    """Take in an export: every part checked first, then chunks and manifests written (a
    session held here already is replaced). Returns what came and the Ollama contexts."""
    return take(states, check(states, file))


@dataclass(frozen=True, slots=True)
class Checked:
    """An export read whole and verified, not yet written."""

    manifests: list[Manifest]
    chunks: dict[str, bytes]
    contexts: dict[str, str]


def check(states: StateStore, file: Path) -> Checked:
    """Read and verify an export against `states` (every chunk its sessions need is in it or
    held here already), writing nothing: so a sync applies its events only when the states
    beside them are whole."""
    manifests, chunks, contexts = _read(file)
    needed = {c.address for m in manifests for c in m.chunks}
    missing = needed - set(chunks) - {p.stem for p in states.chunk_files()}
    if missing:
        raise InvalidInput("file", f"{file} lacks {len(missing)} chunks its sessions need",
                           "export again on the other device (`engram state export`)")
    return Checked(manifests, chunks, contexts)


def take(states: StateStore, checked: Checked) -> tuple[Carried, dict[str, str]]:
    """Write a checked export's chunks (those not held yet) and manifests."""
    with states.locked():
        for where, data in checked.chunks.items():
            if not states.chunk_path(where).exists():
                write_atomic(states.chunk_path(where), [data])
        for manifest in checked.manifests:
            write_atomic(states.manifest_path(manifest.session),
                         [manifest.to_json().encode()])
    return Carried([m.session for m in checked.manifests], len(checked.chunks),
                   sum(map(len, checked.chunks.values())), len(checked.contexts)), \
        dict(checked.contexts)


def _read(file: Path) -> tuple[list[Manifest], dict[str, bytes], dict[str, str]]:
    manifests, chunks, contexts = [], {}, {}
    try:
        with tarfile.open(file, mode="r:") as tar:
            for member in tar:
                data = _member(tar, member)
                if match := CHUNK_NAME.fullmatch(member.name):
                    if unseal(data).get("address") != match.group(1):
                        raise ValueError(f"{member.name} is stored under another address")
                    chunks[match.group(1)] = data
                elif SESSION_NAME.fullmatch(member.name):
                    manifests.append(Manifest.from_json(data.decode()))
                elif member.name == CONTEXTS:
                    contexts = {str(k): str(v) for k, v in json.loads(data).items()}
                else:
                    raise ValueError(f"holds {member.name!r}, which no export writes")
    except FileNotFoundError:
        raise InvalidInput("file", f"{file} does not exist",
                           "pass a file written by `engram state export`") from None
    except (tarfile.TarError, Unsealed, ValueError, KeyError, TypeError, EOFError) as exc:
        raise InvalidInput("file", f"{file} is not a whole state export ({exc})",
                           "export again on the other device (`engram state export`)") from None
    return manifests, chunks, contexts


def _member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member) if member.isfile() else None
    if handle is None:
        raise ValueError(f"{member.name} is not a plain file")
    return handle.read()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
