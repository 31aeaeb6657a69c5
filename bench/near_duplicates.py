"""Tune the near-duplicate threshold: at which MiniLM cosine does a new memory say the same
thing as an existing one?

Labelled pairs of memories as the extractor writes them (no slot: events, context, beliefs;
slotted facts never merge by similarity): the same thing said again in other words (merge)
against related but different things (keep both). For each threshold: precision (merges
that were right), recall (right merges found), and the wrong merges, which lose a memory.

    .venv/bin/python bench/near_duplicates.py
"""

from __future__ import annotations

import numpy as np

from engram.embed.embedders import load_embedder

SAME = [
    ("User ran a half marathon in Lisbon", "User ran a half-marathon in Lisbon!"),
    ("User baked bread with their sister", "User baked some bread with their sister"),
    ("User went to a jazz concert last night", "User attended a jazz concert last night"),
    ("User is feeling tired today", "User feels tired today"),
    ("User is watching a movie tonight", "User will watch a movie tonight"),
    ("User adopted a puppy from the shelter", "User adopted a puppy from a shelter"),
    ("User visited the Louvre in Paris", "User went to the Louvre in Paris"),
    ("User started learning the piano", "User began learning piano"),
    ("User finished reading Dune", "User finished the book Dune"),
    ("User thinks remote work is better", "User believes remote work is better"),
    ("User painted a sunset over the lake", "User painted the sunset over a lake"),
    ("User is stuck in traffic right now", "User is stuck in traffic at the moment"),
    ("User went camping with their kids", "User went camping with the kids"),
    ("User gave a talk at a school", "User gave a speech at a school"),
    ("User is cooking dinner at the moment", "User is cooking dinner right now"),
    ("User moved into a new apartment", "User moved to a new apartment"),
    ("User had a job interview on Monday", "User had a job interview Monday"),
    ("User fixed the bike's flat tyre", "User fixed the flat tire on the bike"),
    ("User went hiking in the Alps", "User hiked in the Alps"),
    ("User thinks the new policy is unfair", "User feels the new policy is unfair"),
    ("User signed up for a pottery class", "User enrolled in a pottery class"),
    ("User celebrated their birthday with friends", "User celebrated a birthday with friends"),
    ("User lost their wallet on the train", "User lost a wallet on the train"),
    ("User planted tomatoes in the garden", "User planted some tomatoes in the garden"),
    ("User is nervous about the exam tomorrow", "User feels nervous about tomorrow's exam"),
]
DIFFERENT = [
    ("User ran a half marathon in Lisbon", "User ran a full marathon in Berlin"),
    ("User baked bread with their sister", "User baked a cake with their mother"),
    ("User went to a jazz concert last night", "User went to a rock concert last week"),
    ("User is feeling tired today", "User is feeling great today"),
    ("User is watching a movie tonight", "User is reading a book tonight"),
    ("User adopted a puppy from the shelter", "User adopted a kitten from the shelter"),
    ("User visited the Louvre in Paris", "User visited the Prado in Madrid"),
    ("User started learning the piano", "User started learning the guitar"),
    ("User finished reading Dune", "User started reading Dune"),
    ("User thinks remote work is better", "User thinks office work is better"),
    ("User painted a sunset over the lake", "User photographed a sunrise over the sea"),
    ("User is stuck in traffic right now", "User is stuck at the airport right now"),
    ("User went camping with their kids", "User went fishing with their kids"),
    ("User gave a talk at a school", "User attended a talk at a school"),
    ("User is cooking dinner at the moment", "User is eating dinner at the moment"),
    ("User moved into a new apartment", "User moved out of their old apartment"),
    ("User had a job interview on Monday", "User had a dentist appointment on Monday"),
    ("User fixed the bike's flat tyre", "User bought a new bike"),
    ("User went hiking in the Alps", "User went skiing in the Alps"),
    ("User thinks the new policy is unfair", "User thinks the new policy is fair"),
    ("User signed up for a pottery class", "User signed up for a yoga class"),
    ("User celebrated their birthday with friends", "User celebrated their anniversary"),
    ("User lost their wallet on the train", "User found a wallet on the train"),
    ("User planted tomatoes in the garden", "User planted roses in the garden"),
    ("User is nervous about the exam tomorrow", "User is excited about the trip tomorrow"),
]


def cosines(model: object, pairs: list[tuple[str, str]]) -> np.ndarray:
    embed = model.embed  # type: ignore[attr-defined]
    left = embed([a for a, _ in pairs])
    right = embed([b for _, b in pairs])
    left = left / np.linalg.norm(left, axis=1, keepdims=True)
    right = right / np.linalg.norm(right, axis=1, keepdims=True)
    return np.asarray((left * right).sum(axis=1))


def main() -> None:
    model = load_embedder()
    same, different = cosines(model, SAME), cosines(model, DIFFERENT)
    print(f"{len(SAME)} same-meaning pairs: cosine min {same.min():.3f}, median "
          f"{np.median(same):.3f}; {len(DIFFERENT)} different pairs: median "
          f"{np.median(different):.3f}, max {different.max():.3f}\n")
    print("| threshold | merges right (recall) | wrong merges | precision |")
    print("|---:|---:|---:|---:|")
    for threshold in (0.85, 0.90, 0.92, 0.94, 0.95, 0.96, 0.97):
        right = int((same >= threshold).sum())
        wrong = int((different >= threshold).sum())
        precision = right / (right + wrong) if right + wrong else 1.0
        print(f"| {threshold:.2f} | {right}/{len(SAME)} ({right / len(SAME):.0%}) | "
              f"{wrong}/{len(DIFFERENT)} | {precision:.0%} |")


if __name__ == "__main__":
    main()
