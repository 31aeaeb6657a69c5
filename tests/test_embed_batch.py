"""Batch embedding (what ingestion runs on thousands of texts): length-sorted batches on
several threads, attention a few sequences at a time and the feed-forward a block of rows at a
time, agree with sentence-transformers on the same weights, and do not depend on how the
work was split."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engram.embed.bert import BertEncoder
from engram.embed.embedders import minilm_path

WORDS = ("garden tomato seed water shed roof winter budget basil market bread coffee train "
         "museum river mountain recipe concert bicycle sister meeting project").split()


def texts(n: int, seed: int = 5) -> list[str]:
    """Lengths from 1 word to past the 256-token limit, in no order."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.choice((1, 3, 12, 40, 90, 300))))
            for _ in range(n)]


@pytest.fixture(scope="module")
def encoder() -> BertEncoder:
    return BertEncoder(minilm_path())


def test_many_batches_on_threads_match_sentence_transformers(encoder: BertEncoder) -> None:
    st = pytest.importorskip("sentence_transformers")
    batch = texts(70)  # three batches of 32, the longest past the token limit
    reference = st.SentenceTransformer(str(minilm_path()), device="cpu").encode(
        batch, batch_size=32, normalize_embeddings=True)
    ours = encoder.encode(batch, threads=2)
    assert ours.shape == (70, 384) and ours.dtype == np.float32
    assert float((ours * reference).sum(axis=1).min()) > 0.999


def test_the_split_of_the_work_does_not_change_the_vectors(encoder: BertEncoder) -> None:
    batch = texts(40, seed=9)
    one = encoder.encode(batch, batch_size=32, threads=1)
    assert np.allclose(one, encoder.encode(batch, batch_size=7, threads=3), atol=1e-5)
    assert np.allclose(one, np.stack([encoder.encode([t])[0] for t in batch]), atol=1e-5)


@given(st.lists(st.integers(1, 256), max_size=200), st.integers(1, 64),
       st.none() | st.integers(1, 4096))
def test_batches_keep_the_order_and_the_caps(lengths: list[int], size: int,
                                             tokens: int | None) -> None:
    """Length-sorted texts cut into batches: every text once, in order, at most `size` a
    batch, and over `tokens` padded tokens only a batch of one text."""
    from engram.embed.bert import _batches

    lengths = sorted(lengths)
    order = list(range(len(lengths)))
    batches = _batches(order, lengths, size, tokens)
    assert [i for b in batches for i in b] == order
    for batch in batches:
        assert 1 <= len(batch) <= size
        if tokens is not None and len(batch) > 1:
            assert len(batch) * max(lengths[i] for i in batch) <= tokens
