"""Remembering what was said: the raw turn as short-term context, and what it states as
consolidated memories (corroborating, adding, superseding) — all in one transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from engram import validate as intake
from engram.embed.vectors import Vec8
from engram.errors import InvalidInput
from engram.extract import extract
from engram.extract.llm import LLMExtractor, Proposal
from engram.lifecycle import consolidate
from engram.log.events import Draft, EventType
from engram.model import Kind, LinkKind, MemoryEntry, Status, format_time, to_json
from engram.query import Filters
from engram.store.base import Tx

if TYPE_CHECKING:
    from engram.memory import Memory

TURN_TAG = "turn"


@dataclass(frozen=True, slots=True)
class Remembered:
    """What a turn left in memory: its own record and the memories extracted from it."""

    turn: MemoryEntry
    extracted: list[MemoryEntry] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [self.turn.id, *(m.id for m in self.extracted)]


def turn_text(user_msg: str, assistant_msg: str | None) -> str:
    return f"User: {user_msg}" + (f"\nAssistant: {assistant_msg}" if assistant_msg else "")


def remember(memory: Memory, item: Mapping[str, Any], *, speaker: str = "user",
             text: str | None = None) -> Remembered:
    """Store `item` (add()'s fields) and consolidate what `text` (default: its text) states."""
    now = memory.clock.now()
    record, _ = intake.prepare(item, now=now, device_id=memory.store.device_id,
                               max_content_bytes=memory.max_content_bytes)
    said = text if text is not None else record.content
    if memory.extractor is not None:
        return _remember_with_llm(memory, memory.extractor, record, said)
    found = extract(said, at=record.occurred_at, speaker=speaker)
    claims = []
    for claim in found:
        entry, _ = intake.prepare(consolidate.claim_item(claim, turn=record, at=record.occurred_at),
                                  now=now, device_id=memory.store.device_id,
                                  max_content_bytes=memory.max_content_bytes)
        claims.append(consolidate.with_slot(entry, claim, record.id))
    hybrid = memory.hybrid
    vectors = hybrid.vectors_for([record, *claims])
    nearest = _nearest(memory, claims, vectors)
    with memory.store.transaction() as tx:
        hybrid.store_vectors(tx, vectors)
        tx.append(Draft(EventType.ADDED, record.id, {"memory": record.to_dict()}, memory.actor))
        kept, superseded = [], []
        for entry in claims:
            decision = consolidate.decide(
                entry, same_text=tx.find_by_hash(entry.user_id, entry.content_hash),
                same_slot=tx.find_by_slot(entry.user_id, entry.slot) if entry.slot else [],
                nearest=nearest.get(entry.id), near_duplicate=memory.policy.near_duplicate)
            stored = _apply(tx, entry, decision, memory.actor)
            superseded += [old.id for old in decision.supersede]
            kept.append(stored)
    return Remembered(record, kept, superseded)


def _remember_with_llm(memory: Memory, extractor: LLMExtractor, record: MemoryEntry,
                       said: str) -> Remembered:
    """The LLM proposes memories and decides against the user's nearest ones; its decisions
    are applied like the rule-based ones, in one transaction."""
    now = memory.clock.now()
    hits = memory.hybrid.search(said, Filters(user_id=record.user_id), extractor.neighbours,
                                now, memory.weights)
    existing = [h.memory for h in hits if TURN_TAG not in h.memory.tags]
    proposals = extractor.propose(said, record.occurred_at, existing)
    known = {m.id: m for m in existing}
    plans = []
    for p in proposals.accepted:
        entry, _ = intake.prepare(_proposal_item(p, record, extractor.provider.name), now=now,
                                  device_id=memory.store.device_id,
                                  max_content_bytes=memory.max_content_bytes)
        entry = replace(entry, slot=f"user/{p.attribute}" if p.attribute else None,
                        links=entry.links.add(LinkKind.DERIVED_FROM, record.id))
        target = known.get(p.target_id or "")
        decision = consolidate.Decision(None, (target,) if target else ()) \
            if p.action == "SUPERSEDE" else consolidate.Decision(target)
        plans.append((entry, decision, p.action == "UPDATE"))
    vectors = memory.hybrid.vectors_for([record, *(entry for entry, _, _ in plans)])
    with memory.store.transaction() as tx:
        memory.hybrid.store_vectors(tx, vectors)
        tx.append(Draft(EventType.ADDED, record.id, {"memory": record.to_dict()}, memory.actor))
        kept, superseded = [], []
        for entry, decision, update in plans:
            if update and decision.target is not None:
                tx.append(Draft(EventType.UPDATED, decision.target.id, {
                    "changes": {"content": entry.content, "content_hash": entry.content_hash},
                    "at": format_time(now)}, memory.actor))
            kept.append(_apply(tx, entry, decision, memory.actor))
            superseded += [old.id for old in decision.supersede]
    return Remembered(record, kept, superseded)


def _proposal_item(p: Proposal, turn: MemoryEntry, model: str) -> dict[str, Any]:
    return {"text": p.content, "user_id": turn.user_id, "agent_id": turn.agent_id,
            "session_id": turn.session_id, "at": turn.occurred_at,
            "memory_type": p.memory_type, "truth_category": p.truth_category,
            "confidence": p.confidence, "entities": list(p.entities),
            "source": {"kind": "extraction", "ref": turn.id, "model": model},
            "privacy": turn.privacy, "sensitive": turn.sensitive}


def _apply(tx: Tx, entry: MemoryEntry, decision: consolidate.Decision,
           actor: str) -> MemoryEntry:
    stamp = format_time(entry.created_at)
    if decision.target is None:
        tx.append(Draft(EventType.ADDED, entry.id, {"memory": entry.to_dict()}, actor))
        stored = entry
    else:
        target = decision.target
        tx.append(Draft(EventType.CORROBORATED, target.id, {
            "at": stamp, "source": to_json(entry.sources[0]),
            "confidence": consolidate.corroborated(max(target.confidence.overall,
                                                       entry.confidence.overall))}, actor))
        for turn_id in entry.links.derived_from:  # every turn that said it
            tx.append(Draft(EventType.LINKED, target.id, {
                "kind": LinkKind.DERIVED_FROM.value, "target": turn_id, "at": stamp}, actor))
        found = tx.get(target.id)
        assert found is not None
        stored = found
    for old in decision.supersede:
        _supersede(tx, old, stored, stamp, actor)
        tx.append(Draft(EventType.LINKED, stored.id, {"kind": "supersedes", "target": old.id,
                                                      "at": stamp}, actor))
        # The turns that stated the old value leave recall with it (the session's
        # conversation still shows them); what else they said lives on in its own memories.
        for turn_id in old.links.derived_from:
            turn = tx.get(turn_id)
            if turn is not None and turn.status is Status.ACTIVE and TURN_TAG in turn.tags:
                _supersede(tx, turn, stored, stamp, actor)
    return tx.get(stored.id) or stored


def _supersede(tx: Tx, old: MemoryEntry, new: MemoryEntry, stamp: str, actor: str) -> None:
    tx.append(Draft(EventType.SUPERSEDED, old.id, {
        "by": new.id, "at": stamp, "reason": f"now: {new.content}",
        "confidence": consolidate.contradicted(old.confidence.overall)}, actor))


def _nearest(memory: Memory, claims: list[MemoryEntry],
             fresh: dict[str, Vec8]) -> dict[str, tuple[MemoryEntry, float]]:
    """For memories without a slot: the most similar active memory of the same user and kind
    (read before the transaction). Texts Engram has seen before are exact duplicates, which
    `find_by_hash` handles; only new texts (with `fresh` vectors) need this."""
    embedder = memory.hybrid.embedder
    if embedder is None:
        return {}
    out = {}
    for entry in claims:
        if entry.slot is not None or entry.content_hash not in fresh:
            continue
        vector = fresh[entry.content_hash].astype(np.float32)
        filters = Filters(user_id=entry.user_id, memory_type=entry.memory_type,
                          statuses=(Status.ACTIVE,))
        found = memory.store.vector_candidates(vector, filters, embedder.name, 1)
        if found:
            brief, similarity = found[0]
            target = memory.store.get(brief.id)
            if target is not None and TURN_TAG not in target.tags:
                out[entry.id] = (target, similarity)
    return out


def turn_item(user_msg: str, assistant_msg: str | None, *, user_id: str, session_id: str,
              agent_id: str | None, at: datetime | str | None) -> dict[str, Any]:
    """add() fields of a raw turn: short-term context, kept verbatim for the session."""
    for name, value in (("user_msg", user_msg), ("assistant_msg", assistant_msg)):
        if value is not None and not isinstance(value, str):
            raise InvalidInput(name, f"expected a string, got {type(value).__name__}",
                               "pass the message text")
    if not isinstance(user_msg, str) or not user_msg.strip():
        raise InvalidInput("user_msg", "is empty", "pass what the user said")
    turn = {"user": user_msg}
    if assistant_msg:
        turn["assistant"] = assistant_msg
    return {"text": turn_text(user_msg, assistant_msg), "user_id": user_id,
            "session_id": session_id, "agent_id": agent_id, "at": at,
            "memory_type": Kind.CONTEXT, "tags": [TURN_TAG], "metadata": {"turn": turn},
            "source": {"kind": "conversation"}, "dedupe": False}


def conversation(memory: Memory, session_id: str, user_id: str) -> list[dict[str, str]]:
    """The session's recorded turns as chat messages, oldest first."""
    filters = Filters(user_id=user_id, session_id=session_id, tags=(TURN_TAG,), statuses=None)
    messages = []
    for entry in memory.store.select(filters, newest_first=False):
        turn = entry.metadata.get("turn", {})
        messages.append({"role": "user", "content": str(turn.get("user", entry.content))})
        if turn.get("assistant"):
            messages.append({"role": "assistant", "content": str(turn["assistant"])})
    return messages
