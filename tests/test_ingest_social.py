"""Social archives: an X/Twitter archive folder (data/tweets.js in its `window.YTD` wrapper;
tweets, replies and retweets told apart, t.co links expanded) and a Mastodon outbox.json
(ActivityStreams: posts and replies as text, boosts skipped, content warnings kept). A broken
item is reported with its position; an edited post updates its memory."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engram import Memory
from engram.model import MemoryEntry

DATA = Path(__file__).parent / "data" / "ingest"


@pytest.fixture
def mem(keyword_mem: Memory) -> Memory:
    return keyword_mem


def by_form(mem: Memory, kind: str) -> dict[str, MemoryEntry]:
    return {str(e.metadata["form"]): e for e in mem.list(user_id="ada", tags=[f"ingest:{kind}"])}


def test_tweets_replies_and_retweets(mem: Memory) -> None:
    summary = mem.ingest("twitter", DATA / "twitter", user_id="ada")
    assert (summary.collection, summary.added, summary.errors) == ("ada_l", 3, 1)
    assert summary.problems[0].startswith("data/tweets.js:line 59: unexpected shape "
                                          "(ValueError(\"time data 'not a date'")
    forms = by_form(mem, "twitter")
    tweet, reply, retweet = forms["tweet"], forms["reply"], forms["retweet"]
    assert tweet.content == ("My tomatoes finally sprouted on the balcony #gardening "
                             "https://example.org/tomatoes")
    assert tweet.sources[0].ref == "https://x.com/ada_l/status/1785600000000000001"
    assert tweet.occurred_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert reply.metadata["in_reply_to_user"] == "grace_h"
    assert retweet.content == "RT @nasa: The Moon tonight"
    assert retweet.metadata["attachments"] == ["https://pbs.twimg.com/media/abc.jpg"]
    again = mem.ingest("twitter", DATA / "twitter", user_id="ada")
    assert (again.added, again.unchanged) == (0, 3)


def test_mastodon_posts_replies_and_what_is_skipped(mem: Memory) -> None:
    summary = mem.ingest("mastodon", DATA / "mastodon", user_id="ada")
    assert (summary.collection, summary.added, summary.skipped, summary.errors) == \
        ("https://mastodon.social/users/ada", 2, 1, 1)
    assert summary.problems == ["outbox.json:line 65: unexpected shape "
                                "(KeyError('id'))"]
    forms = by_form(mem, "mastodon")
    post, reply = forms["post"], forms["reply"]
    assert post.content == ("I moved to Porto last spring & I love the #riverside walks.\n\n"
                            "Second paragraph.\n\n[image: The Douro at sunset]")
    assert post.sources[0].ref == "https://mastodon.social/@ada/110000000000000001"
    assert post.tags == ("ingest:mastodon", "post", "riverside")
    assert post.metadata["visibility"] == "public"
    assert reply.content == ("CW: food\n\n@bob the francesinha was too much for me\n"
                             "next time a salad")
    assert reply.metadata["visibility"] == "followers"
    assert reply.metadata["in_reply_to"] == "https://other.example/users/bob/statuses/998"
    facts = {e.content for e in mem.list(user_id="ada") if e.sources[0].kind == "extraction"}
    assert any("Porto" in f for f in facts)  # said in a post; a post behind a CW is not mined


def test_an_edited_post_updates_its_memory(mem: Memory, tmp_path: Path) -> None:
    archive = Path(shutil.copytree(DATA / "mastodon", tmp_path / "archive"))
    mem.ingest("mastodon", archive, user_id="ada")
    outbox = archive / "outbox.json"
    outbox.write_text(outbox.read_text().replace("walks.</p><p>Second", "walks.</p><p>Edited"))
    summary = mem.ingest("mastodon", archive, user_id="ada")
    assert (summary.added, summary.updated, summary.unchanged) == (0, 1, 1)
    assert "Edited paragraph." in by_form(mem, "mastodon")["post"].content
