"""Retrieval: turning a question into candidate queries and ranked, explained hits. Pure."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from engram.model import Tier
from engram.query import Brief

# NLTK's English stopwords plus question words: they match nearly every memory, so they only
# add noise (and time) to an OR query. Measured on LoCoMo: docs/recall-research.md.
STOPWORDS = frozenset("""
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
yourselves he him his himself she she's her hers herself it it's its itself they them their
theirs themselves what which who whom this that that'll these those am is are was were be been
being have has had having do does did doing a an the and but if or because as until while of at
by for with about against between into through during before after above below to from up down
in out on off over under again further then once here there when where why how all any both each
few more most other some such no nor not only own same so than too very s t can will just don
don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn
doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn
needn't shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn wouldn't
whose kind type sort would could might likely many much ever yet also
""".split())

_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # the characters FTS5's unicode61 keeps in a token


def keyword_terms(query: str) -> list[str]:
    """The query's distinct content words, lower-cased; all its words if every one is a
    stopword (so "who am I" still searches for something)."""
    words = _WORD.findall(query.casefold())
    content = [w for w in words if w not in STOPWORDS]
    return list(dict.fromkeys(content or words))


@dataclass(frozen=True, slots=True)
class Ranked:
    """A ranked candidate: its score and the parts the score is made of."""

    memory: Brief
    score: float
    components: dict[str, float]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A memory found by the keyword or the vector query, with both raw signals and the
    question's own (`recall.signals`: 0 unless the search weighs them)."""

    memory: Brief
    keyword: float = 0.0  # BM25 (higher is better); 0 when the keyword query missed it
    vector: float = 0.0  # cosine similarity to the query; 0 without vectors
    entity: float = 0.0  # share of the query's named entities the memory names (recall.entities)
    time: float = 0.0  # 1 when it happened within the time the query names (recall.when)
    latest: float = 0.0  # how late it happened among the candidates (0-1), when the query
    # asks what holds now (recall.when)
    linked: float = 0.0  # how strongly the query links to it (recall.links)
    kind: float = 0.0  # 1 when it holds the kind of answer the query asks for (recall.answers)
    long: float = 0.0  # how far past LONG_WORDS it runs (`long_words`); 0 when the query asks
    # what the assistant said (recall.answers)
    found: bool = True  # by the query's keyword or vector half (False: through a link only)


@dataclass(frozen=True, slots=True)
class Weights:
    """How the signals combine. The relevance weights are chosen by cross-validation
    (docs/recall.md); the re-scoring signals are deliberately small: they order near-ties,
    they do not overrule relevance."""

    keyword: float = 0.4  # these, and length: the joint choice of docs/recall.md (step 6)
    vector: float = 0.6
    min_vector: float = 0.25  # a memory only the vector query found must be at least this close
    session: float = 0.3  # share of the best score in the same session, added to each
    entity: float = 0.1  # added to relevance per share of the query's entities named
    time: float = 0.0  # relevance x (1 + time) when it happened when the query says
    latest: float = 0.0  # relevance x (1 + latest x `Candidate.latest`)
    linked: float = 0.0  # added to relevance per `Candidate.linked`; 0: links are not fetched
    kind: float = 0.0  # relevance x (1 + kind) when it holds the kind of answer asked for
    spread: float = 0.0  # each further hit of a session already ranked loses this share
    length: float = 0.5  # score / (1 + length x `Candidate.long`): long memories match a little
    # of everything
    recency: float = 0.05
    recency_half_life_days: float = 90.0  # of how long ago it happened
    confidence: float = 0.05
    unused_half_life_days: float = 90.0  # confidence fades by half per this long unused
    tier: float = 0.03
    access: float = 0.02


DEFAULT_WEIGHTS = Weights()
# A memory longer than this many words (a long chat message; an assistant's answers, a pasted
# document) matches many questions a little: see `long_words`.
LONG_WORDS = 80
TIER_BONUS = {Tier.SHORT_TERM: 0.0, Tier.LONG_TERM: 0.5, Tier.PERSISTENT: 1.0}
Vector = npt.NDArray[np.float64]


def fading(m: Brief, now: datetime, half_life_days: float) -> float:
    """What never gets used fades: 1.0 when just seen, half per `half_life_days` unused.
    Persistent memories do not fade. Computed when ranking, so fading writes no events."""
    if m.tier is Tier.PERSISTENT or m.last_seen is None or half_life_days <= 0:
        return 1.0
    idle_days = max((now - m.last_seen).total_seconds(), 0.0) / 86400
    return float(0.5 ** (idle_days / half_life_days))


