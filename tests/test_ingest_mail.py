"""Mail: an mbox file read by the standard library; one memory per message with its subject,
people and own text (quoted replies and signatures trimmed, HTML as text), the thread as the
session; a message with a broken date is reported with its position and skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from engram import Memory
from engram.errors import InvalidInput
from engram.ingest.mbox import trim
from engram.model import MemoryEntry

MBOX = Path(__file__).parent / "data" / "ingest" / "mail" / "inbox.mbox"


@pytest.fixture
def mem(keyword_mem: Memory) -> Memory:
    return keyword_mem


def by_subject(mem: Memory) -> dict[str, MemoryEntry]:
    return {str(e.metadata["subject"]): e for e in mem.list(user_id="ada", tags=["ingest:mbox"])}


def test_messages_become_memories_with_people_thread_and_own_text(mem: Memory) -> None:
    summary = mem.ingest("mbox", MBOX, user_id="ada")
    assert (summary.added, summary.errors) == (4, 1)
    assert summary.problems == ["inbox.mbox:message 4: unreadable (ValueError('Invalid date "
                                "value or format \"this is not a date\"'))"]
    mails = by_subject(mem)
    plan, reply = mails["Porto in July"], mails["Re: Porto in July"]
    assert plan.content == ("Subject: Porto in July\nFrom: Ada Lovelace <ada@example.org>\n"
                            "To: Grace Hopper <grace@example.org>\n\nHi Grace,\n\nI booked the "
                            "train to Porto for the 12th of July. Shall we meet at São Bento?"
                            "\n\nAda")  # the signature is gone
    assert plan.occurred_at == datetime(2024, 6, 3, 8, 15, tzinfo=UTC)
    assert plan.sources[0].ref == "inbox.mbox#plan-1@example.org"
    assert reply.content.endswith("Yes! São Bento at noon works for me.")  # no quoted history
    assert reply.session_id == plan.session_id == "plan-1@example.org"
    assert mails["New seeds in stock"].content.endswith(
        "New seeds\n\nSan Marzano tomatoes are back & basil too.\n\nUnsubscribe")
    note = mails["Note to self"]  # no Message-ID: an id from sender, date and subject
    assert note.metadata["ingest"]["id"].startswith("sha256:")
    assert mem.ingest("mbox", MBOX, user_id="ada").unchanged == 4


def test_quoted_lines_outlook_history_and_signatures_are_trimmed() -> None:
    assert trim("Sounds good.\n> old line\n>> older\nBye") == "Sounds good.\nBye"
    assert trim("Fine by me.\n\n-----Original Message-----\nFrom: x\nHi") == "Fine by me."
    assert trim("See you.\n-- \nAda\n+351 000") == "See you."


def test_a_file_that_is_not_an_mbox_is_one_error(mem: Memory, tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("Dear diary\n")
    with pytest.raises(InvalidInput, match="is not an mbox file"):
        mem.ingest("mbox", other, user_id="ada")
    with pytest.raises(InvalidInput, match="is a folder, not a file"):
        mem.ingest("mbox", tmp_path, user_id="ada")
