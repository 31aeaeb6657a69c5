"""What bench/locomo.py and bench/longmemeval.py share: the recall tables (in-sample, cross-
validated, across datasets, beside the baselines), the saved recall matrices the cross-dataset
rows read, and "answer in context" (is the normalised gold answer inside what the model is
given, for Engram's `Memory.context` and for a baseline's top turns packed into the budget)."""

from __future__ import annotations

import hashlib
import re
import statistics
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cv import GRID, K10, KS, QUESTION_SIGNALS, best, cross_validate, describe
from embed_cache import CACHE_DIR
from engram.context import TokenCounter
from engram.recall.ranking import DEFAULT_WEIGHTS, Weights

BUDGETS = (500, 1000)
MATRICES = CACHE_DIR / "cv"


@dataclass
class Row:
    recall: np.ndarray  # [question, k]
    note: str = ""  # the spread of the folds, or the settings chosen


def grid_fingerprint() -> str:
    return hashlib.sha256(repr(GRID).encode()).hexdigest()[:16]


@dataclass
class Saved:
    """A bench's recall matrix and the fold of each of its questions."""

    matrix: np.ndarray
    groups: list[str]


def save_matrix(name: str, matrix: np.ndarray, groups: Sequence[str]) -> None:
    MATRICES.mkdir(parents=True, exist_ok=True)
    np.savez(MATRICES / f"{name}.npz", matrix=matrix, groups=np.array(groups),
             grid=grid_fingerprint())


def load_matrix(name: str) -> Saved | None:
    path = MATRICES / f"{name}.npz"
    if not path.exists():
        return None
    saved = np.load(path)
    if "groups" not in saved.files or str(saved["grid"]) != grid_fingerprint():
        return None
    return Saved(saved["matrix"], [str(g) for g in saved["groups"]])


def engram_rows(matrix: np.ndarray, groups: Sequence[str], other: str,
                other_saved: Saved | None) -> dict[str, Row]:
    """The shipped defaults, the best setting in-sample, cross-validated within the dataset,
    and tuned on the other dataset (when its matrix was saved by its own bench)."""
    shipped = GRID.index(DEFAULT_WEIGHTS)
    everything = np.ones(matrix.shape[1], dtype=bool)
    top = best(matrix, everything)
    cv = cross_validate(matrix, groups)
    picks = "; ".join(sorted({describe(GRID[i]) for i in cv.chosen}))
    rows = {
        "Engram, shipped weights": Row(matrix[shipped], describe(DEFAULT_WEIGHTS)),
        "Engram, in-sample best": Row(matrix[top], describe(GRID[top])),
        "Engram, cross-validated": Row(cv.held_out, f"folds R@10 {cv.spread}; chose {picks}"),
    }
    if other_saved is not None:
        pick = best(other_saved.matrix, np.ones(other_saved.matrix.shape[1], dtype=bool))
        rows[f"Engram, tuned on {other}"] = Row(matrix[pick], describe(GRID[pick]))
    return rows


# Each part's gain, cross-validated: the same folds, the grid narrowed to settings without
# the question's other signals.


def _without(*parts: str) -> Callable[[Weights], bool]:
    return lambda w: all(getattr(w, p) == 0 for p in parts)


PARTS: dict[str, Callable[[Weights], bool]] = {
    "fusion + session lift only": _without(*QUESTION_SIGNALS),
    **{f"+ {part} alone": _without(*(p for p in QUESTION_SIGNALS if p != part))
       for part in QUESTION_SIGNALS},
    "+ all of them (the whole grid)": lambda w: True,
}


def ablation_table(matrix: np.ndarray, groups: Sequence[str]) -> str:
    """Cross-validated recall@5/10/20 with each part allowed or not."""
    lines = ["| grid | CV R@5 | CV R@10 | CV R@20 | folds R@10 |", "|---|---|---|---|---|"]
    for name, allowed in PARTS.items():
        keep = [i for i, w in enumerate(GRID) if allowed(w)]
        cv = cross_validate(matrix[keep], groups)
        lines.append(f"| {name} | " + " | ".join(f"{cv.held_out[:, i].mean():.3f}"
                                                  for i in range(len(KS)))
                     + f" | {cv.spread} |")
    return "\n".join(lines)


def held_out_r10(matrix: np.ndarray, groups: Sequence[str], other: Saved,
                 keep: list[int]) -> tuple[float, float, float, float]:
    """Recall@10 held out four ways with the grid narrowed to `keep`: cross-validated on
    this dataset, on the other, and tuned on each then scored on the other."""
    def tuned_on(a: np.ndarray, b: np.ndarray) -> float:
        pick = keep[int(np.argmax(a[keep][:, :, K10].mean(axis=1)))]
        return float(b[pick][:, K10].mean())

    return (float(cross_validate(matrix[keep], groups).held_out[:, K10].mean()),
            float(cross_validate(other.matrix[keep], other.groups).held_out[:, K10].mean()),
            tuned_on(matrix, other.matrix), tuned_on(other.matrix, matrix))


