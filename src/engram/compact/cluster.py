"""Which memories belong together: agglomerative clustering (scikit-learn, average linkage)
over the cosine distance of their embeddings, drawn closer when two memories name the same
people and things or fill the same slot. Pure apart from the library call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engram.errors import InvalidInput
from engram.extract.text import entities
from engram.model import MemoryEntry

Array = npt.NDArray[np.float32]
# Above this many memories the distance matrix (n² floats) is cut into blocks of consecutive
# memories, each clustered on its own: 3,000² float32 is 36 MB.
BLOCK = 3000


@dataclass(frozen=True, slots=True)
class Grouping:
    """How memories are drawn together. `distance`: the average cosine distance under which
    two groups merge; `entity`: how much a shared name shortens a distance (0: not at all, 1:
    to nothing when every name is shared); `slot`: the factor for two values of one slot."""

    distance: float = 0.6
    entity: float = 0.3
    slot: float = 0.5
    min_size: int = 3

    def __post_init__(self) -> None:
        for name in ("distance", "entity", "slot"):
            value = getattr(self, name)
            if not 0.0 <= value <= 2.0:
                raise InvalidInput(f"compact.{name}", f"{value!r} is out of range",
                                   "give a number from 0.0 to 2.0")
        if self.min_size < 2:
            raise InvalidInput("compact.min_size", f"{self.min_size!r} is too small",
                               "a concept needs at least 2 members")


def names_of(memory: MemoryEntry) -> frozenset[str]:
    """The people and things a memory names: its entities, and the capitalised names in it."""
    found = {e.casefold() for e in memory.entities}
    found |= {e.casefold() for e in entities(memory.content)}
    return frozenset(found)


def distances(vectors: Array, names: Sequence[frozenset[str]], slots: Sequence[str | None],
              grouping: Grouping) -> Array:
    """Pairwise distances: cosine distance, times (1 - entity * Jaccard of their names), times
    `slot` where both fill the same slot."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    out: Array = np.clip(1.0 - unit @ unit.T, 0.0, 2.0).astype(np.float32)
    if grouping.entity:
        out *= 1.0 - grouping.entity * _jaccard(names)
    if grouping.slot != 1.0:
        same = np.array([[a is not None and a == b for b in slots] for a in slots])
        out[same] *= grouping.slot
    np.fill_diagonal(out, 0.0)
    return out


def _jaccard(names: Sequence[frozenset[str]]) -> Array:
    """Jaccard similarity of every pair of name sets (0 where either is empty)."""
    vocab = {n: i for i, n in enumerate(sorted(set().union(*names)))} if names else {}
    if not vocab:
        return np.zeros((len(names), len(names)), dtype=np.float32)
    onehot = np.zeros((len(names), len(vocab)), dtype=np.float32)
    for row, found in enumerate(names):
        onehot[row, [vocab[n] for n in found]] = 1.0
    shared = onehot @ onehot.T
    sizes = onehot.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - shared
    return np.where(union > 0, shared / np.maximum(union, 1.0), 0.0).astype(np.float32)


def cluster(vectors: Array, names: Sequence[frozenset[str]], slots: Sequence[str | None],
            grouping: Grouping) -> list[list[int]]:
    """Groups of row indices of at least `min_size` members, largest first; memories in no
    group are left out. Rows are taken in blocks of `BLOCK` (keep them in time order)."""
    from sklearn.cluster import AgglomerativeClustering

    groups: list[list[int]] = []
    for start in range(0, len(vectors), BLOCK):
        stop = min(start + BLOCK, len(vectors))
        if stop - start < grouping.min_size:
            continue
        matrix = distances(vectors[start:stop], names[start:stop], slots[start:stop], grouping)
        labels = AgglomerativeClustering(
            n_clusters=None, metric="precomputed", linkage="average",
            distance_threshold=grouping.distance).fit_predict(matrix)
        by_label: dict[int, list[int]] = {}
        for row, label in enumerate(labels):
            by_label.setdefault(int(label), []).append(start + row)
        groups += [rows for rows in by_label.values() if len(rows) >= grouping.min_size]
    return sorted(groups, key=lambda rows: (-len(rows), rows[0]))
