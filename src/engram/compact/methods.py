"""`Memory`'s compaction methods (docs/compaction.md), kept beside the package they drive, as
`sync.methods` is: `compact`, `concepts`, and the hooks maintenance and forget call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from engram.clock import Clock
from engram.compact.cluster import Grouping
from engram.compact.recall import with_concepts
from engram.compact.run import SEEN, Compactor, Model, Progress, Report, concepts_of
from engram.compact.summary import Length
from engram.errors import InvalidInput
from engram.lifecycle.tiers import Policy
from engram.model import Kind, MemoryEntry, check_id
from engram.query import Hit
from engram.recall.hybrid import Hybrid
from engram.store.base import Store, Tx

if TYPE_CHECKING:
    from engram.llm import Provider


class Host(Protocol):
    """What these methods use of `Memory`."""

    @property
    def store(self) -> Store: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def hybrid(self) -> Hybrid: ...

    @property
    def policy(self) -> Policy: ...

    def flush(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Concept:
    """A concept as `engram concepts` lists it."""

    id: str
    name: str
    summary: str
    members: tuple[str, ...]
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "summary": self.summary,
                "members": list(self.members), "method": self.method}


def compactor(host: Host, model: Model | None = None) -> Compactor:
    """A compactor with the host's store and the thresholds of its policy."""
    p = host.policy
    return Compactor(host.store, host.hybrid, host.clock,
                     grouping=Grouping(p.compact_distance, p.compact_entity,
                                       min_size=p.compact_min_size),
                     length=Length(p.compact_ratio, cap=p.compact_max_tokens), model=model)


class CompactMethods:
    """`Memory.compact` and `Memory.concepts`, mirroring `engram compact` and `engram
    concepts`."""

    def compact(self: Host, user_id: str, *, model: Provider | str | None = None,
                progress: Progress | None = None) -> Report:
        """Cluster the user's memories into concepts and write (or redo) their summaries,
        one transaction per concept. `model` (a provider or a spec like `ollama:phi3`) writes
        abstractive summaries; without one, or when it fails, they are extractive (the
        report says which). Needs the `compact` extra (scikit-learn) and an embedder."""
        user = check_id(user_id, "user_id", required=True)
        assert user is not None
        require_clustering()
        self.flush()
        return compactor(self, _model(model)).run(user, progress)

    def concepts(self: Host, user_id: str) -> list[Concept]:
        """The user's concepts, largest first, each with its member ids."""
        user = check_id(user_id, "user_id", required=True)
        assert user is not None
        found = []
        for c in concepts_of(self.store, user):
            about = c.metadata.get("concept", {})
            found.append(Concept(c.id, str(about.get("name", "")), c.content,
                                 c.links.derived_from, str(about.get("method", ""))))
        return sorted(found, key=lambda c: (-len(c.members), c.id))

    def _compact_due(self: Host, recent: Sequence[MemoryEntry]) -> int:
        """The maintenance step: compact each user with `compact.min_new` memories newer than
        what their last compaction saw (`recent`: the short-term memories maintenance read).
        Skipped without an embedder or without scikit-learn. Returns concepts written."""
        need = self.policy.compact_min_new
        if need <= 0 or self.hybrid.embedder is None or not _clustering_installed():
            return 0
        seen = self.store.settings_of(SEEN)  # user -> the newest id their last run saw
        new: dict[str, int] = {}
        for m in recent:
            if m.memory_type is not Kind.CONCEPT and m.id > seen.get(m.user_id, ""):
                new[m.user_id] = new.get(m.user_id, 0) + 1
        written = 0
        for user, count in sorted(new.items()):
            if count >= need:
                report = compactor(self).run(user)
                written += report.added + report.redone
        return written

    def _with_concepts(self: Host, hits: Sequence[Hit], user_id: str) -> list[Hit]:
        """For `assemble`: the concepts of the recalled memories beside them."""
        return with_concepts(self.store, hits, user_id)

    def _forget_concepts(self: Host, tx: Tx, memory_id: str) -> list[MemoryEntry]:
        """Inside forget's transaction: drop every concept that summarised `memory_id` (its
        summary may hold the forgotten text; forgetting it redacts every copy)."""
        gone = tx.get(memory_id)
        if gone is None or gone.memory_type is Kind.CONCEPT:
            return []
        holding = [c for c in concepts_of(self.store, gone.user_id)
                   if memory_id in c.links.derived_from]
        for concept in holding:
            compactor(self).drop(tx, concept.id, "a member was forgotten")
        return holding

    def _recompose(self: Host, dropped: Sequence[MemoryEntry], forgotten: str) -> list[str]:
        """After forget: the dropped concepts written again from their remaining members."""
        return compactor(self).recompose(dropped, forgotten) if dropped else []


def _model(model: Provider | str | None) -> Model | None:
    if model is None:
        return None
    if isinstance(model, str):
        from engram.llm import load_provider

        model = load_provider(model)
    provider = model
    return Model(provider.name, lambda messages: provider.complete(messages))


def _clustering_installed() -> bool:
    try:
        import sklearn  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def require_clustering() -> None:
    """A clear error when the `compact` extra is missing."""
    if not _clustering_installed():
        raise InvalidInput("compact", "needs scikit-learn, which is not installed",
                           "pip install 'engram-memory[compact]'")