def allowing(*parts: str) -> list[int]:
    """The grid's settings that use no question signal but `parts`."""
    return [i for i, w in enumerate(GRID)
            if all(getattr(w, p) == 0 for p in QUESTION_SIGNALS if p not in parts)]


def joint_choice(name: str, matrix: np.ndarray, groups: Sequence[str]) -> str:
    """The protocol's shipped defaults (when the other bench has saved its matrix): a part is
    taken when, alone beside fusion and the session lift, its held-out recall@10 falls on
    none of the four held-out measures (cross-validated on each dataset, tuned on each and
    scored on the other) and rises on one; then, among the settings that use no other part,
    the one with the best mean of the two datasets' recall@10 over all their questions."""
    other = load_matrix("longmemeval" if name == "locomo" else "locomo")
    if other is None:
        return "joint choice: run the other bench first (its matrix is not saved yet)"
    base = held_out_r10(matrix, groups, other, allowing())
    gains = {part: [g - b for g, b in zip(held_out_r10(matrix, groups, other, allowing(part)),
                                          base, strict=True)]
             for part in QUESTION_SIGNALS}
    taken = [p for p, g in gains.items() if min(g) >= 0 and max(g) > 0]
    allowed = allowing(*taken)
    both = (matrix[:, :, K10].mean(axis=1) + other.matrix[:, :, K10].mean(axis=1)) / 2
    pick = max(allowed, key=lambda i: (both[i], -i))
    shipped = GRID.index(DEFAULT_WEIGHTS)
    with_taken = held_out_r10(matrix, groups, other, allowed)
    return ("held-out R@10 gain of each part alone (CV here, CV other, tuned here -> other, "
            "tuned other -> here): " + "; ".join(
                f"{p} " + " / ".join(f"{x:+.3f}" for x in g) for p, g in gains.items())
            + f"\nparts taken: {', '.join(taken) or 'none'}; held-out R@10 with them: "
            + " / ".join(f"{x:.3f}" for x in with_taken)
            + f" (without any: {' / '.join(f'{x:.3f}' for x in base)})"
            f"\njoint choice (mean of both datasets' R@10): {describe(GRID[pick])} -> "
            f"{both[pick]:.3f}; shipped {describe(DEFAULT_WEIGHTS)} -> {both[shipped]:.3f}")


def recall_table(rows: dict[str, Row], categories: Sequence[str],
                 labels: Sequence[str]) -> str:
    """Overall R@5/10/20 and per category R@5 / R@10 / R@20."""
    cats = np.array(labels)
    head = ["system", *(f"R@{k}" for k in KS), *(f"{c} R@5/10/20" for c in categories), "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in rows.items():
        overall = [f"{row.recall[:, i].mean():.3f}" for i in range(len(KS))]
        per_cat = [" / ".join(f"{row.recall[cats == c, i].mean():.3f}" for i in range(len(KS)))
                   if (cats == c).any() else "-" for c in categories]
        lines.append("| " + " | ".join([name, *overall, *per_cat, row.note]) + " |")
    return "\n".join(lines)


def latency_line(name: str, latencies_ms: Sequence[float]) -> str:
    lat = sorted(latencies_ms)
    return (f"{name}: search p50 {lat[len(lat) // 2]:.2f} ms, p95 "
            f"{lat[int(len(lat) * 0.95)]:.2f} ms over {len(lat)} questions")


_PUNCT = re.compile(r"[^\w\s]")


def normalise(text: str) -> str:
    """Lower case, accents and punctuation off, articles dropped, spaces collapsed."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    words = [w for w in _PUNCT.sub(" ", text).split() if w not in {"a", "an", "the"}]
    return " ".join(words)


def answer_in(context: str, answer: str) -> bool:
    gold = normalise(answer)
    return bool(gold) and f" {gold} " in f" {normalise(context)} "


def pack(texts: Sequence[str], budget: int, count: TokenCounter) -> str:
    """Texts in rank order as bullet lines while they fit in `budget` tokens (one that does
    not fit is skipped, as `Memory.context` does)."""
    chosen, used = [], 0
    for text in texts:
        line = f"- {text}"
        cost = count(line) + 1
        if used + cost <= budget:
            chosen.append(line)
            used += cost
    return "\n".join(chosen)


def context_table(found: dict[str, dict[int, list[tuple[str, bool]]]],
                  categories: Sequence[str]) -> str:
    """Share of questions whose answer is in the context, per budget, overall and per
    category. `found[system][budget]` holds (category, answer found) per question."""
    head = ["system", "budget", "answer in context", *categories]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, per_budget in found.items():
        for budget, marks in per_budget.items():
            overall = statistics.fmean(float(ok) for _, ok in marks)
            cells = [f"{statistics.fmean([float(ok) for c, ok in marks if c == cat]):.3f}"
                     if any(c == cat for c, _ in marks) else "-" for cat in categories]
            lines.append(f"| {name} | {budget} | {overall:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
