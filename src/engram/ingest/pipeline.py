"""DataPoints to memories: batches written through the one writer, each batch one transaction
(a killed run loses at most the two batches in flight, and the next run continues where
the committed ones end). New items are added, changed ones updated in place (an update event:
the old text leaves recall), unchanged ones cost a digest comparison; facts are extracted
from what the owner said as from a chat turn.

The encoder, the slow part, works on one batch in a thread of its own while the next batch
is read and prepared and the one before is written (it runs outside the GIL), so on two
cores reading and writing cost almost no wall time beside it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any, TypeVar

from engram.capture.turns import stated_claims
from engram.capture.writer import Writer
from engram.errors import InvalidInput
from engram.ingest import ledger
from engram.ingest.datapoint import DataPoint, Kept, Read, Skipped
from engram.lifecycle import consolidate
from engram.log.events import EventType
from engram.model import LinkKind, MemoryEntry, Tier, format_time
from engram.query import Filters
from engram.store.base import Tx

# DataPoints a transaction: big enough to keep the encoder's threads busy (1,024 took 12-18 %
# less time than 256 on a 6,000-note vault with minilm-int8, docs/ingest.md), small enough to
# resume after a kill with little redone.
BATCH = 1024
UPDATABLE = ("content", "content_hash", "occurred_at", "session_id", "memory_type", "tags",
             "sources", "metadata")

T = TypeVar("T")


@dataclass(slots=True)
class Summary:
    """What a run did: counts by outcome, what the source no longer holds, and each
    malformed item with its file and position."""

    kind: str
    path: str
    collection: str
    read: int = 0  # items the source holds (those of files not read again included)
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # kept out on purpose: private, excluded, empty
    errors: int = 0  # malformed and left out (see `problems`)
    extracted: int = 0  # memories extracted from what was said (new ones)
    linked: int = 0  # wiki links written between memories
    pruned: int = 0  # memories forgotten because their item is gone (--prune)
    deleted: list[str] = field(default_factory=list)  # external ids the source no longer has
    problems: list[str] = field(default_factory=list)

    @property
    def memories(self) -> int:
        """Memories this run created: one per added item plus the facts extracted."""
        return self.added + self.extracted

    def note(self, skipped: Skipped) -> None:
        if skipped.error:
            self.errors += 1
            self.problems.append(str(skipped))
        else:
            self.skipped += 1

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "collection": self.collection,
                "read": self.read, "added": self.added, "updated": self.updated,
                "unchanged": self.unchanged, "skipped": self.skipped, "errors": self.errors,
                "extracted": self.extracted, "memories": self.memories, "linked": self.linked,
                "deleted": len(self.deleted), "pruned": self.pruned,
                "deleted_ids": self.deleted, "problems": self.problems}


Progress = Callable[[Summary], None]


@dataclass(frozen=True, slots=True)
class Run:
    """Who the memories belong to and how they are written."""

    writer: Writer
    user_id: str
    collection: str
    speaker: str = "user"


def ingest(run: Run, summary: Summary, items: Iterator[Read], known: dict[str, ledger.Known],
           progress: Progress | None = None, batch: int = BATCH) -> dict[str, str]:
    """Write what `items` hold that `known` lacks or holds otherwise, batch by batch, then the
    wiki links; returns the stamps of the documents now held as read (for the next run)."""
    ids = {external: k.memory_id for external, k in known.items()}
    by_document = ledger.documents(known)
    seen: set[str] = set()
    links = Links()
    stamps: dict[str, str] = {}
    pending: Prepared | None = None
    with ThreadPoolExecutor(1, thread_name_prefix="engram-ingest-embed") as encoder:
        for chunk in _batches(items, batch):
            points = []
            for item in chunk:
                if isinstance(item, Kept):
                    held = by_document.get(item.document, [])
                    seen.update(held)
                    links.kept(item.document, [e for e in held if known[e].first])
                    summary.read += len(held)
                    summary.unchanged += len(held)
                    stamps[item.document] = item.stamp
                elif isinstance(item, Skipped):
                    summary.note(item)
                elif item.external_id in seen:
                    summary.note(Skipped(item.ref, "", f"repeats the id {item.external_id!r}"))
                else:
                    seen.add(item.external_id)
                    points.append(item)
                    links.note(item)
                    if item.document is not None and item.stamp is not None:
                        stamps[item.document] = item.stamp
            summary.read += len(points)
            plan = ledger.plan(points, known)
            summary.unchanged += plan.unchanged
            if plan.new or plan.changed:
                prepared = _prepare(run, plan, summary, encoder)
                for document in prepared.failed:  # read again next time, to report it again
                    stamps.pop(document, None)
                if pending is not None:
                    ids.update(_write(run, pending, summary))
                pending = prepared
            if progress is not None:
                progress(summary)
        if pending is not None:
            ids.update(_write(run, pending, summary))
            if progress is not None:
                progress(summary)
    summary.deleted = sorted(set(known) - seen)
    summary.linked = links.write(run, ids, known)
    return stamps


@dataclass(slots=True)
class Links:
    """The wiki links a run saw: from each item to the documents it names, written as
    `related` links to each document's first item once every batch is in."""

    heads: dict[str, str] = field(default_factory=dict)  # document -> its first item
    wanted: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def kept(self, document: str, first: list[str]) -> None:
        """A document not read again: its first item as the earlier run recorded it."""
        if first:
            self.heads[document] = first[0]

    def note(self, point: DataPoint) -> None:
        if point.document is not None:
            self.heads.setdefault(point.document, point.external_id)
        if point.links:
            self.wanted.append((point.external_id, point.links))

    def write(self, run: Run, ids: dict[str, str], known: dict[str, ledger.Known]) -> int:
        """Write the links not held yet, in one transaction; returns how many."""
        pairs: dict[tuple[str, str], None] = {}
        for external, documents in self.wanted:
            source = ids.get(external)
            held = known[external].related if external in known else ()
            for document in documents:
                target = ids.get(self.heads.get(document, ""))
                if source and target and target != source and target not in held:
                    pairs[(source, target)] = None
        if pairs:
            writer = run.writer
            at = format_time(writer.clock.now())
            with writer.store.transaction() as tx:
                for source, target in pairs:
                    writer.append(tx, EventType.LINKED, source,
                                  {"kind": LinkKind.RELATED.value, "target": target, "at": at})
        return len(pairs)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch ready to write: its records (with what each replaces), the facts each
    states, the documents of items that could not be prepared, and its vectors to come."""

    records: list[tuple[MemoryEntry, ledger.Known | None]]
    claims: list[list[MemoryEntry]]
    failed: set[str]
    vectors: Future[dict[str, Any]]


def _prepare(run: Run, plan: ledger.Plan, summary: Summary,
             encoder: ThreadPoolExecutor) -> Prepared:
    """The batch's new and changed items and the facts they state, validated, with their
    vectors computing on `encoder`."""
    writer = run.writer
    records: list[tuple[MemoryEntry, ledger.Known | None]] = []
    claims: list[list[MemoryEntry]] = []
    failed: set[str] = set()
    for point, before in [*((p, None) for p in plan.new), *plan.changed]:
        try:
            record, _ = writer.prepare(_item(point, run))
        except InvalidInput as exc:
            summary.note(Skipped(point.ref, "", f"{exc.field} {exc.problem}"))
            failed.add(point.document or "")
            continue
        if before is not None:  # facts link to the memory the item already has
            record = replace(record, id=before.memory_id)
        records.append((record, before))
        claims.append(stated_claims(writer, record, point.said, run.speaker)
                      if point.said else [])
    entries = [r for r, _ in records] + [c for found in claims for c in found]
    return Prepared(records, claims, failed, _vectors(writer, entries, encoder))


def _vectors(writer: Writer, entries: list[MemoryEntry],
             encoder: ThreadPoolExecutor) -> Future[dict[str, Any]]:
    """int8 vectors of the entries whose content has none yet: the store is asked here, in
    the writing thread, and only the encoder runs on `encoder`."""
    texts = writer.embeddings.unembedded(entries)
    if not texts:
        done: Future[dict[str, Any]] = Future()
        done.set_result({})
        return done
    return encoder.submit(writer.embeddings.encode, texts)


def _write(run: Run, batch: Prepared, summary: Summary) -> dict[str, str]:
    """One transaction: the batch's items and the facts they state, with their vectors.
    Returns the memory ids by external id."""
    writer, written = run.writer, {}
    vectors = batch.vectors.result()
    with writer.store.transaction() as tx:
        writer.embeddings.store_vectors(tx, vectors)
        for (record, before), found in zip(batch.records, batch.claims, strict=True):
            if before is None:
                writer.append(tx, EventType.ADDED, record.id, {"memory": record.to_dict()})
            else:
                fresh = record.to_dict()
                writer.append(tx, EventType.UPDATED, record.id, {
                    "changes": {k: fresh[k] for k in UPDATABLE if k in fresh},
                    "at": format_time(record.created_at)})
            written[str(record.metadata[ledger.KEY]["id"])] = record.id
            if before is None:
                summary.added += 1
            else:
                summary.updated += 1
            for claim in found:
                _consolidate(writer, tx, claim, summary)
    return written


def _item(point: DataPoint, run: Run) -> dict[str, Any]:
    """add() fields of an ingested item: long-term (the person kept it on purpose), tagged
    with its kind, its provenance as the memory's source."""
    metadata = dict(point.metadata)
    if point.author is not None:
        metadata["author"] = point.author
    if point.attachments:
        metadata["attachments"] = list(point.attachments)
    metadata[ledger.KEY] = ledger.bookkeeping(point, run.collection)
    return {"text": point.text, "user_id": run.user_id, "session_id": point.session,
            "at": point.time, "tags": [ledger.marker(point.kind), *point.tags],
            "memory_type": point.memory_type, "tier": Tier.LONG_TERM, "metadata": metadata,
            "source": {"kind": point.kind, "ref": point.ref}, "dedupe": False}


