"""Mastodon: the `outbox.json` of an account archive (ActivityStreams): each `Create` of a
`Note` is a post or a reply, its HTML content as text, a content warning kept in front of it;
boosts of other people's posts (`Announce`) are skipped."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from engram.errors import InvalidInput
from engram.ingest import files, jsonarray
from engram.ingest.datapoint import DataPoint, Options, Read, Skipped
from engram.ingest.html_text import to_text
from engram.model import Kind

KIND = "mastodon"
FILE = "outbox.json"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
_WHAT = f"the {FILE} of a Mastodon archive (or its unzipped folder)"


def collection(root: Path) -> str:
    """The account (the actor of the archive's activities)."""
    body = _body(files.file(root, _WHAT, FILE))
    actor = _actor(body)
    return actor or root.name


def read(root: Path, options: Options) -> Iterator[Read]:
    path = files.file(root, _WHAT, FILE)
    body = _body(path)
    start = _items_start(body, path.name)
    for found in jsonarray.records(body, path.name, _is_activity,
                                   "a Mastodon archive's activities", start):
        if isinstance(found, Skipped):
            yield found
            continue
        where, activity = found
        if activity.get("type") != "Create":
            yield Skipped(path.name, where, f"{activity.get('type')} activity (only posts "
                          "are kept)", error=False)
            continue
        try:
            yield post(activity)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            yield Skipped(path.name, where, f"unexpected shape ({exc!r})")


def post(activity: dict[str, Any]) -> DataPoint:
    """One `Create` activity of a `Note` as a DataPoint."""
    note = activity["object"]
    text = to_text(str(note.get("content") or ""))
    warning = note.get("summary")
    if warning:
        text = f"CW: {warning}\n\n{text}"
    reply = note.get("inReplyTo")
    audience = [*(note.get("to") or ()), *(note.get("cc") or ())]
    visibility = "public" if PUBLIC in note.get("to", ()) else \
        "unlisted" if PUBLIC in audience else "followers" if audience else "direct"
    hashtags = tuple(str(t["name"]).lstrip("#") for t in note.get("tag") or ()
                     if t.get("type") == "Hashtag")
    media = tuple(str(a["url"]) for a in note.get("attachment") or () if a.get("url"))
    described = [str(a["name"]) for a in note.get("attachment") or () if a.get("name")]
    if described:
        text += "\n\n" + "\n".join(f"[image: {d}]" for d in described)
    form = "reply" if reply else "post"
    metadata: dict[str, Any] = {"form": form, "visibility": visibility}
    if reply:
        metadata["in_reply_to"] = reply
    return DataPoint(kind=KIND, external_id=str(note["id"]),
                     text=text.strip() or "(media only)", ref=str(note.get("url") or note["id"]),
                     time=datetime.fromisoformat(str(note.get("published")
                                                     or activity["published"])),
                     author=str(activity.get("actor") or note.get("attributedTo") or ""),
                     said=text if not warning else None, memory_type=Kind.CONTEXT,
                     tags=(form, *hashtags), attachments=media, metadata=metadata)


def _body(path: Path) -> str:
    body = files.text(path, path.name)
    if isinstance(body, Skipped):
        raise InvalidInput("path", str(body), "give the outbox.json of the archive unchanged")
    return body


def _items_start(body: str, name: str) -> int:
    """Where the `orderedItems` array starts."""
    key = body.find('"orderedItems"')
    start = body.find("[", key) if key >= 0 else -1
    if start < 0:
        raise InvalidInput("path", f"{name} has no orderedItems",
                           "give the outbox.json of a Mastodon archive")
    return start


def _actor(body: str) -> str | None:
    """The actor of the first well-formed activity."""
    for found in jsonarray.records(body, FILE, _is_activity, "a Mastodon archive's activities",
                                   _items_start(body, FILE)):
        if not isinstance(found, Skipped):
            return str(found[1]["actor"]) if found[1].get("actor") else None
    return None


def _is_activity(value: Any) -> bool:
    return isinstance(value, dict) and "type" in value and "object" in value
