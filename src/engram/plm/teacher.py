"""Teacher logs: which exchanges a stronger model answered for this user, and the distillation
set built from them.

An exchange through `engram chat` or the proxy is already a turn memory (the user's query and
the model's answer, verbatim). When `plm.teacher` names the model that answered (or is `*`),
`logged` marks that turn with the teacher's name: one `memory.updated` event, so the log is in
the event log, kept by `engram rebuild`, carried by sync, and forgotten with the turn."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engram.capture.writer import TURN_TAG
from engram.errors import InvalidInput
from engram.model import Status
from engram.query import Filters

if TYPE_CHECKING:
    from engram.capture.turns import Remembered
    from engram.memory import Memory

TEACHER_KEY = "teacher"  # in a turn's metadata: the model that answered it
ANY = "*"
SYSTEM_TAGS = (TURN_TAG, "train:", "plm:")


@dataclass(frozen=True, slots=True)
class Example:
    """One distillation example: the query as asked, the teacher's answer, who answered."""

    query: str
    response: str
    teacher: str
    memory_id: str


def teaches(setting: str, model: str | None) -> bool:
    """Whether `model`'s answers are teacher data under the `plm.teacher` setting."""
    wanted = setting.strip()
    return bool(wanted and model) and wanted in (ANY, model)


def logged(mem: Memory, remembered: Remembered | None, model: str | None) -> None:
    """Mark a remembered exchange as the teacher's when `plm.teacher` says so (the one-line
    hook of chat and the proxy)."""
    setting = str(getattr(mem.policy, "plm_teacher", ""))
    if remembered is None or not teaches(setting, model):
        return
    turn = remembered.turn
    if not turn.metadata.get("turn", {}).get("assistant"):
        return  # nothing was answered: nothing to learn from
    mem.update(turn.id, metadata={**turn.metadata, TEACHER_KEY: model})


def examples(mem: Memory, user_id: str, teacher: str | None = None) -> list[Example]:
    """The user's logged teacher exchanges, oldest first (only `teacher`'s when given);
    turns expired from short-term memory still count, forgotten ones are gone."""
    found = []
    kept = Filters(user_id=user_id, tags=(TURN_TAG,), statuses=(Status.ACTIVE, Status.EXPIRED))
    for entry in mem.store.select(kept, newest_first=False):
        model = entry.metadata.get(TEACHER_KEY)
        turn = entry.metadata.get("turn", {})
        if not model or (teacher and teacher != ANY and model != teacher):
            continue
        if turn.get("user") and turn.get("assistant"):
            found.append(Example(str(turn["user"]), str(turn["assistant"]), str(model),
                                 entry.id))
    return found


def write(found: Iterable[Example], out: Path) -> dict[str, Any]:
    """The distillation set as JSONL (`query`, `response`, `teacher`, `memory_id`) at `out`,
    written beside and renamed; its manifest (count, teachers, sha256)."""
    lines = [json.dumps(asdict(e), ensure_ascii=False, sort_keys=True) for e in found]
    if not lines:
        raise InvalidInput("teacher-data", "no logged teacher exchanges for this user",
                           "set `engram config set plm.teacher MODEL` (or *) and chat through "
                           "that model first")
    body = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(out)
    teachers = sorted({json.loads(line)["teacher"] for line in lines})
    return {"path": str(out), "examples": len(lines), "teachers": teachers,
            "sha256": hashlib.sha256(body.encode()).hexdigest()}


def user_texts(mem: Memory, user_id: str) -> dict[str, list[str]]:
    """The user's texts by domain, as memory says: each active memory's text (of a chat turn,
    the user's query: the answer is the model's, and a logged one is learnt as an exchange)
    under its domains, else its own tags, else its first entity, else "general"."""
    by_domain: dict[str, list[str]] = {}
    for entry in mem.store.select(Filters(user_id=user_id), newest_first=False):
        labels = list(entry.domains) or [t for t in entry.tags
                                         if not t.startswith(SYSTEM_TAGS)] or \
            list(entry.entities)[:1] or ["general"]
        text = str(entry.metadata.get("turn", {}).get("user") or entry.content) \
            if TURN_TAG in entry.tags else entry.content
        for label in labels:
            by_domain.setdefault(label, []).append(text)
    if not by_domain:
        raise InvalidInput("user", f"{user_id!r} has no memories",
                           "add memories for this user, or name another with --user")
    return by_domain
