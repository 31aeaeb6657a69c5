"""How the protocol's verdict on the long-memory divisor (`Weights.length`) depends on its
pivot (`recall.ranking.LONG_WORDS`), on the values the grid offers, and on the exception for
questions about what the assistant said (`recall.answers.asks_said`): one run over both
datasets, the protocol of docs/recall.md (step 6) for each variant.

    python bench/length_sweep.py --locomo ../shared/data/locomo \\
        --longmemeval ../shared/data/longmemeval

The candidates are fetched once per question, as the benches fetch them; each variant only
recomputes `Candidate.long`. The grid is `cv.GRID` narrowed to the parts the verdict weighs
(fusion, session lift, entity, linked, length), in its own order, so its ties break as the
benches' do; the shipped variant's row reproduces the benches' protocol lines.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from datetime import timedelta
from functools import partial
from pathlib import Path

import numpy as np

import locomo
import longmemeval
from cv import GRID, K10, Question, cross_validate, describe, evaluate, question_folds, with_signals
from embed_cache import cached_embedder
from engram import Memory
from engram.query import Filters
from engram.recall.answers import asks_said
from engram.recall.ranking import long_words

PARTS = ("entity", "linked", "length")
OFF = ("time", "latest", "kind", "spread")
VARIANTS = [(pivot, values, gate) for gate in (True, False) for pivot in (64, 72, 80, 96, 128, 160)
            for values in ((0.0, 0.5), (0.0, 0.25, 0.5, 1.0))]


def store(path: Path) -> Memory:
    return Memory(path, embedder=cached_embedder(), access_batch=10**9, access_flush_s=1e9)


def longmemeval_questions(data: Path, tmp: Path) -> list[tuple[Question, str]]:
    stacks = longmemeval.load(data)
    folds = dict(zip((h.qid for h in stacks), question_folds([h.qid for h in stacks]),
                     strict=True))
    out = []
    for n, h in enumerate(h for h in stacks if h.evidence):
        with store(tmp / f"lme{n}") as mem:
            keys = longmemeval.build([h], mem)
            texts = {i: text for i, (_, _, text) in keys.items()}
            found = with_signals(mem.hybrid.candidates(h.question, Filters(user_id=h.qid), 20,
                                                       linked=True),
                                 h.question, h.asked_at, texts.__getitem__)
        turns = {i: turn for i, (turn, _, _) in keys.items()}
        out.append((Question(folds[h.qid], h.kind, h.evidence, found, turns.__getitem__,
                             h.asked_at), h.question))
    return out


def locomo_questions(data: Path, tmp: Path) -> list[tuple[Question, str]]:
    out = []
    for n, conv in enumerate(locomo.load(data)):
        with store(tmp / f"locomo{n}") as mem:
            ids = locomo.build([conv], mem)
            texts = {(conv.name, str(t["dia_id"])): str(t["text"]) for t in conv.turns}
            asked = locomo.last_session(conv) + timedelta(days=1)
            for text, evidence, category in conv.questions:
                found = mem.hybrid.candidates(text, Filters(user_id=conv.name), 20, linked=True)
                found = with_signals(found, text, asked,
                                     partial(locomo.text_in, texts, ids, conv.name))
                out.append((Question(conv.name, locomo.CATEGORIES[category], evidence, found,
                                     ids.__getitem__, asked), text))
    return out


def with_long(asked: list[tuple[Question, str]], pivot: int, gate: bool) -> list[Question]:
    return [replace(q, candidates=[replace(c, long=0.0 if gate and asks_said(text) else
                                           long_words(c.memory.text or "", pivot))
                                   for c in q.candidates]) for q, text in asked]


def verdict(lme: list[Question], loc: list[Question], values: tuple[float, ...]) -> str:
    base = [w for w in GRID if w.length == 0 and all(getattr(w, p) == 0 for p in OFF)]
    grid = [replace(w, length=v) for w in base for v in values]
    m_lme, m_loc = evaluate(lme, grid), evaluate(loc, grid)
    g_lme, g_loc = [q.group for q in lme], [q.group for q in loc]

    def allowing(*parts: str) -> list[int]:
        return [i for i, w in enumerate(grid)
                if all(getattr(w, p) == 0 for p in PARTS if p not in parts)]

    def held_out(keep: list[int]) -> list[float]:
        def tuned(a: np.ndarray, b: np.ndarray) -> float:
            return float(b[keep[int(np.argmax(a[keep][:, :, K10].mean(axis=1)))]][:, K10].mean())
        return [float(cross_validate(m_lme[keep], g_lme).held_out[:, K10].mean()),
                float(cross_validate(m_loc[keep], g_loc).held_out[:, K10].mean()),
                tuned(m_lme, m_loc), tuned(m_loc, m_lme)]

    none = held_out(allowing())
    gains = {p: [a - b for a, b in zip(held_out(allowing(p)), none, strict=True)] for p in PARTS}
    taken = [p for p, g in gains.items() if min(g) >= 0 and max(g) > 0]
    keep = allowing(*taken)
    both = (m_lme[:, :, K10].mean(axis=1) + m_loc[:, :, K10].mean(axis=1)) / 2
    pick = max(keep, key=lambda i: (both[i], -i))
    with_taken = held_out(keep)
    return (" / ".join(f"{x:+.3f}" for x in gains["length"]) + f" | {', '.join(taken)} | "
            + " / ".join(f"{x:.3f}" for x in with_taken)
            + f" | {describe(grid[pick])}: {m_lme[pick][:, K10].mean():.3f} / "
            f"{m_loc[pick][:, K10].mean():.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--locomo", type=Path, default=Path("../shared/data/locomo"))
    parser.add_argument("--longmemeval", type=Path, default=Path("../shared/data/longmemeval"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lme = longmemeval_questions(args.longmemeval, Path(tmp))
        loc = locomo_questions(args.locomo, Path(tmp))
    print("Gains and held-out R@10 in the protocol's order: CV LongMemEval-S / CV LoCoMo / "
          "tuned on LongMemEval-S, scored on LoCoMo / tuned on LoCoMo, scored on "
          "LongMemEval-S\n")
    print("| pivot (words) | length values | said-exception | length alone: held-out gain | "
          "parts taken | held-out R@10 with them | joint choice: in-sample R@10 LME / LoCoMo |")
    print("|---|---|---|---|---|---|---|")
    for pivot, values, gate in VARIANTS:
        print(f"| {pivot} | {', '.join(map(str, values))} | {'yes' if gate else 'no'} | "
              + verdict(with_long(lme, pivot, gate), with_long(loc, pivot, gate), values))


if __name__ == "__main__":
    main()
