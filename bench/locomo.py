"""LoCoMo evidence recall: Engram against a plain BM25 and a plain dense baseline, one run.

    python bench/locomo.py --data ../shared/data/locomo
    python bench/locomo.py --store pgserver --engram-only   # the same run on PostgreSQL

Each conversation gets a store of its own, as a new user's device would (`--layout shared`:
one store for all). Each turn becomes one memory ("Speaker: text", plus " [shares photo:
CAPTION]"), scoped to its conversation (user_id), with metadata {"dia_id": ...} and `at` =
the session's date. Every question of categories 1-4 is searched; evidence recall@k is the
share of its evidence turns among the top k. Engram is reported with its shipped weights,
with the best weights in-sample, cross-validated (leave one conversation out) and tuned on
LongMemEval-S (when bench/longmemeval.py has saved its matrix), each part's cross-validated
gain and the joint choice of the shipped defaults, as docs/recall.md describes; then "answer
in context" at 500 and 1,000 tokens against BM25's top turns packed into the same budget.
Embeddings are cached under .cache/ (bench/embed_cache.py). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np

from cv import KS, Question, evaluate, recalls, with_signals
from embed_cache import DiskCachedEmbedder, cached_embedder
from engram import Memory
from engram.context import load_counter
from engram.query import Filters
from engram.recall.ranking import keyword_terms
from recall_eval import (
    BUDGETS,
    Row,
    ablation_table,
    answer_in,
    context_table,
    engram_rows,
    joint_choice,
    latency_line,
    load_matrix,
    pack,
    recall_table,
    save_matrix,
)
from stores import STORE_HELP, Locations

LAYOUTS = ("per-conversation", "shared")
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}


@dataclass
class Conversation:
    name: str
    turns: list[dict[str, object]]  # text, dia_id, session, at
    questions: list[tuple[str, set[str], int]]  # question, evidence, category
    answers: list[str] = field(default_factory=list)  # the gold answer of each question


def normalise_evidence(raw: list[str], known: set[str]) -> set[str]:
    """'D:11:26' → 'D11:26', 'D30:05' → 'D30:5', several ids in one string are split; ids that
    name no turn of the conversation are dropped."""
    out = set()
    for item in raw:
        for token in re.findall(r"D:?\d+:\d+", item.replace(" ", "")):
            session, turn = re.findall(r"\d+", token)
            dia = f"D{int(session)}:{int(turn)}"
            if dia in known:
                out.add(dia)
    return out


def parse_date(text: str) -> datetime:
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def load(path: Path) -> list[Conversation]:
    conversations = []
    for file in sorted(path.glob("*.json")):
        raw = json.loads(file.read_text())
        turns = []
        n = 1
        while f"session_{n}" in raw:
            at = parse_date(raw[f"session_{n}_date_time"])
            for t in raw[f"session_{n}"]:
                text = f"{t['speaker']}: {t['text']}"
                if t.get("blip_caption"):
                    text += f" [shares photo: {t['blip_caption']}]"
                turns.append({"text": text, "dia_id": t["dia_id"], "session": f"s{n}",
                              "at": at})
            n += 1
        known = {str(t["dia_id"]) for t in turns}
        questions, answers = [], []
        for q in raw["qa"]:
            if q["category"] == 5:
                continue
            evidence = normalise_evidence(q.get("evidence", []), known)
            if evidence:
                questions.append((q["question"], evidence, int(q["category"])))
                answers.append(str(q["answer"]))
        conversations.append(Conversation(file.stem, turns, questions, answers))
    return conversations


def each_question(conversations: list[Conversation]) -> Iterator[tuple[Conversation, int]]:
    for conv in conversations:
        for i in range(len(conv.questions)):
            yield conv, i


def build(conversations: list[Conversation], mem: Memory) -> dict[str, str]:
    """Adds every turn; returns memory id -> dia_id."""
    ids: dict[str, str] = {}
    for conv in conversations:
        by_session: dict[str, list[dict[str, object]]] = defaultdict(list)
        for t in conv.turns:
            by_session[str(t["session"])].append(t)
        for session, turns in by_session.items():
            entries = mem.add_many([{"text": t["text"], "user_id": conv.name,
                                     "session_id": session, "metadata": {"dia_id": t["dia_id"]},
                                     "at": t["at"], "memory_type": "event", "dedupe": False}
                                    for t in turns])
            ids.update((e.id, str(t["dia_id"])) for e, t in zip(entries, turns, strict=True))
    return ids


def last_session(conv: Conversation) -> datetime:
    return max(t["at"] for t in conv.turns if isinstance(t["at"], datetime))


def text_in(texts: dict[tuple[str, str], str], ids: dict[str, str], scope: str,
            memory_id: str) -> str:
    return texts[(scope, ids[memory_id])]


def run_engram(conversations: list[Conversation], mem: Memory,
               ids: dict[str, str]) -> tuple[list[Question], list[float]]:
    """Each question's candidates (ranked later under every weight setting) and the latency
    of the real `Memory.search` with the shipped weights."""
    questions, latencies = [], []
    texts = {(c.name, str(t["dia_id"])): str(t["text"]) for c in conversations for t in c.turns}
    for conv, i in each_question(conversations):
        text, evidence, category = conv.questions[i]
        t0 = time.perf_counter()
        mem.search(text, user_id=conv.name, limit=max(KS))
        latencies.append((time.perf_counter() - t0) * 1000)
        asked = last_session(conv) + timedelta(days=1)  # asked after the last session
        found = mem.hybrid.candidates(text, Filters(user_id=conv.name), max(KS), linked=True)
        candidates = with_signals(found, text, asked, partial(text_in, texts, ids, conv.name))
        questions.append(Question(conv.name, CATEGORIES[category], evidence, candidates,
                                  ids.__getitem__, asked))
    return questions, latencies


def run_bm25(conversations: list[Conversation]) -> tuple[list[list[str]], list[float]]:
    """Plain BM25: one FTS5 column (porter), the same stopword-free OR query. Returns each
    question's top 50 turn ids."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(text, conv UNINDEXED, dia UNINDEXED, "
               "tokenize='porter unicode61')")
    for conv in conversations:
        db.executemany("INSERT INTO t VALUES (?, ?, ?)",
                       [(t["text"], conv.name, t["dia_id"]) for t in conv.turns])
    ranked, latencies = [], []
    for conv, i in each_question(conversations):
        match = " OR ".join(f'"{w}"' for w in keyword_terms(conv.questions[i][0]))
        t0 = time.perf_counter()
        rows = db.execute("SELECT dia FROM t WHERE t MATCH ? AND conv = ? ORDER BY rank "
                          "LIMIT 50", (match, conv.name)).fetchall()
        latencies.append((time.perf_counter() - t0) * 1000)
        ranked.append([r[0] for r in rows])
    return ranked, latencies


