"""X/Twitter: an archive folder's `data/tweets.js` (`window.YTD.tweets.part0 = [...]`; older
archives: `tweet.js`). Tweets, replies and retweets told apart; t.co links expanded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from engram.errors import InvalidInput
from engram.ingest import files, jsonarray
from engram.ingest.datapoint import DataPoint, Options, Read, Skipped
from engram.model import Kind

KIND = "twitter"
_FILES = ("data/tweets.js", "data/tweet.js")
_TIME = "%a %b %d %H:%M:%S %z %Y"  # Wed Oct 10 20:19:24 +0000 2018


def collection(root: Path) -> str:
    """The account's handle (from data/account.js), or the folder's name."""
    _tweets(root)
    return _screen_name(root) or root.name


def read(root: Path, options: Options) -> Iterator[Read]:
    path = _tweets(root)
    user = _screen_name(root) or "i/web"
    name = path.relative_to(root).as_posix()
    body = files.text(path, name)
    if isinstance(body, Skipped):
        yield body
        return
    for item in jsonarray.records(body, name, _is_tweet, "an X/Twitter archive's tweets",
                                  _after_assignment(body)):
        if isinstance(item, Skipped):
            yield item
            continue
        where, wrapper = item
        try:
            yield tweet(wrapper.get("tweet", wrapper), user)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            yield Skipped(name, where, f"unexpected shape ({exc!r})")


def _tweets(root: Path) -> Path:
    folder = files.folder(root, "the unzipped archive folder (it holds data/tweets.js)")
    for name in _FILES:
        if (folder / name).is_file() and files.inside(folder / name, folder):
            return folder / name
    raise InvalidInput("path", f"{folder} has no data/tweets.js",
                       "give the unzipped X/Twitter archive folder")


def _is_tweet(value: Any) -> bool:
    return isinstance(value, dict) and ("tweet" in value or "full_text" in value)


def tweet(raw: dict[str, Any], user: str) -> DataPoint:
    ident = str(raw["id_str"])
    text = str(raw["full_text"])
    entities = raw.get("entities") or {}
    for url in entities.get("urls") or ():
        if url.get("url") and url.get("expanded_url"):
            text = text.replace(url["url"], url["expanded_url"])
    media = (raw.get("extended_entities") or entities).get("media") or ()
    for m in media:
        text = text.replace(m.get("url", "\0"), "").strip()
    retweet = text.startswith("RT @")
    reply_to = raw.get("in_reply_to_status_id_str")
    form = "retweet" if retweet else "reply" if reply_to else "tweet"
    meta: dict[str, Any] = {"form": form, "lang": raw.get("lang")}
    if reply_to:
        meta |= {"in_reply_to": reply_to, "in_reply_to_user": raw.get("in_reply_to_screen_name")}
    return DataPoint(kind=KIND, external_id=ident, text=text or "(media only)",
                     ref=f"https://x.com/{user}/status/{ident}",
                     time=datetime.strptime(raw["created_at"], _TIME),
                     author=f"@{user}", said=None if retweet else text,
                     memory_type=Kind.CONTEXT, tags=(form,),
                     attachments=tuple(m["media_url_https"] for m in media
                                       if m.get("media_url_https")), metadata=meta)


def _after_assignment(body: str) -> int:
    """Where the array starts in `window.YTD.tweets.part0 = [...]`."""
    return body.find("=") + 1


def _screen_name(folder: Path) -> str | None:
    """The account's handle from data/account.js, if the archive has it."""
    path = folder / "data" / "account.js"
    if not path.is_file() or not files.inside(path, folder):
        return None
    body = files.text(path, "data/account.js")
    if isinstance(body, Skipped) or "=" not in body:
        return None
    try:
        for found in jsonarray.records(body, "account.js", lambda v: isinstance(v, dict),
                                       "an account", _after_assignment(body)):
            if not isinstance(found, Skipped):
                name = (found[1].get("account") or {}).get("username")
                if name:
                    return str(name)
    except InvalidInput:
        return None
    return None
