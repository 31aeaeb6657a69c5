"""Cross-validation for recall weights (the protocol in docs/recall.md).

Every question's candidates are fetched once (`Hybrid.candidates`); each weight setting of
`GRID` then ranks them again, which is cheap, giving a (settings x questions x ks) matrix of
recalls. Selection maximises mean recall@10 over the training questions; the chosen setting
is scored on the held-out ones. Folds:
- LoCoMo: leave one conversation out (groups = conversations);
- LongMemEval-S: five folds of questions (sorted ids, round robin);
- across datasets: tune on one, score the other.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from engram.recall.ranking import DEFAULT_WEIGHTS, Candidate, Weights, order, signals
from engram.recall.signals import with_question

KS = (5, 10, 20)
K10 = KS.index(10)

# What cross-validation chooses among: the fusion split, the session lift, the question's
# own signals and the long-memory divisor (`Weights.length`; the protocol treats it as one
# more part). The re-scoring signals are small by design and stay fixed; the vector-only floor
# stays at 0.25, which cross-validation took in 4 of 5 LoCoMo folds against 0.15 and 0.35.
# Values per signal: docs/recall.md.
QUESTION_SIGNALS = ("entity", "time", "latest", "linked", "kind", "spread", "length")
SIGNAL_VALUES = {"entity": (0.0, 0.1, 0.2), "time": (0.0, 0.1), "latest": (0.0, 0.1, 0.2),
                 "linked": (0.0, 0.1, 0.2), "kind": (0.0, 0.1, 0.2), "spread": (0.0, 0.1),
                 "length": (0.0, 0.5)}
GRID: list[Weights] = [
    replace(DEFAULT_WEIGHTS, keyword=kw, vector=round(1 - kw, 2), session=s,
            **dict(zip(QUESTION_SIGNALS, signal, strict=True)))
    for kw, s, *signal in itertools.product(
        (0.3, 0.4, 0.5), (0.0, 0.1, 0.2, 0.3), *(SIGNAL_VALUES[n] for n in QUESTION_SIGNALS))
]


@dataclass
class Question:
    group: str  # the fold unit: a conversation (LoCoMo) or a question fold (LongMemEval)
    category: str
    evidence: set[str]
    candidates: list[Candidate]
    key: Callable[[str], str]  # memory id -> evidence key (a turn id, or a session id)
    now: datetime


def with_signals(candidates: list[Candidate], query: str, now: datetime,
                 text_of: Callable[[str], str]) -> list[Candidate]:
    """The candidates with every signal of the question (`recall.signals`), as
    `Hybrid.search` adds those its weights weigh."""
    return with_question(candidates, query, now,
                         lambda ids: {i: text_of(i) for i in ids})


def recalls(ranked: Sequence[str], evidence: set[str]) -> list[float]:
    return [len(evidence & set(ranked[:k])) / len(evidence) for k in KS]


def evaluate(questions: Sequence[Question], grid: Sequence[Weights] = GRID) -> np.ndarray:
    """recall[setting, question, k] for every setting of the grid, ranked by the real
    `recall.ranking.order` (all settings at once)."""
    out = np.zeros((len(grid), len(questions), len(KS)))
    for qi, q in enumerate(questions):
        if not q.candidates:
            continue
        ranked, score = order(signals(q.candidates, q.now), grid)
        evidence = sorted(q.evidence)
        # which evidence item each candidate is (-1: none), then per setting its top hits
        keys = [q.key(c.memory.id) for c in q.candidates]
        which = np.array([evidence.index(k) if k in q.evidence else -1 for k in keys])
        top = ranked[:, :max(KS)]
        hit = np.where(np.take_along_axis(score, top, 1) > -np.inf, which[top], -1)
        for ki, k in enumerate(KS):
            found = (hit[:, :k, None] == np.arange(len(evidence))).any(axis=1)
            out[:, qi, ki] = found.sum(axis=1) / len(evidence)
    return out


@dataclass
class CVResult:
    held_out: np.ndarray  # recall[question, k] under the setting chosen without its fold
    fold_r10: list[float]  # mean held-out recall@10 per fold
    chosen: list[int]  # the grid index chosen per fold

    @property
    def spread(self) -> str:
        return (f"{statistics.fmean(self.fold_r10):.3f} ± {statistics.pstdev(self.fold_r10):.3f}"
                f" ({min(self.fold_r10):.3f} to {max(self.fold_r10):.3f})")


def best(matrix: np.ndarray, mask: np.ndarray) -> int:
    """The setting with the highest mean recall@10 over the masked questions (ties: first)."""
    return int(np.argmax(matrix[:, mask, K10].mean(axis=1)))


def cross_validate(matrix: np.ndarray, groups: Sequence[str]) -> CVResult:
    labels = np.array(groups)
    held = np.zeros(matrix.shape[1:])
    fold_r10, chosen = [], []
    for g in sorted(set(groups)):
        test = labels == g
        pick = best(matrix, ~test)
        held[test] = matrix[pick, test]
        fold_r10.append(float(matrix[pick, test, K10].mean()))
        chosen.append(pick)
    return CVResult(held, fold_r10, chosen)


def question_folds(ids: Sequence[str], n: int = 5) -> list[str]:
    """Fold label per question: sorted ids dealt round robin into n folds."""
    order = {qid: i for i, qid in enumerate(sorted(ids))}
    return [f"fold{order[qid] % n + 1}" for qid in ids]


def describe(w: Weights) -> str:
    return f"keyword {w.keyword}, session {w.session}, " + \
        ", ".join(f"{name} {getattr(w, name)}" for name in QUESTION_SIGNALS)
