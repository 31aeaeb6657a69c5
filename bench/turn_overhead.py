"""What memory costs a chat turn: everything `engram chat` does around the model call, at 10k
and 100k memories in one user's scope.

    python bench/turn_overhead.py --data ../shared/data/locomo --sizes 10000,100000 \
        --keep /tmp/engram-turns

Per turn, as `engram.chat.session.Chat.send` does it: load the session's conversation, recall and
assemble the context (the query embedded by the real MiniLM model unless `--embedder none`),
then record the exchange and extract from it (`Memory.remember_turn`, which embeds the new
texts). The model's answer is a canned LoCoMo turn, so its time is zero. The first turn of a
process is reported apart: it loads the user's vectors and saved graph. Lazy maintenance
(`Memory.maintain`, due once a day and run inside the turn that finds it due) is timed on its
own before the turns. Wall time suffers when other work shares the CPU; the process's CPU
time per turn (all its threads) does not, so both are shown. User messages are LoCoMo
questions (each used once, so the embedder's cache cannot answer); sessions are 20 turns.

Filling 100k memories through the real model would take long on a laptop CPU, so the stores
are filled as bench/recall_scale.py fills them: LoCoMo turns with a counter, their real MiniLM
vectors plus small noise, through a lookup embedder under the real model's name, by add_many.
`--keep DIR` keeps the filled stores and reuses them on the next run (turns are measured on a
copy, so a kept store stays as it was filled).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from engram import Memory
from engram.chat.session import INSTRUCTIONS
from engram.embed.embedders import load_embedder
from locomo import load
from recall_scale import LookupEmbedder, pct

SESSION_TURNS = 20
USER = "u"


def fill(store: Path, size: int, turns: list[str], base: np.ndarray, name: str) -> float:
    """A store of `size` memories for USER; returns memories per second."""
    rng = np.random.default_rng(7)
    table: dict[str, np.ndarray] = {}
    mem = Memory(store, embedder=LookupEmbedder(table, name, base.shape[1]),
                 access_batch=10**9)
    started = time.perf_counter()
    for start in range(0, size, 1000):
        batch = []
        for i in range(start, min(size, start + 1000)):
            text = f"{turns[i % len(turns)]} (#{i})"
            noise = rng.normal(0, 0.02, size=(base.shape[1],)).astype(np.float32)
            vec = base[i % len(turns)] + noise
            table[text] = vec / np.linalg.norm(vec)
            batch.append({"text": text, "user_id": USER, "session_id": f"s{i // 20}",
                          "dedupe": False})
        mem.add_many(batch)
        table.clear()
    rate = size / (time.perf_counter() - started)
    mem.close()
    return rate


def ready_store(root: Path, size: int, turns: list[str], base: np.ndarray, name: str,
                reuse: bool) -> tuple[Path, float | None]:
    """The store for `size`, filled now or (with --keep) reused from an earlier run, and used
    once, as an established store has been: its vector graph built and saved."""
    store = root / f"turns-{size}"
    rate = None
    if not (reuse and (store / "engram.db").exists()):
        shutil.rmtree(store, ignore_errors=True)
        rate = fill(store, size, turns, base, name)
    if not (store / "vectors").exists():
        with Memory(store) as mem:
            mem.search("what did we talk about?", user_id=USER, limit=1)
    return store, rate


def turn_vectors(model: Any, turns: list[str], cache: Path) -> np.ndarray:
    """The turns' real MiniLM vectors (kept beside the stores, they take a minute)."""
    if cache.exists():
        vectors = np.asarray(np.load(cache), dtype=np.float32)
        if len(vectors) == len(turns):
            return vectors
    t0 = time.perf_counter()
    vectors = np.asarray(model.embed(turns), dtype=np.float32)
    print(f"embedded {len(turns)} LoCoMo turns in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)
    np.save(cache, vectors)
    return vectors


def run_turns(mem: Memory, questions: list[str], answers: list[str],
              budget: int) -> dict[str, list[float]]:
    """Milliseconds per phase for each turn, the first turn included (callers split it)."""
    phases: dict[str, list[float]] = {"conversation": [], "recall + assemble": [],
                                      "record + extract": [], "turn": [], "turn CPU": []}
    for n, (question, answer) in enumerate(zip(questions, answers, strict=True)):
        session = f"bench-{n // SESSION_TURNS}"
        cpu = time.process_time()
        t0 = time.perf_counter()
        history = mem.conversation(session, user_id=USER)
        t1 = time.perf_counter()
        mem.assemble(conversation=[*history, {"role": "user", "content": question}],
                     user_id=USER, budget_tokens=budget, style="openai",
                     instructions=INSTRUCTIONS, include_sensitive=True)
        t2 = time.perf_counter()
        mem.remember_turn(question, answer, user_id=USER, session_id=session)
        t3 = time.perf_counter()
        for key, ms in (("conversation", t1 - t0), ("recall + assemble", t2 - t1),
                        ("record + extract", t3 - t2), ("turn", t3 - t0),
                        ("turn CPU", time.process_time() - cpu)):
            phases[key].append(ms * 1000)
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/locomo"))
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--turns", type=int, default=200, help="measured turns per size")
    parser.add_argument("--budget", type=int, default=2000, help="context tokens per turn")
    parser.add_argument("--embedder", choices=("minilm", "none"), default="minilm")
    parser.add_argument("--access-batch", type=int, default=256,
                        help="recalls counted before access statistics are written "
                             "(Memory's default 256; a huge value leaves the write out)")
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the stores here")
    args = parser.parse_args()

    conversations = load(args.data)
    turns = [str(t["text"]) for c in conversations for t in c.turns]
    questions = [q for c in conversations for q, _, _ in c.questions]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if len(questions) < (args.turns + 1) * len(sizes):
        parser.error(f"only {len(questions)} questions: lower --turns")
    model = load_embedder()
    root = args.keep or Path(tempfile.mkdtemp())
    root.mkdir(parents=True, exist_ok=True)
    base = turn_vectors(model, turns, root / "locomo-turn-vectors.npy")
    rows: list[tuple[int, float | None, float, float, dict[str, list[float]]]] = []
    for index, size in enumerate(sizes):
        store, rate = ready_store(root, size, turns, base, model.name, args.keep is not None)
        count = args.turns + 1
        asked = questions[index * count:(index + 1) * count]
        answers = [turns[(7 * i + 3) % len(turns)] for i in range(count)]
        scratch = root / f"measured-{size}"  # the turns write: a kept store stays as filled
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.copytree(store, scratch)
        embedder: Any = load_embedder() if args.embedder == "minilm" else None
        mem = Memory(scratch, embedder=embedder, access_batch=args.access_batch)
        t0 = time.perf_counter()
        mem.maintain()  # due once a day; run by the turn that finds it due
        maintain_s = time.perf_counter() - t0
        phases = run_turns(mem, asked, answers, args.budget)
        mem.close()
        rows.append((size, rate, maintain_s, phases["turn"][0],
                     {k: v[1:] for k, v in phases.items()}))
        shutil.rmtree(scratch, ignore_errors=True)
        if args.keep is None:
            shutil.rmtree(store, ignore_errors=True)

    print(f"embedder: {args.embedder}; {args.turns} turns per size after one first turn; "
          f"budget {args.budget} tokens; sessions of {SESSION_TURNS} turns; "
          f"access_batch {args.access_batch}")
    print("| memories | fill add_many/s | maintain() s | first turn ms | "
          "conversation p50 / p95 ms | "
          "recall + assemble p50 / p95 ms | record + extract p50 / p95 ms | "
          "turn p50 / p95 ms | turn CPU p50 / p95 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size, rate, maintain_s, first, phases in rows:
        cells = [f"{pct(phases[k], .5):.1f} / {pct(phases[k], .95):.1f}"
                 for k in ("conversation", "recall + assemble", "record + extract", "turn",
                           "turn CPU")]
        filled = f"{rate:,.0f}" if rate else "(kept store)"
        print(f"| {size:,} | {filled} | {maintain_s:.1f} | {first:,.0f} | "
              f"{' | '.join(cells)} |")


if __name__ == "__main__":
    main()
