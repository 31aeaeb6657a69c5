"""Concept compaction on LoCoMo: fewer tokens, the same answers?

    python bench/compaction.py --data ../shared/data/locomo

Every turn becomes a memory as in bench/locomo.py. For each question (categories 1-4), is the
normalised gold answer inside the context `Memory.assemble` builds (claude style) at 300, 600
and 1,200 tokens, with compaction off (the memories as they are) and on (each conversation
compacted into concepts with one setting of GRID)? And the compression ratio of each
conversation: the tokens of all its turns over the tokens of its compacted memory (concept
summaries plus the memories in no concept). The setting is chosen by leave-one-conversation-
out cross-validation: on four conversations, the setting with the best mean answer-in-context
over the three budgets among those compressing at least 10x; scored on the fifth. Tables in
markdown; embeddings cached under .cache/ (bench/embed_cache.py).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from embed_cache import DiskCachedEmbedder, cached_embedder
from engram import Memory
from engram.compact.recall import with_concepts
from engram.context import TokenCounter, build_context, load_counter
from engram.lifecycle.tiers import Policy
from engram.model import Kind
from engram.query import Filters
from locomo import CATEGORIES, Conversation, build, each_question, load
from recall_eval import answer_in

BUDGETS = (300, 600, 1200)
TARGET_RATIO = 10.0
# (cluster distance, the longest a summary may be in tokens)
GRID = list(itertools.product((0.4, 0.5, 0.6, 0.7), (60, 120)))


@dataclass
class Outcome:
    """One setting's marks: found[conversation][budget] = answer in context per question."""

    found: dict[str, dict[int, list[bool]]]
    ratio: dict[str, float]  # conversation -> compression
    seconds: float = 0.0

    def score(self, convs: Sequence[str], budget: int | None = None) -> float:
        budgets = [budget] if budget else list(BUDGETS)
        return statistics.fmean(float(ok) for c in convs for b in budgets
                                for ok in self.found[c][b])

    def compression(self, convs: Sequence[str]) -> float:
        """Pooled over the conversations: their tokens over their compacted tokens."""
        return statistics.fmean(self.ratio[c] for c in convs)


def answers(mem: Memory, conversations: list[Conversation],
            count: TokenCounter) -> dict[str, dict[int, list[bool]]]:
    """What `Memory.assemble` does (search, concepts beside their members, the budgeted
    context), with the search done once for the three budgets."""
    found: dict[str, dict[int, list[bool]]] = {c.name: {b: [] for b in BUDGETS}
                                               for c in conversations}
    for conv, i in each_question(conversations):
        question = conv.questions[i][0]
        hits = mem.hybrid.search(question, Filters(user_id=conv.name), 50, mem.clock.now(),
                                 mem.weights)
        hits = with_concepts(mem.store, hits, conv.name)
        for budget in BUDGETS:
            plan = build_context(hits, budget_tokens=budget, style="claude", count=count,
                                 query=question)
            found[conv.name][budget].append(answer_in(plan.text, conv.answers[i]))
    return found


def compression(mem: Memory, conv: Conversation, count: TokenCounter) -> float:
    whole = sum(count(str(t["text"])) for t in conv.turns)
    memories = mem.list(user_id=conv.name, limit=None)
    members = {m for c in memories if c.memory_type is Kind.CONCEPT for m in c.links.derived_from}
    kept = sum(count(m.content) for m in memories if m.id not in members)
    return whole / max(kept, 1)


def run_setting(base: Path, work: Path, setting: tuple[float, int],
                conversations: list[Conversation], embedder: DiskCachedEmbedder,
                count: TokenCounter) -> Outcome:
    distance, cap = setting
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work)
    policy = Policy(compact_distance=distance, compact_max_tokens=int(cap))
    started = time.perf_counter()
    with Memory(work, embedder=embedder, policy=policy, access_batch=10**9,
                access_flush_s=10.0**9) as mem:
        for conv in conversations:
            mem.compact(conv.name)
        took = time.perf_counter() - started
        ratio = {c.name: compression(mem, c, count) for c in conversations}
        return Outcome(answers(mem, conversations, count), ratio, took)


