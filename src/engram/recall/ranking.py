"""Retrieval: turning a question into candidate queries and ranked, explained hits. Pure."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

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
    """A memory found by the keyword or the vector query, with both raw signals."""

    memory: Brief
    keyword: float = 0.0  # BM25 (higher is better); 0 when the keyword query missed it
    vector: float = 0.0  # cosine similarity to the query; 0 without vectors
    entity: float = 0.0  # share of the query's named entities the memory names (recall.entities)


@dataclass(frozen=True, slots=True)
class Weights:
    """How the signals combine. Relevance weights measured on LoCoMo; the re-scoring signals
    are deliberately small: they order near-ties, they do not overrule relevance."""

    keyword: float = 0.4
    vector: float = 0.6
    min_vector: float = 0.25  # a memory only the vector query found must be at least this close
    session: float = 0.2  # share of the best score in the same session, added to each
    entity: float = 0.0  # added to relevance per share of the query's entities named
    recency: float = 0.05
    recency_half_life_days: float = 90.0  # of how long ago it happened
    confidence: float = 0.05
    unused_half_life_days: float = 90.0  # confidence fades by half per this long unused
    tier: float = 0.03
    access: float = 0.02


DEFAULT_WEIGHTS = Weights()
TIER_BONUS = {Tier.SHORT_TERM: 0.0, Tier.LONG_TERM: 0.5, Tier.PERSISTENT: 1.0}


def fading(m: Brief, now: datetime, half_life_days: float) -> float:
    """What never gets used fades: 1.0 when just seen, half per `half_life_days` unused.
    Persistent memories do not fade. Computed when ranking, so fading writes no events."""
    if m.tier is Tier.PERSISTENT or m.last_seen is None or half_life_days <= 0:
        return 1.0
    idle_days = max((now - m.last_seen).total_seconds(), 0.0) / 86400
    return float(0.5 ** (idle_days / half_life_days))


def rank(candidates: Sequence[Candidate], now: datetime,
         weights: Weights = DEFAULT_WEIGHTS) -> list[Ranked]:
    """Fuse keyword and vector relevance, lift turns whose session is relevant, then
    re-score with recency, confidence, tier and use. Best first; each hit explains itself."""
    candidates = [c for c in candidates if c.keyword > 0 or c.vector >= weights.min_vector]
    if not candidates:
        return []
    top_keyword = max(c.keyword for c in candidates) or 1.0
    has_vectors = any(c.vector for c in candidates)
    vector_weight = weights.vector if has_vectors else 0.0
    keyword_weight = weights.keyword if has_vectors else 1.0
    relevance = [keyword_weight * c.keyword / top_keyword + vector_weight * c.vector
                 + weights.entity * c.entity for c in candidates]
    best_in_session: dict[tuple[str, str], float] = {}
    for c, r in zip(candidates, relevance, strict=True):
        if c.memory.session_id is not None:
            key = (c.memory.user_id, c.memory.session_id)
            best_in_session[key] = max(best_in_session.get(key, 0.0), r)
    hits = []
    for c, r in zip(candidates, relevance, strict=True):
        m = c.memory
        session = weights.session * best_in_session.get((m.user_id, m.session_id or ""), 0.0) \
            if m.session_id is not None else 0.0
        age_days = max((now - m.occurred_at).total_seconds(), 0.0) / 86400
        recency = 0.5 ** (age_days / weights.recency_half_life_days)
        use = math.log1p(m.access_count) / math.log1p(100)
        confidence = m.confidence * fading(m, now, weights.unused_half_life_days)
        boost = (weights.recency * recency + weights.confidence * (confidence - 0.5)
                 + weights.tier * TIER_BONUS[m.tier] + weights.access * min(use, 1.0))
        score = (r + session) * (1.0 + boost)
        hits.append(Ranked(m, score, {
            "keyword": c.keyword, "vector": c.vector, "entity": c.entity, "relevance": r,
            "session": session,
            "recency": recency, "confidence": confidence, "boost": boost,
        }))
    hits.sort(key=lambda h: (-h.score, h.memory.id))
    return hits
