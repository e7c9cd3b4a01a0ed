"""Postings indexes: scoring a few documents gives what scoring all of them gives."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher import lexical
from matcher.lexical import SparseIndex, term_keys

WORDS = ["couture", "cuisine", "de", "la", "garde", "enfants", "jardin", "velo", "reparer", "arabe"]
documents = st.lists(st.lists(st.sampled_from(WORDS), max_size=12), min_size=1, max_size=30)
queries = st.lists(st.sampled_from([*WORDS, "inconnu"]), max_size=8)


@settings(max_examples=200, deadline=None)
@given(documents, queries, st.sampled_from(["bm25", "tfidf"]), st.sampled_from([0, 1, 10**9]), st.booleans(),
       st.data())
def test_scores_at_some_positions_equal_the_full_scores_there(
        docs: list[list[str]], query: list[str], mode: str, factor: int, compact: bool,
        data: st.DataObject) -> None:
    """Whether a term's postings are searched (factor 0), gathered (10**9) or either (1)."""
    index = SparseIndex([term_keys(d) for d in docs], mode, compact=compact)  # type: ignore[arg-type]
    positions = np.asarray(sorted(data.draw(st.sets(st.integers(0, len(docs) - 1)))), np.int64)
    keys = term_keys(query)
    saved, lexical.SEARCH_DF_FACTOR = lexical.SEARCH_DF_FACTOR, factor
    try:
        np.testing.assert_allclose(index.scores_at(keys, positions), index.scores(keys)[positions],
                                   rtol=1e-5, atol=1e-7)
    finally:
        lexical.SEARCH_DF_FACTOR = saved


@settings(max_examples=50, deadline=None)
@given(documents, documents, queries)
def test_scores_at_on_a_small_index_use_the_reference_statistics(big: list[list[str]], small: list[list[str]],
                                                                  query: list[str]) -> None:
    reference = SparseIndex([term_keys(d) for d in big], "tfidf")
    index = SparseIndex([term_keys(d) for d in small], "tfidf", reference)
    keys = term_keys(query)
    every = np.arange(len(small))
    np.testing.assert_allclose(index.scores_at(keys, every), index.scores(keys), rtol=1e-5, atol=1e-7)


def test_a_document_holding_none_of_the_query_terms_scores_zero() -> None:
    index = SparseIndex([term_keys(["couture", "atelier"]), term_keys(["cuisine"])], "bm25")
    scores = index.scores_at(term_keys(["couture"]), np.array([0, 1]))
    assert scores[0] > 0 and scores[1] == 0


@settings(max_examples=100, deadline=None)
@given(documents, documents, queries, st.sampled_from(["bm25", "tfidf"]))
def test_a_compact_index_scores_as_the_full_one_and_merges_compact(
        first: list[list[str]], second: list[list[str]], query: list[str], mode: str) -> None:
    """float16 weights and uint8 counts: the same scores within float16's precision, also after a
    merge (which recomputes the weights from the counts)."""
    docs = [term_keys(d) for d in first + second]
    full = SparseIndex(docs, mode)  # type: ignore[arg-type]
    compact = SparseIndex(docs, mode, compact=True)  # type: ignore[arg-type]
    assert compact.weights.dtype == np.float16 and compact.tf.dtype == np.uint8
    assert compact.nbytes() < full.nbytes() or not sum(map(len, docs))
    keys = term_keys(query)
    np.testing.assert_allclose(compact.scores(keys), full.scores(keys), rtol=2e-3, atol=1e-6)
    halves = [SparseIndex([term_keys(d) for d in part], mode, compact=True)  # type: ignore[arg-type]
              for part in (first, second)]
    merged = SparseIndex.merged([(h, np.ones(h.size, bool)) for h in halves], compact=True)
    assert merged.weights.dtype == np.float16
    np.testing.assert_allclose(merged.scores(keys), compact.scores(keys), rtol=1e-6, atol=1e-7)


def test_counts_are_capped_in_a_compact_index() -> None:
    index = SparseIndex([term_keys(["de"] * 300 + ["couture"])], "bm25", compact=True)
    assert int(index.tf.max()) == 255 and index.scores(term_keys(["de"]))[0] > 0