def choose(outcomes: dict[tuple[float, int], Outcome], convs: Sequence[str]
           ) -> tuple[float, int]:
    """Best mean answer-in-context over the budgets among settings compressing >= 10x on
    `convs` (the most compressing setting when none does)."""
    enough = [s for s, o in outcomes.items() if o.compression(convs) >= TARGET_RATIO]
    if not enough:
        return max(outcomes, key=lambda s: outcomes[s].compression(convs))
    return max(enough, key=lambda s: (outcomes[s].score(convs), s))


def table(off: Outcome, outcomes: dict[tuple[float, int], Outcome],
          names: list[str]) -> str:
    head = "| compaction | setting | " + " | ".join(f"answer in context @{b}" for b in BUDGETS) \
        + " | compression | compact s |"
    lines = [head, "|" + "---|" * (len(BUDGETS) + 4)]
    lines.append("| off | - | " + " | ".join(f"{off.score(names, b):.3f}" for b in BUDGETS)
                 + " | 1.0x | - |")
    for (distance, cap), o in outcomes.items():
        lines.append(f"| on, in-sample | distance {distance}, summary <= {cap} tokens | "
                     + " | ".join(f"{o.score(names, b):.3f}" for b in BUDGETS)
                     + f" | {o.compression(names):.1f}x | {o.seconds:.1f} |")
    return "\n".join(lines)


def cross_validated(off: Outcome, outcomes: dict[tuple[float, int], Outcome],
                    names: list[str]) -> str:
    """Leave one conversation out: the held-out conversation scored with the setting chosen
    on the other four; pooled over the folds (question-weighted), beside the in-sample pick."""
    held: dict[int, list[bool]] = {b: [] for b in BUDGETS}
    ratios, picks = [], []
    for test in names:
        train = [n for n in names if n != test]
        pick = choose(outcomes, train)
        picks.append(f"{test}: {pick[0]}/{pick[1]}")
        for b in BUDGETS:
            held[b] += outcomes[pick].found[test][b]
        ratios.append(outcomes[pick].ratio[test])
    top = choose(outcomes, names)
    lines = ["| compaction | " + " | ".join(f"@{b}" for b in BUDGETS) + " | compression |",
             "|" + "---|" * (len(BUDGETS) + 2)]
    lines.append("| off | " + " | ".join(f"{off.score(names, b):.3f}" for b in BUDGETS)
                 + " | 1.0x |")
    lines.append(f"| on, in-sample pick ({top[0]}/{top[1]}) | "
                 + " | ".join(f"{outcomes[top].score(names, b):.3f}" for b in BUDGETS)
                 + f" | {outcomes[top].compression(names):.1f}x |")
    lines.append("| on, held out (leave one conversation out) | "
                 + " | ".join(f"{statistics.fmean(map(float, held[b])):.3f}" for b in BUDGETS)
                 + f" | {statistics.fmean(ratios):.1f}x |")
    return "\n".join(lines) + "\n\nchosen per fold (distance/summary tokens): " + "; ".join(picks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo"))
    parser.add_argument("--conversations", type=int, default=0,
                        help="only the first N conversations (0: all)")
    parser.add_argument("--only", default="",
                        help="one setting, DISTANCE/TOKENS (e.g. 0.6/60), for a quick look")
    args = parser.parse_args()
    grid = GRID
    if args.only:
        distance, tokens = args.only.split("/")
        grid = [(float(distance), int(tokens))]
    conversations = load(args.data)
    if args.conversations:
        conversations = conversations[:args.conversations]
    names = [c.name for c in conversations]
    questions = sum(len(c.questions) for c in conversations)
    print(f"{len(conversations)} conversations, {sum(len(c.turns) for c in conversations)} "
          f"turns, {questions} questions (categories {', '.join(CATEGORIES.values())})",
          file=sys.stderr)
    embedder, count = cached_embedder(), load_counter()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        with Memory(base, embedder=embedder, access_batch=10**9,
                    access_flush_s=10.0**9) as mem:
            build(conversations, mem)
            off = Outcome(answers(mem, conversations, count), dict.fromkeys(names, 1.0))
        outcomes = {}
        for setting in grid:
            outcomes[setting] = run_setting(base, Path(tmp) / "work", setting, conversations,
                                            embedder, count)
            print(f"  distance {setting[0]}, summary <= {setting[1]} tokens: "
                  f"{outcomes[setting].compression(names):.1f}x", file=sys.stderr)
    print(table(off, outcomes, names))
    if len(names) > 1:
        print()
        print(cross_validated(off, outcomes, names))


if __name__ == "__main__":
    main()
