"""Saved states over HTTP, beside the events (`engram sync peer --states`): the peer's
`/sync/states/pull` answers a tar of its sessions with only the chunks the caller lacks, and
`/sync/states/push` takes the caller's with only the chunks the peer lacks. Each side checks a
whole tar before it writes anything (`travel.check`). The tar travels base64 in JSON."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

import httpx

from engram.errors import InvalidInput
from engram.state import travel
from engram.state.store import StateStore
from engram.store.base import Store
from engram.sync.http import TIMEOUT, PeerError


class NotTheirs(InvalidInput):
    """A key of one user sent states of another user's chats (nothing was written)."""


def exchange(states: StateStore, store: Store, url: str, key: str | None, *, push: bool = True,
             pull: bool = True, user: str | None = None,
             ) -> tuple[travel.Carried | None, travel.Carried | None]:
    """Pull the peer's saved states (the chunks this side lacks), then push ours (the chunks
    it lacks); with `user`, only that user's chats. Returns (received, sent)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=TIMEOUT) as http:
        answer = _call(http, url, "/sync/states/pull",
                       {"held": held(states), "user": user, "send": pull})
        got = unpacked(states, store, str(answer["tar"])) if pull else None
        tar, sent = packed(states, store, user, list(answer["held"])) if push else ("", None)
        if tar:
            _call(http, url, "/sync/states/push", {"tar": tar})
    return got, sent


def packed(states: StateStore, store: Store, user: str | None,
           skip: list[str]) -> tuple[str, travel.Carried | None]:
    """The sessions (of `user`, or all) and Ollama contexts as base64 tar, without the chunks
    in `skip`; ("", None) when there is nothing to send."""
    chosen = travel.of_user(states, user)
    contexts = travel.contexts_of(store, user=user)
    if not chosen and (user is not None or not contexts):  # [] would mean every session
        return "", None
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "states.tar"
        carried = travel.export(states, out, chosen, contexts, skip=skip)
        return base64.b64encode(out.read_bytes()).decode("ascii"), carried


def unpacked(states: StateStore, store: Store, tar: str,
             user: str | None = None) -> travel.Carried | None:
    """Check and take in a base64 tar from `packed` (nothing written unless it is whole and,
    with `user`, holds only that user's chats)."""
    if not tar:
        return None
    try:
        data = base64.b64decode(tar, validate=True)
    except ValueError:
        raise InvalidInput("tar", "is not base64", "send what `engram sync peer` sends") \
            from None
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "states.tar"
        file.write_bytes(data)
        checked = travel.check(states, file)
    others = [m.session for m in checked.manifests if user is not None
              and not m.session.startswith(f"{user}:")]
    others += [k for k in checked.contexts if user is not None and not k.startswith(f"{user}:")]
    if others:
        raise NotTheirs("tar", f"holds {others[0]!r}, not a chat of user {user!r}",
                           "this key may send only its user's states; nothing was written")
    carried, contexts = travel.take(states, checked)
    travel.keep_contexts(store, contexts)
    return carried


def held(states: StateStore) -> list[str]:
    """The chunks this side holds, by address."""
    return sorted(p.stem for p in states.chunk_files())


def _call(http: httpx.Client, url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        response = http.post(path, json=body)
    except httpx.HTTPError as exc:
        raise PeerError("peer", f"cannot exchange states with {url} ({exc})",
                        "check that `engram serve` runs there; the events that landed are "
                        "kept") from None
    if response.status_code != 200:
        try:
            error = response.json()["error"]
            said = f"{error['field']}: {error['problem']}"
        except (ValueError, KeyError, TypeError):
            said = response.text[:200]
        raise PeerError("states", f"{url}{path} answered {response.status_code} ({said})",
                        "upgrade the peer's engram (older ones lack /sync/states) or sync "
                        "without --states")
    answer: dict[str, Any] = response.json()
    return answer
