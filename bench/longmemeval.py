"""LongMemEval-S evidence recall: Engram against a plain BM25 and a plain dense baseline, one run.

    python bench/longmemeval.py --data ../shared/data/longmemeval

Each question has its own haystack of ~50 sessions; by default each haystack gets a store of
its own, as a new user's device would (`--layout shared`: one store, a user_id per
question); each turn (user or assistant) becomes one memory with the turn's text, `at` = its
session's date. Evidence-turn recall@k: the share of the question's `has_answer` turns among
the top k (questions without such turns, the abstention ones, are left out of it). Session
recall@k: the share of its `answer_session_ids` that have a turn among the top k; "all@10"
says whether every one does. Both by question type. Engram is reported with its shipped
weights, in-sample, cross-validated over five folds of questions and tuned on LoCoMo (when
bench/locomo.py has saved its matrix), each part's cross-validated gain, and the joint choice
of the shipped defaults (docs/recall.md). Embeddings are cached under .cache/
(bench/embed_cache.py; the first run embeds ~26k long turns: hours on two shared cores;
`--cached-only` looks at the questions already embedded).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from cv import KS, Question, evaluate, question_folds, recalls, with_signals
from embed_cache import DiskCachedEmbedder, cached_embedder
from engram import Memory
from engram.query import Filters
from engram.recall.ranking import keyword_terms
from recall_eval import (
    Row,
    ablation_table,
    engram_rows,
    joint_choice,
    latency_line,
    load_matrix,
    recall_table,
    save_matrix,
)

LAYOUTS = ("per-question", "shared")
TYPES = ("single-session-user", "single-session-assistant", "single-session-preference",
         "multi-session", "temporal-reasoning", "knowledge-update")


@dataclass
class Haystack:
    qid: str
    kind: str
    question: str
    asked_at: datetime
    turns: list[tuple[str, str, str, datetime]]  # turn key "i:j", session key, text, at
    evidence: set[str]  # has_answer turn keys
    sessions: set[str]  # answer session keys


def parse_date(text: str) -> datetime:
    """'2023/05/20 (Sat) 02:21', taken as UTC."""
    day, _, rest = text.partition(" (")
    return datetime.strptime(day + rest.partition(")")[2], "%Y/%m/%d %H:%M").replace(tzinfo=UTC)


def load(path: Path, limit: int | None = None) -> list[Haystack]:
    out = []
    for file in sorted(path.glob("*.json"))[:limit]:
        raw = json.loads(file.read_text())
        turns, evidence = [], set()
        sessions = {str(s) for s in raw["answer_session_ids"]}
        for i, (sid, date, session) in enumerate(zip(raw["haystack_session_ids"],
                                                     raw["haystack_dates"],
                                                     raw["haystack_sessions"], strict=True)):
            for j, turn in enumerate(session):
                if not turn["content"].strip():
                    continue
                turns.append((f"{i}:{j}", str(sid), turn["content"], parse_date(date)))
                if turn.get("has_answer"):
                    evidence.add(f"{i}:{j}")
        out.append(Haystack(raw["question_id"], raw["question_type"], raw["question"],
                            parse_date(raw["question_date"]), turns, evidence, sessions))
    return out


def build(stacks: list[Haystack], mem: Memory) -> dict[str, tuple[str, str, str]]:
    """Adds every turn, one session at a time; returns memory id -> (turn key, session key,
    text)."""
    keys: dict[str, tuple[str, str, str]] = {}
    for h in stacks:
        by_session: dict[str, list[tuple[str, str, str, datetime]]] = {}
        for t in h.turns:
            by_session.setdefault(t[0].split(":")[0], []).append(t)
        for index, turns in by_session.items():
            entries = mem.add_many([{"text": text, "user_id": h.qid, "session_id": f"s{index}",
                                     "at": at, "memory_type": "event", "dedupe": False}
                                    for _, _, text, at in turns])
            keys.update((e.id, t[:3]) for e, t in zip(entries, turns, strict=True))
    return keys


def rankings_bm25(stacks: list[Haystack], layout: str) -> tuple[list[list[int]], list[float]]:
    """Plain BM25 (one FTS5 column, porter, the same query words): turn indexes, best first.
    Its IDF is over what Engram's store holds: the question's haystack, or every haystack."""
    out, latencies = [], []
    db = sqlite3.connect(":memory:")
    for n, h in enumerate(stacks):
        if n == 0 or layout == LAYOUTS[0]:
            db.execute("DROP TABLE IF EXISTS t")
            db.execute("CREATE VIRTUAL TABLE t USING fts5(text, q UNINDEXED, n UNINDEXED, "
                       "tokenize='porter unicode61')")
        db.executemany("INSERT INTO t VALUES (?, ?, ?)",
                       [(text, h.qid, n) for n, (_, _, text, _) in enumerate(h.turns)])
        match = " OR ".join(f'"{w}"' for w in keyword_terms(h.question))
        t0 = time.perf_counter()
        rows = db.execute("SELECT n FROM t WHERE t MATCH ? AND q = ? ORDER BY rank LIMIT ?",
                          (match, h.qid, max(KS))).fetchall()
        latencies.append((time.perf_counter() - t0) * 1000)
        out.append([int(r[0]) for r in rows])
    return out, latencies


def rankings_dense(stacks: list[Haystack], embed: DiskCachedEmbedder) -> list[list[int]]:
    out = []
    for h in stacks:
        matrix = embed.embed([text for _, _, text, _ in h.turns])
        sims = matrix @ embed.embed([h.question])[0]
        out.append([int(i) for i in np.argsort(-sims)[:max(KS)]])
    return out


def baseline_rows(stacks: list[Haystack], ranked: list[list[int]]) -> tuple[Row, Row]:
    turn = [recalls([h.turns[i][0] for i in r], h.evidence)
            for h, r in zip(stacks, ranked, strict=True) if h.evidence]
    session = [recalls([h.turns[i][1] for i in r], h.sessions)
               for h, r in zip(stacks, ranked, strict=True)]
    return Row(np.array(turn)), Row(np.array(session))


def all_at_10(row: Row) -> float:
    return float((row.recall[:, KS.index(10)] >= 1.0).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/longmemeval"))
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    parser.add_argument("--layout", choices=LAYOUTS, default=LAYOUTS[0],
                        help="a store per question, holding its haystack, as a new user's "
                        "device would (the default), or one store holding every haystack")
    parser.add_argument("--cached-only", action="store_true",
                        help="only the questions whose turns are all in the embedding cache "
                        "(a quick look while the cache fills)")
    args = parser.parse_args()
    stacks = load(args.data, args.limit)
    embedder = cached_embedder()
    if args.cached_only:
        stacks = [h for h in stacks if embedder.cached([t for _, _, t, _ in h.turns]
                                                         + [h.question])]
    print(f"{len(stacks)} questions, {sum(len(h.turns) for h in stacks)} turns",
          file=sys.stderr)
    bm25, bm25_ms = rankings_bm25(stacks, args.layout)
    turn_rows, session_rows = {}, {}
    for name, ranked in (("BM25 (FTS5, porter, stopwords)", bm25),
                         ("dense (MiniLM cosine)", rankings_dense(stacks, embedder))):
        turn_rows[name], session_rows[name] = baseline_rows(stacks, ranked)
    turn_q, session_q, latencies = [], [], []
    folds = dict(zip((h.qid for h in stacks), question_folds([h.qid for h in stacks]),
                     strict=True))
    groups = [[h] for h in stacks] if args.layout == LAYOUTS[0] else [stacks]
    keys: dict[str, tuple[str, str, str]] = {}  # memory id -> turn key, session key, text
    with tempfile.TemporaryDirectory() as tmp:
        for n, group in enumerate(groups):
            # no access statistics: see bench/locomo.py
            mem = Memory(Path(tmp) / f"lme{n}", embedder=embedder, access_batch=10**9,
                         access_flush_s=10.0**9)
            keys.update(build(group, mem))
            for h in group:
                t0 = time.perf_counter()
                mem.search(h.question, user_id=h.qid, limit=max(KS))
                latencies.append((time.perf_counter() - t0) * 1000)
                found = with_signals(mem.hybrid.candidates(h.question, Filters(user_id=h.qid),
                                                           max(KS), linked=True),
                                     h.question, h.asked_at, lambda i: keys[i][2])
                if h.evidence:
                    turn_q.append(Question(folds[h.qid], h.kind, h.evidence, found,
                                           lambda i: keys[i][0], h.asked_at))
                session_q.append(Question(folds[h.qid], h.kind, h.sessions, found,
                                          lambda i: keys[i][1], h.asked_at))
            mem.close()
    turn_matrix, session_matrix = evaluate(turn_q), evaluate(session_q)
    if args.limit is None and not args.cached_only:  # bench/locomo.py's cross-dataset rows
        save_matrix("longmemeval" if args.layout == LAYOUTS[0] else "longmemeval-shared",
                    turn_matrix, [q.group for q in turn_q])
    other = load_matrix("locomo")
    turn_rows.update(engram_rows(turn_matrix, [q.group for q in turn_q], "LoCoMo", other))
    session_rows.update(engram_rows(session_matrix, [q.group for q in session_q], "LoCoMo",
                                    other))
    print("Evidence-turn recall (questions with has_answer turns)\n")
    print(recall_table(turn_rows, TYPES, [q.category for q in turn_q]))
    print("\nEach part's gain, cross-validated (five folds of questions)\n")
    print(ablation_table(turn_matrix, [q.group for q in turn_q]))
    print("\n" + joint_choice("longmemeval", turn_matrix, [q.group for q in turn_q]))
    print("\nSession recall (share of answer sessions with a turn in the top k)\n")
    print(recall_table(session_rows, TYPES, [q.category for q in session_q]))
    print("\nSession all@10 (every answer session in the top 10): " + ", ".join(
        f"{name} {all_at_10(row):.3f}" for name, row in session_rows.items()))
    print()
    print(latency_line("Engram (query vector from the disk cache)", latencies))
    print(latency_line("BM25", bm25_ms))


if __name__ == "__main__":
    main()
