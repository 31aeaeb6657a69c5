"""The HTTP transport: exchange events with another `engram serve` (`/sync/...`,
`server/sync_routes.py`) both ways, in batches.

Each batch is one transaction on the side that applies it, and every exchange starts from
the two stores' version vectors, so an interrupted exchange resumes where it stopped and
nothing that landed is sent again. Pulled batches come in the peer's chain order; pushed ones
go in merge order (a memory's `memory.added` before its other events), so a peer that
checks whose memories a per-user key touches always knows. The exchange is recorded with
the peer (`sync.peers`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import httpx

from engram.errors import EngramError, InvalidInput
from engram.log.chain import merge_key
from engram.log.events import Event, canonical_json
from engram.log.upcast import upcast
from engram.model import check_id
from engram.store.base import Store
from engram.sync import Host, peers, scope
from engram.sync import vector as vectors

Progress = Callable[[str, int, int], None]  # direction ("pull", "push"), events done, total
MAX_BATCH = 10_000  # the server's limit per request (server/sync_routes.py)
MAX_ROUNDS = 100_000  # bounds every loop: far more batches than one exchange needs
TIMEOUT = httpx.Timeout(120.0, connect=10.0)


class PeerError(EngramError):
    """The exchange failed: one line naming what is wrong and what to do."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field, self.problem, self.fix = field, problem, fix
        super().__init__(f"{field}: {problem}; {fix}")


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one exchange moved: events sent and received, and how many of them were new."""

    url: str
    peer: str
    device_id: str
    pushed: int = 0
    pushed_new: int = 0
    pulled: int = 0
    pulled_new: int = 0
    batches: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sync_peer(memory: Host, url: str, key: str | None = None, *, push: bool = True,
              pull: bool = True, batch: int = 1000, user: str | None = None,
              progress: Progress | None = None) -> SyncReport:
    """Exchange events with the `engram serve` at `url` (pull, then push), `batch` events per
    request; `progress(direction, done, total)` after each batch. With `user`, only that
    user's memories travel in full, both ways; every other event as a redacted stub
    (`sync.scope`), as in a per-user bundle."""
    if user is not None:
        user = check_id(user, "user", required=True)
    if not 1 <= batch <= MAX_BATCH:
        raise InvalidInput("batch", f"{batch} is out of range", f"use 1 to {MAX_BATCH}")
    if not url.startswith(("http://", "https://")):
        raise InvalidInput("url", f"{url!r} is not an http(s) URL",
                           "give the peer's base URL, e.g. http://192.168.1.20:8765")
    if not push and not pull:
        raise InvalidInput("direction", "neither push nor pull was asked for",
                           "leave both on, or choose one of --push and --pull")
    started = time.perf_counter()
    memory.flush()  # batched access counts are events too: let them travel
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=TIMEOUT) as http:
        link = _Link(http, url)
        remote = link.call("GET", "/sync/heads")
        device, theirs = str(remote["device_id"]), _vector(remote["vector"])
        report = SyncReport(url, "", device)
        if pull:
            report = _pull(memory, link, theirs, batch, user, progress, report)
        if push:
            report, theirs = _push(memory, link, theirs, batch, int(remote["max_body"]), user,
                                   progress, report)
    peer = _peer_of(memory.store, url, device)
    peers.save(memory.store, replace(peer.learned(theirs, memory.clock.now(), device), url=url))
    return replace(report, peer=peer.name, seconds=time.perf_counter() - started)


def _pull(memory: Host, link: _Link, theirs: Mapping[str, int], batch: int, user: str | None,
          progress: Progress | None, report: SyncReport) -> SyncReport:
    mine = vectors.of_heads(memory.store.heads())
    total, done = vectors.ahead(theirs, mine), 0
    for _ in range(MAX_ROUNDS):
        if total == done:
            break
        asked: dict[str, Any] = {"vector": mine, "limit": batch}
        if user is not None:
            asked["user"] = user
        answer = link.call("POST", "/sync/pull", body=asked, batch=report.batches + 1)
        events = parse_events(answer["events"])
        if not events:
            break
        added = memory.store.import_events(events)
        mine = vectors.merged(mine, _vector(answer["vector"]))
        done += len(events)
        total = done + int(answer["remaining"])
        report = replace(report, pulled=report.pulled + len(events),
                         pulled_new=report.pulled_new + added, batches=report.batches + 1)
        if progress:
            progress("pull", done, total)
    return report


def _push(memory: Host, link: _Link, theirs: Mapping[str, int], batch: int, max_body: int,
          user: str | None, progress: Progress | None,
          report: SyncReport) -> tuple[SyncReport, dict[str, int]]:
    lacking = sorted(memory.store.events_after(theirs), key=merge_key)
    if user is not None:
        lacking = list(scope.scoped(lacking, scope.owned(memory.store, user)))
    held, done = dict(theirs), 0
    for chunk in _chunks([canonical_json(e.to_dict()) for e in lacking], batch, max_body):
        answer = link.call("POST", "/sync/push", content=b'{"events":[' + b",".join(chunk)
                           + b"]}", batch=report.batches + 1)
        held = vectors.merged(held, _vector(answer["vector"]))
        done += len(chunk)
        report = replace(report, pushed=report.pushed + len(chunk),
                         pushed_new=report.pushed_new + int(answer["added"]),
                         batches=report.batches + 1)
        if progress:
            progress("push", done, len(lacking))
    return report, held


def _chunks(lines: list[str], batch: int, max_body: int) -> list[list[bytes]]:
    """Events in order, at most `batch` per request and each request's body within the
    peer's `--max-body` (with room for the envelope)."""
    room = max_body - 64
    chunks: list[list[bytes]] = []
    size = room + 1
    for line in lines:
        data = line.encode("utf-8")
        if len(data) + 1 > room:
            raise PeerError("max_body", f"one event is {len(data)} bytes, more than the "
                            f"peer's --max-body of {max_body}",
                            "restart the peer's `engram serve` with a larger --max-body")
        if size + len(data) + 1 > room or len(chunks[-1]) >= batch:
            chunks.append([])
            size = 0
        chunks[-1].append(data)
        size += len(data) + 1
    return chunks