def run_dense(conversations: list[Conversation], embed: DiskCachedEmbedder) -> list[list[str]]:
    """Plain dense: MiniLM cosine over every turn of the conversation, exact."""
    ranked = []
    for conv in conversations:
        matrix = embed.embed([str(t["text"]) for t in conv.turns])
        queries = embed.embed([q for q, _, _ in conv.questions])
        for qv in queries:
            top = np.argsort(-(matrix @ qv))[:max(KS)]
            ranked.append([str(conv.turns[i]["dia_id"]) for i in top])
    return ranked


def answer_in_context(conversations: list[Conversation], mem: Memory,
                      bm25: dict[tuple[str, int], list[str]],
                      found: dict[str, dict[int, list[tuple[str, bool]]]]) -> None:
    """Is the gold answer in what the model is given: `Memory.context` in its default style
    (claude: each memory tagged with its id) and as markdown bullets, against BM25's top
    turns packed as bullets into the same budget, counted with the same tokenizer. Appends
    (category, answer found) per question to `found[system][budget]`."""
    count = load_counter()
    systems = {"claude": "Engram, Memory.context (claude style)",
               "markdown": "Engram, Memory.context (markdown style)"}
    for conv, i in each_question(conversations):
        text_of = {str(t["dia_id"]): str(t["text"]) for t in conv.turns}
        question, _, category = conv.questions[i]
        answer, cat = conv.answers[i], CATEGORIES[category]
        for budget in BUDGETS:
            for style, name in systems.items():
                context = mem.context(question, user_id=conv.name, budget_tokens=budget,
                                      style=style)
                found[name][budget].append((cat, answer_in(context, answer)))
            packed = pack([text_of[d] for d in bm25[(conv.name, i)]], budget, count)
            found["BM25 top turns packed"][budget].append((cat, answer_in(packed, answer)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo"))
    parser.add_argument("--store", default="sqlite", help=STORE_HELP)
    parser.add_argument("--engram-only", action="store_true", help="skip the baselines")
    parser.add_argument("--layout", choices=LAYOUTS, default="per-conversation",
                        help="a store per conversation, as a new user's device holds one "
                        "person's history (the default), or one store holding them all")
    args = parser.parse_args()
    conversations = load(args.data)
    questions = sum(len(c.questions) for c in conversations)
    turns = sum(len(c.turns) for c in conversations)
    print(f"{len(conversations)} conversations, {turns} turns, {questions} questions (cat 1-4),"
          f" layout {args.layout}", file=sys.stderr)
    embedder = cached_embedder()
    rows: dict[str, Row] = {}
    labels = [CATEGORIES[conv.questions[i][2]] for conv, i in each_question(conversations)]
    groups = [[c] for c in conversations] if args.layout == "per-conversation" \
        else [conversations]
    bm25: dict[tuple[str, int], list[str]] = {}
    bm25_ms: list[float] = []
    for group in groups:  # BM25 sees what Engram's store holds: its IDF is the store's
        ranked, ms = run_bm25(group)
        bm25.update(((c.name, i), r) for (c, i), r in zip(each_question(group), ranked,
                                                          strict=True))
        bm25_ms += ms
    if not args.engram_only:
        evidence = [conv.questions[i][1] for conv, i in each_question(conversations)]
        rows["BM25 (FTS5, porter, stopwords)"] = Row(np.array(
            [recalls(bm25[(c.name, i)], e) for (c, i), e in
             zip(each_question(conversations), evidence, strict=True)]))
        rows["dense (MiniLM cosine)"] = Row(np.array(
            [recalls(r, e) for r, e in zip(run_dense(conversations, embedder), evidence,
                                           strict=True)]))
    asked: list[Question] = []
    latencies: list[float] = []
    found: dict[str, dict[int, list[tuple[str, bool]]]] = defaultdict(
        lambda: defaultdict(list))
    added, build_s = 0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        locs = Locations(Path(tmp), args.store)
        try:
            for n, group in enumerate(groups):
                # Access statistics are not written during the run, so every question (and
                # every run) ranks the same store: one that no search has touched yet.
                mem = Memory(locs.new(f"locomo{n}"), embedder=embedder, access_batch=10**9,
                             access_flush_s=10.0**9)
                t0 = time.perf_counter()
                ids = build(group, mem)
                build_s += time.perf_counter() - t0
                added += len(ids)
                part, ms = run_engram(group, mem, ids)
                asked += part
                latencies += ms
                answer_in_context(group, mem, bm25, found)
                mem.close()
        finally:
            locs.close()
    matrix = evaluate(asked)
    folds = [q.group for q in asked]
    save_matrix("locomo" if args.layout == LAYOUTS[0] else "locomo-shared", matrix, folds)
    rows.update(engram_rows(matrix, [q.group for q in asked], "LongMemEval-S",
                            load_matrix("longmemeval")))
    adds = added / build_s
    print(recall_table(rows, list(CATEGORIES.values()), labels))
    print("\nEach part's gain, cross-validated (leave one conversation out)\n")
    print(ablation_table(matrix, [q.group for q in asked]))
    print("\n" + joint_choice("locomo", matrix, folds))
    print()
    print(latency_line("Engram (query vector from the disk cache)", latencies))
    print(latency_line("BM25", bm25_ms))
    print(f"Engram adds: {adds:.0f}/s")
    print()
    print(context_table(found, list(CATEGORIES.values())))


if __name__ == "__main__":
    main()