@dataclass(frozen=True, slots=True)
class Signals:
    """The candidates' signals as arrays, computed once; `scores` combines them under any
    number of weight settings at once (cross-validation ranks one set under many)."""

    candidates: list[Candidate]
    keyword: Vector  # BM25 over the best BM25 among the candidates
    vector: Vector
    entity: Vector
    time: Vector
    latest: Vector
    linked: Vector
    kind: Vector
    found: npt.NDArray[np.bool_]
    session: npt.NDArray[np.int64]  # index of the candidate's (user, session); -1 without
    by_session: npt.NDArray[np.int64]  # the candidates with a session, grouped by it
    starts: npt.NDArray[np.int64]  # where each session's group begins in `by_session`
    recency: Vector
    confidence: Vector
    boost: Vector  # the re-scoring signals, which the tuned weights do not change
    long: Vector  # `Candidate.long`
    tie: npt.NDArray[np.int64]  # order of the memory ids: equal scores rank by id


def long_words(text: str, pivot: int = LONG_WORDS) -> float:
    """How far past `pivot` words a memory runs, in doublings: 0 up to `pivot` words, 1 at
    twice as many. A long text holds many topics, so both halves find it for many questions
    (BM25's length normalisation within a column is partial, and MiniLM reads only its first
    256 word pieces); `Weights.length` divides its score by 1 + length x this (pivoted length
    normalisation over the fused score)."""
    if len(text) <= 2 * pivot:  # n words take at least 2n - 1 characters: no need to count
        return 0.0
    words = len(text.split())
    return math.log2(words / pivot) if words > pivot else 0.0


def signals(candidates: Sequence[Candidate], now: datetime,
            weights: Weights = DEFAULT_WEIGHTS) -> Signals:
    """The arrays `scores` needs; the boost uses `weights`' re-scoring signals."""
    cs = list(candidates)
    keyword, vector, entity, time, latest, linked, kind, long, found = np.array(
        [(c.keyword, c.vector, c.entity, c.time, c.latest, c.linked, c.kind, c.long, c.found)
         for c in cs], dtype=np.float64).reshape(-1, 9).T
    keys: dict[tuple[str, str], int] = {}
    session = np.array([keys.setdefault((c.memory.user_id, c.memory.session_id), len(keys))
                        if c.memory.session_id is not None else -1 for c in cs], dtype=np.int64)
    grouped = np.argsort(session, kind="stable")
    grouped = grouped[session[grouped] >= 0]
    starts = np.flatnonzero(np.diff(session[grouped], prepend=-1))
    briefs = [c.memory for c in cs]
    at = now.timestamp()
    age_days = np.maximum(at - np.array([m.occurred_at.timestamp() for m in briefs]), 0) / 86400
    recency = 0.5 ** (age_days / weights.recency_half_life_days)
    use = np.minimum(np.log1p([m.access_count for m in briefs]) / math.log1p(100), 1.0)
    confidence = np.array([m.confidence * fading(m, now, weights.unused_half_life_days)
                           for m in briefs])
    boost = (weights.recency * recency + weights.confidence * (confidence - 0.5)
             + weights.tier * np.array([TIER_BONUS[m.tier] for m in briefs])
             + weights.access * use)
    ids = [c.memory.id for c in cs]
    tie = np.empty(len(cs), dtype=np.int64)
    tie[sorted(range(len(cs)), key=ids.__getitem__)] = np.arange(len(cs))
    return Signals(cs, keyword / (keyword.max(initial=0.0) or 1.0), vector, entity, time,
                   latest, linked, kind, found > 0, session, grouped, starts, recency, confidence,
                   boost, long, tie)


TUNED = ("keyword", "vector", "min_vector", "session", "entity", "time", "latest", "linked",
         "kind", "spread", "length")


def _column(settings: Sequence[Weights], name: str) -> Vector:
    return np.array([getattr(w, name) for w in settings], dtype=np.float64)[:, None]