class _Link:
    """One peer's HTTP API, with every failure as a `PeerError`."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self.http, self.url = http, url

    def call(self, method: str, path: str, *, batch: int = 0, body: Any = None,
             content: bytes | None = None) -> dict[str, Any]:
        where = f"batch {batch}" if batch else path
        try:
            response = self.http.request(
                method, path, json=body, content=content,
                headers={"Content-Type": "application/json"} if content is not None else None)
        except httpx.ConnectError as exc:
            raise PeerError("peer", f"cannot reach {self.url} ({exc})",
                            "check the URL and that `engram serve` runs there") from None
        except httpx.HTTPError as exc:
            raise PeerError("peer", f"{self.url} stopped answering at {where} "
                            f"({type(exc).__name__}: {exc or 'no answer'})",
                            "every batch that landed is kept; run the exchange again to "
                            "resume") from None
        if response.status_code == 200:
            answer: dict[str, Any] = response.json()
            return answer
        raise self._refusal(response, where)

    def _refusal(self, response: httpx.Response, where: str) -> PeerError:
        status = response.status_code
        try:
            error = response.json()["error"]
            field, problem, fix = str(error["field"]), str(error["problem"]), str(error["fix"])
        except (ValueError, KeyError, TypeError):
            if status == 404:
                return PeerError("peer", f"{self.url} has no /sync endpoints",
                                 "upgrade engram-memory there, or check the URL")
            return PeerError("peer", f"{self.url} answered {status} at {where}",
                             "see the peer's log")
        if status == 401 or (status == 403 and field != "events"):
            return PeerError("key", f"{self.url} refused the key ({status}): {field}: "
                             f"{problem}", fix)
        return PeerError("peer", f"{self.url} refused {where} ({status}): {field}: {problem}",
                         f"{fix}; nothing of that batch was applied")


def parse_events(raw: list[dict[str, Any]]) -> list[Event]:
    """A batch as it travels (`Event.to_dict`), each event upcast; a malformed one names its
    place. The server parses pushed batches with it too."""
    events = []
    for i, obj in enumerate(raw):
        try:
            events.append(upcast(Event.from_dict(obj)))
        except InvalidInput as exc:
            raise InvalidInput(f"events[{i}].{exc.field}", exc.problem, exc.fix) from None
    return events


def _vector(value: Any) -> dict[str, int]:
    try:
        return {str(device): int(seq) for device, seq in dict(value).items()}
    except (TypeError, ValueError):
        raise PeerError("vector", f"the peer sent {json.dumps(value)[:80]} as a vector",
                        "the peer runs an incompatible engram; upgrade both") from None


def _peer_of(store: Store, url: str, device_id: str) -> peers.Peer:
    """The peer known by this URL, or by its device, or a new one named after the device."""
    for peer in peers.load(store).values():
        if peer.url == url:
            return peer
    return peers.of_device(store, device_id)
