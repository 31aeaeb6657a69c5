"""What the keyword index holds for a memory: its columns, their weights, and the keys that
fill them. Backend-neutral: both stores index the same text the same way."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

# What the keyword index holds for each memory, with each column's BM25 weight. Neighbouring
# memories of the same session give a turn the context it was said in; the date lets
# "what happened in May 2023" match. Weights measured on LoCoMo (docs/recall-research.md).
INDEX_COLUMNS = ("text", "prev1", "next1", "prev2", "next2", "date")
INDEX_WEIGHTS = (1.0, 0.5, 0.5, 0.2, 0.2, 1.0)
NEIGHBOURS = 2
INDEX_KEYS_VERSION = 3  # what the columns hold; 2: slot topic words join the text column;
# 3: allergy topic words
# A query term in more than MAX_TERM_SHARE of the rows, or more than MAX_TERM_ROWS rows, adds
# little weight at much cost, and is dropped (FTS5 gives a term in over half the rows none).
# Stores count their rows exactly while small, so two stores holding the same memories drop
# the same terms. (A share of 0.5 measured +0.013 LoCoMo recall@10 in a store per
# conversation, but changes what tiny stores answer: docs/recall.md.)
MAX_TERM_ROWS = 2000
MAX_TERM_SHARE = 0.2


def date_words(moment: datetime) -> str:
    """'8 May 2023': the words a question about a date would use."""
    return f"{moment.day} {moment.strftime('%B %Y')}"


# Fact-augmented keys: words a question about a slot uses that its statement may not
# ("What diet do I follow?" → "User is vegan"). By the attribute's first part.
SLOT_TOPICS = {
    "name": "name called", "nationality": "nationality country", "age": "age old years",
    "birthday": "birthday born", "relationship_status": "relationship partner married single",
    "relation": "family relative", "children": "children kids", "residence": "live home city",
    "origin": "from hometown origin", "employer": "work company employer job",
    "job_title": "job work profession occupation", "school": "school study university",
    "field_of_study": "study subject major", "diet": "diet eat food",
    "allergy": "allergy allergic food",
    "pet": "pet animal name", "favorite": "favorite favourite", "preference": "like",
    "skill": "skill", "learning": "learning",
}


def slot_topic(slot: str | None) -> str:
    """The topic words of a slot ("user/diet:meat" → "diet eat food")."""
    if not slot:
        return ""
    attribute = slot.rpartition("/")[2]
    return SLOT_TOPICS.get(attribute.partition(":")[0], "")


def index_keys(text: str, occurred_at: datetime, before: Sequence[str],
               after: Sequence[str], slot: str | None = None) -> tuple[str, ...]:
    """The keyword-index columns of a memory, given up to NEIGHBOURS texts on each side,
    nearest first, and its slot, whose topic words join its text."""
    def at(side: Sequence[str], i: int) -> str:
        return side[i] if i < len(side) else ""

    topic = slot_topic(slot)
    return (f"{text} {topic}" if topic else text, at(before, 0), at(after, 0), at(before, 1),
            at(after, 1), date_words(occurred_at))


def count_is_current(cached: tuple[int, int] | None, total: int) -> bool:
    """Whether a cached (rows holding a term, store size then) may still be used at store size
    `total`: never for a term that was in no row (an edit can add it without the store
    growing, and a term counted in no row is dropped from the query); otherwise while the
    size is unchanged, or within 1% in a store of 10k rows or more."""
    if cached is None or cached[0] == 0:
        return False
    return cached[1] == total or (total >= 10_000 and abs(cached[1] - total) <= total // 100)


def informative(counted: list[tuple[int, str]], total: int) -> tuple[list[tuple[int, str]], bool]:
    """Of (rows holding it, term) pairs, rarest first, the terms a keyword query keeps in a
    store of `total` rows: those in no more than MAX_TERM_SHARE of the rows (at most
    MAX_TERM_ROWS). When every term is common, the rarest stays and the flag is True (search
    it in the memories' own text)."""
    present = [(n, t) for n, t in counted if n > 0]
    cap = min(MAX_TERM_SHARE * total, MAX_TERM_ROWS)
    kept = [(n, t) for n, t in present if n <= cap]
    return (kept, False) if kept or not present else (present[:1], True)