def scores(s: Signals, settings: Sequence[Weights]) -> tuple[Vector, Vector, Vector]:
    """(score, relevance, session lift), one row per setting, one column per candidate;
    score -inf for a vector-only candidate below `min_vector`, and for one only a link found
    (`Candidate.found`) unless links are weighed. Relevance fuses keyword and vector (keyword
    alone without vectors) with the question's entity and linked signals, which find what it
    is about, then scales by its time, latest and kind signals, which prefer among relevant
    memories the one that fits the question's form (so they never lift an unrelated one);
    each candidate gains `session` x the best relevance in its session (a relevant turn
    makes its neighbours likelier to be the evidence); the small re-scoring boost multiplies
    the sum, and a long memory has it divided by 1 + length x `Candidate.long`."""
    w = {name: _column(settings, name) for name in TUNED}
    kept = s.found & ((s.keyword > 0) | (s.vector >= w["min_vector"])) \
        | ((s.linked > 0) & (w["linked"] > 0))
    has_vectors = ((s.vector != 0) & kept).any(axis=1, keepdims=True)
    relevance = (np.where(has_vectors, w["keyword"], 1.0) * s.keyword
                 + np.where(has_vectors, w["vector"], 0.0) * s.vector
                 + w["entity"] * s.entity + w["linked"] * s.linked) \
        * (1.0 + w["time"] * s.time + w["latest"] * s.latest + w["kind"] * s.kind)
    lift = np.zeros_like(relevance)
    if len(s.by_session):
        best = np.maximum.reduceat(np.where(kept, relevance, 0.0)[:, s.by_session], s.starts,
                                   axis=1)
        has = s.session >= 0
        lift[:, has] = w["session"] * best[:, s.session[has]]
    score = np.where(kept, (relevance + lift) * (1.0 + s.boost) / (1.0 + w["length"] * s.long),
                     -np.inf)
    return score, relevance, lift


def order(s: Signals, settings: Sequence[Weights],
          score: Vector | None = None) -> tuple[npt.NDArray[np.int64], Vector]:
    """Per setting, the candidates' indexes best first (those scored -inf last) and the
    scores they rank by. With `spread`, the n-th hit of a session already ranked keeps
    (1 - spread) ** n of its score, so a question whose evidence lies in several sessions
    is not answered from one alone. `score`: `scores(s, settings)[0]`, when already made."""
    score = scores(s, settings)[0] if score is None else score.copy()
    tie = np.broadcast_to(s.tie, score.shape)
    ranked = np.lexsort((tie, -score), axis=-1)
    spread = _column(settings, "spread")[:, 0]
    rows = np.flatnonzero(spread > 0)
    if len(rows) and len(s.by_session):
        session = s.session[ranked[rows]]  # in rank order
        before = np.zeros_like(session)  # hits of the same session ranked above
        width = session.shape[1]
        grouped = np.argsort(session * width + np.arange(width), axis=1)  # by session, rank
        same = np.take_along_axis(session, grouped, 1)
        change = np.ones_like(same, dtype=bool)
        change[:, 1:] = same[:, 1:] != same[:, :-1]
        start = np.maximum.accumulate(np.where(change, np.arange(width), 0), axis=1)
        np.put_along_axis(before, grouped, np.arange(width) - start, axis=1)
        factor = np.where(session >= 0, (1.0 - spread[rows, None]) ** before, 1.0)
        spread_score = score[rows]
        np.put_along_axis(spread_score, ranked[rows],
                          np.take_along_axis(spread_score, ranked[rows], 1) * factor, axis=1)
        score[rows] = spread_score
        ranked[rows] = np.lexsort((tie[rows], -spread_score), axis=-1)
    return ranked, score


def rank(candidates: Sequence[Candidate], now: datetime, weights: Weights = DEFAULT_WEIGHTS,
         limit: int | None = None) -> list[Ranked]:
    """Fuse the signals (`scores`), best first (`order`), the first `limit`; each hit
    explains itself."""
    s = signals(candidates, now, weights)
    score, relevance, lift = scores(s, [weights])
    ranked, final = order(s, [weights], score)
    top = ranked[0][final[0, ranked[0]] > -np.inf]
    best: list[int] = top[:limit].tolist()
    return [Ranked(s.candidates[i].memory, float(final[0, i]), {
        "keyword": s.candidates[i].keyword, "vector": s.candidates[i].vector,
        "entity": s.candidates[i].entity, "time": s.candidates[i].time,
        "latest": s.candidates[i].latest, "linked": s.candidates[i].linked,
        "kind": s.candidates[i].kind, "length": s.candidates[i].long,
        "relevance": float(relevance[0, i]),
        "session": float(lift[0, i]), "recency": float(s.recency[i]),
        "confidence": float(s.confidence[i]), "boost": float(s.boost[i]),
    }) for i in best]
