"""Remembering what was said: the raw turn as short-term context, and what it states as
consolidated memories (corroborating, adding, superseding) — all in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from engram.capture.writer import TURN_TAG, Writer
from engram.embed.vectors import Vec8
from engram.errors import InvalidInput
from engram.extract import extract
from engram.extract.llm import LLMExtractor, Proposal
from engram.lifecycle import consolidate
from engram.log.events import EventType
from engram.model import Kind, LinkKind, MemoryEntry, Status, format_time
from engram.query import Filters
from engram.recall.ranking import DEFAULT_WEIGHTS, Weights
from engram.store.base import Store, Tx


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


def remember(writer: Writer, item: Mapping[str, Any], *, speaker: str = "user",
             text: str | None = None, extractor: LLMExtractor | None = None,
             near_duplicate: float, weights: Weights = DEFAULT_WEIGHTS) -> Remembered:
    """Store `item` (add()'s fields) and consolidate what `text` (default: its text) states:
    by the offline rules, or by `extractor`'s decisions. One transaction."""
    record, _ = writer.prepare(item)
    said = text if text is not None else record.content
    if extractor is not None:
        plans = _llm_plans(writer, extractor, record, said, weights)
        vectors = writer.embeddings.vectors_for([record, *(plan.entry for plan in plans)])
    else:
        claims = stated_claims(writer, record, said, speaker)
        vectors = writer.embeddings.vectors_for([record, *claims])
        plans = _rule_plans(writer, claims, vectors, near_duplicate)
    with writer.store.transaction() as tx:
        writer.embeddings.store_vectors(tx, vectors)
        writer.append(tx, EventType.ADDED, record.id, {"memory": record.to_dict()})
        kept, superseded = [], []
        for plan in plans:
            decision = plan.decide(tx)
            if plan.update and decision.target is not None:
                writer.append(tx, EventType.UPDATED, decision.target.id, {
                    "changes": {"content": plan.entry.content,
                                "content_hash": plan.entry.content_hash},
                    "at": format_time(record.created_at)})
            kept.append(writer.apply(tx, plan.entry, decision))
            superseded += [old.id for old in decision.supersede]
    return Remembered(record, kept, superseded)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A memory to consolidate: how to decide against the store (inside the transaction, so
    it sees the memories written before it), and whether it rewrites its target's text."""

    entry: MemoryEntry
    decide: Callable[[Tx], consolidate.Decision]
    update: bool = False


def stated_claims(writer: Writer, record: MemoryEntry, said: str,
                  speaker: str) -> list[MemoryEntry]:
    """What the rules extract from what was said, as entries linked to the turn (or to an
    ingested item: `engram.ingest.pipeline`)."""
    claims = []
    for claim in extract(said, at=record.occurred_at, speaker=speaker):
        entry, _ = writer.prepare(consolidate.claim_item(claim, turn=record,
                                                         at=record.occurred_at))
        claims.append(consolidate.with_slot(entry, claim, record.id))
    return claims


def _rule_plans(writer: Writer, claims: list[MemoryEntry], fresh: dict[str, Vec8],
                near_duplicate: float) -> list[_Plan]:
    nearest = _nearest(writer, claims, fresh)

    def rule(entry: MemoryEntry) -> Callable[[Tx], consolidate.Decision]:
        return lambda tx: consolidate.decide(
            entry, same_text=tx.find_by_hash(entry.user_id, entry.content_hash),
            same_slot=tx.find_by_slot(entry.user_id, entry.slot) if entry.slot else [],
            nearest=nearest.get(entry.id), near_duplicate=near_duplicate)
    return [_Plan(entry, rule(entry)) for entry in claims]


def _llm_plans(writer: Writer, extractor: LLMExtractor, record: MemoryEntry, said: str,
               weights: Weights) -> list[_Plan]:
    """The LLM proposes memories and decides against the user's nearest ones."""
    hits = writer.embeddings.search(said, Filters(user_id=record.user_id),
                                    extractor.neighbours, writer.clock.now(), weights)
    existing = [h.memory for h in hits if TURN_TAG not in h.memory.tags]
    known = {m.id: m for m in existing}
    plans = []
    for p in extractor.propose(said, record.occurred_at, existing).accepted:
        entry, _ = writer.prepare(_proposal_item(p, record, extractor.provider.name))
        entry = replace(entry, slot=f"user/{p.attribute}" if p.attribute else None,
                        links=entry.links.add(LinkKind.DERIVED_FROM, record.id))
        target = known.get(p.target_id or "")
        decision = consolidate.Decision(None, (target,) if target else ()) \
            if p.action == "SUPERSEDE" else consolidate.Decision(target)
        plans.append(_Plan(entry, _fixed(decision), update=p.action == "UPDATE"))
    return plans


def _fixed(decision: consolidate.Decision) -> Callable[[Tx], consolidate.Decision]:
    return lambda _tx: decision


def _proposal_item(p: Proposal, turn: MemoryEntry, model: str) -> dict[str, Any]:
    return {"text": p.content, "user_id": turn.user_id, "agent_id": turn.agent_id,
            "session_id": turn.session_id, "at": turn.occurred_at,
            "memory_type": p.memory_type, "truth_category": p.truth_category,
            "confidence": p.confidence, "entities": list(p.entities),
            "source": {"kind": "extraction", "ref": turn.id, "model": model},
            "privacy": turn.privacy, "sensitive": turn.sensitive}


def _nearest(writer: Writer, claims: list[MemoryEntry],
             fresh: dict[str, Vec8]) -> dict[str, tuple[MemoryEntry, float]]:
    """For memories without a slot: the most similar active memory of the same user and kind
    (read before the transaction). Texts Engram has seen before are exact duplicates, which
    `find_by_hash` handles; only new texts (with fresh vectors) need this."""
    embedder = writer.embeddings.embedder
    if embedder is None:
        return {}
    out = {}
    for entry in claims:
        if entry.slot is not None or entry.content_hash not in fresh:
            continue
        vector = fresh[entry.content_hash].astype(np.float32)
        filters = Filters(user_id=entry.user_id, memory_type=entry.memory_type,
                          statuses=(Status.ACTIVE,))
        found = writer.store.vector_candidates(vector, filters, embedder.name, 1)
        if found:
            brief, similarity = found[0]
            target = writer.store.get(brief.id)
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


def conversation(store: Store, session_id: str, user_id: str) -> list[dict[str, str]]:
    """The session's recorded turns as chat messages, oldest first."""
    filters = Filters(user_id=user_id, session_id=session_id, tags=(TURN_TAG,), statuses=None)
    messages = []
    for entry in store.select(filters, newest_first=False):
        turn = entry.metadata.get("turn", {})
        messages.append({"role": "user", "content": str(turn.get("user", entry.content))})
        if turn.get("assistant"):
            messages.append({"role": "assistant", "content": str(turn["assistant"])})
    return messages
