"""The adapter registry: every adapter with its version, base model (path and hash), dataset
hash, the memory ids it learnt from, hyper-parameters, metrics and time, and each user's active
version. A folder of adapter folders (`v1/`, `v2/`, … PEFT's safetensors and config) and one
`registry.json`.

Nothing half-written is ever registered: an adapter is saved into a temporary folder, renamed
into place, and only then is the registry file replaced (written beside, then renamed). A
failure on the way (a full disk) leaves the registry as it was, pointing at the last good
version. Memory ids are kept, never memory text: forgetting a memory leaves nothing of it
here but the fact that an adapter learnt from it (`tainted`)."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from engram.errors import EngramError, InvalidInput

FILE = "registry.json"
WORK = "work"  # checkpoints of runs in progress, per user
_VERSION = re.compile(r"^v(\d+)$")


@dataclass(frozen=True, slots=True)
class Adapter:
    """One registered adapter: what it was made from and how well it does."""

    version: str
    user: str
    base: str
    base_hash: str
    dataset_hash: str
    memory_ids: tuple[str, ...]
    valid_ids: tuple[str, ...] = ()
    hyper: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    parent: str | None = None  # the version this one continued from (an incremental update)
    domains: tuple[str, ...] = ()  # trained on these domains only; () for all the user's
    seconds: float = 0.0
    size_bytes: int = 0
    quantized: bool = False

    def to_dict(self, tainted: Iterable[str] = ()) -> dict[str, Any]:
        out = asdict(self)
        out["memory_ids"], out["valid_ids"] = list(self.memory_ids), list(self.valid_ids)
        out["domains"] = list(self.domains)
        out["tainted"] = sorted(tainted)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Adapter:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("memory_ids", "valid_ids", "domains"):
            values[name] = tuple(values.get(name, ()))
        return cls(**values)


def root_for(data: str | Path, adapters: str | Path | None = None) -> Path:
    """Where a store's adapters live: `adapters` (or ENGRAM_ADAPTERS) when given, else the
    store folder's `adapters/`; a store reached by URL has no folder, so it needs one."""
    explicit = adapters or os.environ.get("ENGRAM_ADAPTERS")
    if explicit:
        return Path(explicit).expanduser()
    if str(data).startswith(("postgres://", "postgresql://")):
        raise InvalidInput("adapters", "a store reached by URL has no folder for adapters",
                           "give --adapters DIR or set ENGRAM_ADAPTERS")
    return Path(data).expanduser() / "adapters"


def number(version: str) -> int:
    match = _VERSION.match(version)
    if not match:
        raise InvalidInput("version", f"{version!r} is not a version",
                           "give one that `engram train list` shows, e.g. v1")
    return int(match.group(1))


class Registry:
    """The adapters under `root`; every change is one atomic replacement of the file."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    # ------------------------------------------------------------ reads

    def _read(self) -> dict[str, Any]:
        path = self.root / FILE
        if not path.is_file():
            return {"versions": [], "active": {}}
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise EngramError(f"registry: {path} is not JSON; restore it from a backup or "
                              "move it away to start a new registry") from None
        return data

    def adapters(self, user: str | None = None) -> list[Adapter]:
        """Every adapter (of `user`), oldest first."""
        found = [Adapter.from_dict(d) for d in self._read()["versions"]]
        return [a for a in found if user is None or a.user == user]

    def get(self, version: str) -> Adapter:
        number(version)
        for adapter in self.adapters():
            if adapter.version == version:
                return adapter
        raise InvalidInput("version", f"no adapter {version}",
                           "list the registered ones with `engram train list`")

    def active(self, user: str) -> Adapter | None:
        version = self._read()["active"].get(user)
        return self.get(version) if version else None

    def path(self, version: str) -> Path:
        """The folder of a registered adapter (PEFT's `adapter_model.safetensors` inside)."""
        return self.root / self.get(version).version

    def work(self, user: str) -> Path:
        """Where a user's runs keep their checkpoint until the adapter is registered."""
        return self.root / WORK / user

    # ------------------------------------------------------------ writes

    def register(self, adapter: Adapter, save: Callable[[Path], None], *,
                 activate: bool = True) -> Adapter:
        """Save the adapter with `save(folder)` into a fresh folder, move it into place and
        record it under the next version number (the user's active one if `activate`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with _cleaned(Path(tempfile.mkdtemp(prefix=".saving-", dir=self.root))) as tmp:
            try:
                save(tmp)
            except OSError as exc:
                raise _disk_error(exc, self, adapter.user) from None
            size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
            data = self._read()
            version = f"v{self._next(data)}"
            stored = replace(adapter, version=version, size_bytes=size)
            tmp.rename(self.root / version)
        data["versions"].append(stored.to_dict())
        for entry in data["versions"]:
            entry.pop("tainted", None)
        if activate:
            data["active"][adapter.user] = version
        try:
            self._write(data)
        except OSError as exc:
            shutil.rmtree(self.root / version, ignore_errors=True)
            raise _disk_error(exc, self, adapter.user) from None
        return stored

    def use(self, version: str) -> Adapter:
        """Make `version` its user's active adapter."""
        adapter = self.get(version)
        data = self._read()
        data["active"][adapter.user] = version
        self._write(data)
        return adapter

    def rollback(self, user: str) -> Adapter:
        """Make the user's version before the active one active."""
        current = self.active(user)
        if current is None:
            raise InvalidInput("user", f"{user} has no active adapter",
                               "train one with `engram train run` first")
        older = [a for a in self.adapters(user) if number(a.version) < number(current.version)]
        if not older:
            raise InvalidInput("version", f"{current.version} is {user}'s first adapter",
                               "there is nothing to roll back to")
        return self.use(older[-1].version)

    def _next(self, data: dict[str, Any]) -> int:
        """One past every version the file or the folder knows (an orphan folder included)."""
        taken = [number(d["version"]) for d in data["versions"]]
        taken += [int(m.group(1)) for p in self.root.iterdir() if (m := _VERSION.match(p.name))]
        return max(taken, default=0) + 1

    def _write(self, data: dict[str, Any]) -> None:
        path = self.root / FILE
        fresh = path.with_name(f".{FILE}.tmp")
        with fresh.open("w", encoding="utf-8") as f:
            f.write(json.dumps(data, indent=1, ensure_ascii=False))
            f.flush()
            os.fsync(f.fileno())
        fresh.replace(path)


@contextmanager
def _cleaned(folder: Path) -> Iterator[Path]:
    """`folder`, removed afterwards unless it was moved away."""
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _disk_error(exc: OSError, registry: Registry, user: str) -> EngramError:
    last = registry.active(user)
    kept = f"the registry still points at {last.version}" if last else "nothing was registered"
    problem = "the disk is full" if exc.errno == errno.ENOSPC else f"saving failed ({exc})"
    return EngramError(f"adapter: {problem} while saving; {kept}; free space under "
                       f"{registry.root} and run again (training resumes from its checkpoint)")
