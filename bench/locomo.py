"""LoCoMo evidence recall: Engram against a plain BM25 and a plain dense baseline, one run.

    python bench/locomo.py --data ../shared/data/locomo
    python bench/locomo.py --store pgserver --engram-only   # the same run on PostgreSQL

Each turn becomes one memory ("Speaker: text", plus " [shares photo: CAPTION]"), scoped to its
conversation (user_id), with metadata {"dia_id": ...} and `at` = the session's date. Every
question of categories 1-4 is searched; evidence recall@k is the share of its evidence turns
among the top k. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from engram import Memory
from engram.embed.embedders import load_embedder
from engram.recall.ranking import keyword_terms
from stores import STORE_HELP, Locations

KS = (5, 10, 20)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}


@dataclass
class Conversation:
    name: str
    turns: list[dict[str, object]]  # text, dia_id, session, at
    questions: list[tuple[str, set[str], int]]  # question, evidence, category


@dataclass
class Result:
    recalls: dict[int, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    latencies_ms: list[float] = field(default_factory=list)
    adds_per_s: float | None = None


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
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y")


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
        questions = []
        for q in raw["qa"]:
            if q["category"] == 5:
                continue
            evidence = normalise_evidence(q.get("evidence", []), known)
            if evidence:
                questions.append((q["question"], evidence, int(q["category"])))
        conversations.append(Conversation(file.stem, turns, questions))
    return conversations


def score(result: Result, category: int, evidence: set[str], ranked: list[str]) -> None:
    for k in KS:
        result.recalls[k].append((category, len(evidence & set(ranked[:k])) / len(evidence)))


def run_engram(conversations: list[Conversation], store: str | Path) -> Result:
    result = Result()
    mem = Memory(store)
    started, count = time.perf_counter(), 0
    for conv in conversations:
        by_session: dict[str, list[dict[str, object]]] = defaultdict(list)
        for t in conv.turns:
            by_session[str(t["session"])].append(t)
        for session, turns in by_session.items():
            mem.add_many([{"text": t["text"], "user_id": conv.name, "session_id": session,
                           "metadata": {"dia_id": t["dia_id"]}, "at": t["at"],
                           "memory_type": "event", "dedupe": False} for t in turns])
            count += len(turns)
    result.adds_per_s = count / (time.perf_counter() - started)
    for conv in conversations:
        for question, evidence, category in conv.questions:
            t0 = time.perf_counter()
            hits = mem.search(question, user_id=conv.name, limit=max(KS))
            result.latencies_ms.append((time.perf_counter() - t0) * 1000)
            score(result, category, evidence, [str(h.memory.metadata["dia_id"]) for h in hits])
    mem.close()
    return result


def run_bm25(conversations: list[Conversation]) -> Result:
    """Plain BM25: one FTS5 column (porter), the same stopword-free OR query."""
    result = Result()
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(text, conv UNINDEXED, dia UNINDEXED, "
               "tokenize='porter unicode61')")
    for conv in conversations:
        db.executemany("INSERT INTO t VALUES (?, ?, ?)",
                       [(t["text"], conv.name, t["dia_id"]) for t in conv.turns])
    for conv in conversations:
        for question, evidence, category in conv.questions:
            match = " OR ".join(f'"{w}"' for w in keyword_terms(question))
            t0 = time.perf_counter()
            rows = db.execute("SELECT dia FROM t WHERE t MATCH ? AND conv = ? ORDER BY rank "
                              "LIMIT ?", (match, conv.name, max(KS))).fetchall()
            result.latencies_ms.append((time.perf_counter() - t0) * 1000)
            score(result, category, evidence, [r[0] for r in rows])
    return result


def run_dense(conversations: list[Conversation],
              embed: Callable[[list[str]], np.ndarray]) -> Result:
    """Plain dense: MiniLM cosine over every turn of the conversation, exact."""
    result = Result()
    for conv in conversations:
        matrix = embed([str(t["text"]) for t in conv.turns])
        for question, evidence, category in conv.questions:
            t0 = time.perf_counter()
            sims = matrix @ embed([question])[0]
            top = np.argsort(-sims)[:max(KS)]
            result.latencies_ms.append((time.perf_counter() - t0) * 1000)
            score(result, category, evidence, [str(conv.turns[i]["dia_id"]) for i in top])
    return result


def table(results: dict[str, Result]) -> str:
    head = ["system", *(f"R@{k}" for k in KS), *(f"R@10 {n}" for n in CATEGORIES.values()),
            "search p50 ms", "search p95 ms", "adds/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        overall = [statistics.fmean(v for _, v in r.recalls[k]) for k in KS]
        per_cat = [statistics.fmean([v for c, v in r.recalls[10] if c == cat] or [0.0])
                   for cat in CATEGORIES]
        lat = sorted(r.latencies_ms)
        p50, p95 = lat[len(lat) // 2], lat[int(len(lat) * 0.95)]
        adds = f"{r.adds_per_s:.0f}" if r.adds_per_s else "-"
        lines.append("| " + " | ".join([name, *(f"{x:.3f}" for x in overall),
                                        *(f"{x:.3f}" for x in per_cat), f"{p50:.2f}",
                                        f"{p95:.2f}", adds]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo"))
    parser.add_argument("--store", default="sqlite", help=STORE_HELP)
    parser.add_argument("--engram-only", action="store_true", help="skip the baselines")
    args = parser.parse_args()
    conversations = load(args.data)
    questions = sum(len(c.questions) for c in conversations)
    turns = sum(len(c.turns) for c in conversations)
    print(f"{len(conversations)} conversations, {turns} turns, {questions} questions (cat 1-4)",
          file=sys.stderr)
    results = {}
    if not args.engram_only:
        embedder = load_embedder()
        results = {"BM25 (FTS5, porter, stopwords)": run_bm25(conversations),
                   "dense (MiniLM cosine)": run_dense(conversations,
                                                      lambda texts: embedder.embed(texts))}
    with tempfile.TemporaryDirectory() as tmp:
        locs = Locations(Path(tmp), args.store)
        try:
            name = "Engram" if args.store == "sqlite" else f"Engram ({locs.describe()})"
            results[name] = run_engram(conversations, locs.new("locomo"))
        finally:
            locs.close()
    print(table(results))


if __name__ == "__main__":
    main()