def _consolidate(writer: Writer, tx: Tx, claim: MemoryEntry, summary: Summary) -> None:
    """Add the claim, or corroborate the memory with its text or its value; a changed value
    supersedes the old one (near-duplicates by vector are left to `remember_turn`)."""
    decision = consolidate.decide(
        claim, same_text=tx.find_by_hash(claim.user_id, claim.content_hash),
        same_slot=tx.find_by_slot(claim.user_id, claim.slot) if claim.slot else [],
        nearest=None, near_duplicate=1.0)
    writer.apply(tx, claim, decision)
    if decision.target is None:
        summary.extracted += 1


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def prune(run: Run, summary: Summary, known: dict[str, ledger.Known]) -> None:
    """Forget the memories of items the source no longer holds, and the facts extracted from
    them alone, in one transaction. Not after a read with errors: an item that failed to
    parse is missing too, and must not be forgotten for it."""
    if not summary.deleted:
        return
    if summary.errors:
        summary.problems.append(f"not pruned: {len(summary.deleted)} items are gone, but "
                                f"{summary.errors} could not be read; fix them and run again")
        return
    writer = run.writer
    doomed = {known[external].memory_id for external in summary.deleted}
    everything = writer.store.select(Filters(user_id=run.user_id, statuses=None))
    doomed |= {e.id for e in everything if e.links.derived_from
               and set(e.links.derived_from) <= doomed and ledger.KEY not in e.metadata}
    at = format_time(writer.clock.now())
    with writer.store.transaction() as tx:
        for memory_id in sorted(doomed):
            writer.append(tx, EventType.FORGOTTEN, memory_id,
                          {"at": at, "reason": "gone from the ingested source"})
    writer.store.redact_residue()
    summary.pruned = len(doomed)
