"""Peers: what this store knows of each store it syncs with, kept as the device-scoped
`sync.peers` setting (one JSON value per peer name), and the status computed from it.

`vector` is what the peer is known to hold: learned from the header of each bundle it sent
(its whole vector then) and raised after each exchange. It is never raised by sending: a
bundle may be lost, so the next export to that peer sends the same events again (harmless,
importing is idempotent) until the peer's own bundle or an exchange says it has them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from engram.errors import InvalidInput, StoreError
from engram.model import format_time, parse_time
from engram.store.base import Store
from engram.store.settings import SYNC_PEERS
from engram.sync import vector as vectors

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    url: str | None = None
    device_id: str | None = None
    vector: Mapping[str, int] = field(default_factory=dict)
    last_exchange: datetime | None = None  # when we last learned what it holds
    last_sent: datetime | None = None  # when we last wrote a bundle for it

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "device_id": self.device_id,
                "vector": dict(self.vector), "last_exchange": _time(self.last_exchange),
                "last_sent": _time(self.last_sent)}

    def learned(self, holds: Mapping[str, int], at: datetime,
                device_id: str | None = None) -> Peer:
        """This peer once it is known to hold `holds` as well (at `at`)."""
        return replace(self, vector=vectors.merged(self.vector, holds), last_exchange=at,
                       device_id=device_id or self.device_id)


def _time(moment: datetime | None) -> str | None:
    return format_time(moment) if moment is not None else None


def _parsed(obj: Mapping[str, Any], key: str) -> datetime | None:
    return parse_time(obj[key], key) if obj.get(key) else None


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput("peer", f"{name!r} is not a peer name",
                           "use letters, digits, '.', '_' or '-' (up to 64), e.g. edge-board")
    return name


def load(store: Store) -> dict[str, Peer]:
    """Every known peer, by name."""
    return {name: _parse(name, value) for name, value in
            sorted(store.settings_of(SYNC_PEERS).items())}


def get(store: Store, name: str) -> Peer | None:
    value = store.get_setting(SYNC_PEERS, check_name(name))
    return _parse(name, value) if value is not None else None


def save(store: Store, peer: Peer) -> None:
    store.set_setting(SYNC_PEERS, json.dumps(peer.to_dict(), sort_keys=True),
                      check_name(peer.name))


def add(store: Store, name: str, url: str | None = None) -> Peer:
    """Name a peer, or give a known one a URL; what we know it holds is kept."""
    if url is not None and not url.startswith(("http://", "https://")):
        raise InvalidInput("URL", f"{url!r} is not an http(s) URL",
                           "give the peer's `engram serve` address, e.g. http://edge:8080")
    peer = replace(get(store, name) or Peer(name=name), url=url)
    save(store, peer)
    return peer


def of_device(store: Store, device_id: str) -> Peer:
    """The peer that is `device_id`: the one that sent from it before, or the one named after
    it; else a new peer named after the device id (`peer-add` can give it a URL later)."""
    known = load(store)
    for peer in known.values():
        if peer.device_id == device_id:
            return peer
    return known.get(device_id) or Peer(name=check_name(device_id), device_id=device_id)


def _parse(name: str, value: str) -> Peer:
    try:
        obj = json.loads(value)
        return Peer(name=name, url=obj.get("url"), device_id=obj.get("device_id"),
                    vector={str(d): int(s) for d, s in obj.get("vector", {}).items()},
                    last_exchange=_parsed(obj, "last_exchange"),
                    last_sent=_parsed(obj, "last_sent"))
    except (ValueError, AttributeError, TypeError) as exc:
        raise StoreError(f"setting {SYNC_PEERS.key(name)}: is not a peer record ({exc}); "
                         f"add the peer again with `engram sync peer-add {name}`") from None


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """Where this store stands with one peer: `ahead` events it holds that the peer is not
    known to, `behind` events the peer is known to hold that it lacks."""

    peer: Peer
    ahead: int
    behind: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.peer.to_dict(), "ahead": self.ahead, "behind": self.behind}


def status(mine: Mapping[str, int], known: Mapping[str, Peer]) -> list[PeerStatus]:
    """Per peer, computed from the vectors (pure)."""
    return [PeerStatus(peer, vectors.ahead(mine, peer.vector), vectors.ahead(peer.vector, mine))
            for _, peer in sorted(known.items())]
