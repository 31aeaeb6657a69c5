"""Mail: an mbox file (Gmail's Takeout, Thunderbird, mutt...) read by the standard library.
One memory per message: subject, people and the new part of the body, with quoted replies,
forwarded-history and signatures trimmed; the thread is the session."""

from __future__ import annotations

import email.policy
import hashlib
import mailbox
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Any

from engram.errors import InvalidInput
from engram.ingest import files
from engram.ingest.datapoint import DataPoint, Options, Read, Skipped
from engram.ingest.html_text import to_text
from engram.model import Kind

KIND = "mbox"
MAX_BODY = 8000  # characters of a message's own text kept (a memory is at most 64 KiB)
_WHAT = "an mbox file"
# Where the quoted history of a reply starts: "On Mon, 3 Jun 2024, Ada wrote:", Outlook's
# "-----Original Message-----" and "From: ..." header blocks, and forwarded messages.
_HISTORY = re.compile(r"^(On .{4,200}wrote:|-{2,}\s*Original Message\s*-{2,}|"
                      r"-{2,}\s*Forwarded message\s*-{2,}|From: .+\nSent: .+)",
                      re.MULTILINE | re.IGNORECASE)
_SIGNATURE = re.compile(r"^-- ?$", re.MULTILINE)  # the signature delimiter "-- "


def collection(root: Path) -> str:
    return _mbox(root).name


def read(root: Path, options: Options) -> Iterator[Read]:
    path = _mbox(root)
    box = mailbox.mbox(path, create=False)
    try:
        for position, key in enumerate(box.iterkeys()):
            try:
                message = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
                yield mail(message, path.name, position)
            except (ValueError, TypeError, LookupError, AttributeError) as exc:
                yield Skipped(path.name, f"message {position + 1}", f"unreadable ({exc!r})")
    finally:
        box.close()


def mail(message: EmailMessage, name: str, position: int) -> Read:
    """One message as a DataPoint."""
    subject = str(message.get("Subject", "")).strip() or "(no subject)"
    sender = _people(message, "From")
    recipients = _people(message, "To") + _people(message, "Cc")
    body = trim(_body(message))
    if not body and subject == "(no subject)":
        return Skipped(name, f"message {position + 1}", "empty message", error=False)
    ident = str(message.get("Message-ID", "")).strip().strip("<>")
    if not ident:  # no id: one from what identifies the message
        ident = "sha256:" + hashlib.sha256(
            f"{message.get('From')}|{message.get('Date')}|{subject}".encode()).hexdigest()[:32]
    references = str(message.get("References", "")).split() or \
        str(message.get("In-Reply-To", "")).split()
    thread = references[0].strip("<>") if references else ident
    header = f"Subject: {subject}\nFrom: {', '.join(sender)}"
    if recipients:
        header += f"\nTo: {', '.join(recipients)}"
    metadata: dict[str, Any] = {"subject": subject, "from": sender, "to": recipients}
    if references:
        metadata["in_reply_to"] = references[-1].strip("<>")
    attachments = tuple(str(part.get_filename()) for part in message.iter_attachments()
                        if part.get_filename())
    return DataPoint(kind=KIND, external_id=ident, text=f"{header}\n\n{body}".strip(),
                     ref=f"{name}#{ident}", time=_date(message), author=", ".join(sender),
                     session=thread[:256], memory_type=Kind.CONTEXT, tags=("mail",),
                     attachments=attachments, metadata=metadata)


def trim(body: str) -> str:
    """The part of a message its sender wrote: no quoted lines, no quoted history after
    'On ... wrote:', no signature; at most MAX_BODY characters."""
    history = _HISTORY.search(body)
    if history:
        body = body[:history.start()]
    signature = _SIGNATURE.search(body)
    if signature:
        body = body[:signature.start()]
    kept = [line for line in body.splitlines() if not line.lstrip().startswith(">")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    return text[:MAX_BODY]


def _mbox(root: Path) -> Path:
    path = files.file(root, _WHAT)
    with path.open("rb") as head:
        start = head.read(5)
    if start and start != b"From ":
        raise InvalidInput("path", f"{path} is not an mbox file (it does not start with a "
                           "'From ' line)", "give the .mbox file of the export")
    return path


def _people(message: EmailMessage, header: str) -> list[str]:
    return [f"{name} <{address}>" if name else address
            for name, address in getaddresses([str(v) for v in message.get_all(header, [])])
            if address]


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = str(part.get_content())
    return to_text(content) if part.get_content_subtype() == "html" else content


def _date(message: EmailMessage) -> datetime | None:
    raw = message.get("Date")
    if not raw:
        return None
    moment = parsedate_to_datetime(str(raw))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
