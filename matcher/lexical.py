"""Postings indexes over hashed tokens (numpy only): BM25 and TF-IDF cosine.

Tokens (stems, character n-grams) are stored as 64-bit keys (`term_keys`), not strings: a
document's artefact holds an int64 array, and an index is three flat arrays (term keys, document
positions, weights) built with one sort, with no Python object per term or posting. At 100,000
declarations (~700 character n-grams each) the string form cost tens of kilobytes of Python
objects per document; the keys cost 8 bytes per token.

An index can be built with another index's statistics (`reference`): the hybrid ranker scores the
documents written since its last full build that way (idf, average length and norms of the big
index), so a write costs a small index, not a rebuild; the full build at the next merge puts
everything back on one set of statistics.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Literal

import numpy as np

# `SparseIndex.scores_at` binary-searches a term's postings for the wanted documents when it has
# more than this many postings per wanted document (else it gathers them all, like `scores`). At
# 100,000 declarations (~440 candidates and ~100 such character n-grams per need; 150 needs,
# interleaved runs) the two lexical signals of a need took 10.7-12.6 ms at 8 (4: within noise of
# 8; 16: 13.7-14.2), against 12.9-17.0 ms at 16 when each term's hits were gathered in its own turn
# of the loop rather than all at once after it.
SEARCH_DF_FACTOR = 8
# A compact index (the hybrid ranker's half-precision part, above its exact size) keeps its weights
# in float16 and its counts in uint8 (capped at 255: BM25 saturates long before, and 1 + log(tf)
# moves by 0.2 from 255 to 300): 7 bytes per posting instead of 10, 75 MB less at 100,000
# declarations; scores move by ~1e-4 relative.
# Okapi defaults; the ranker's fusion was calibrated with them.
BM25_K1 = 1.2
BM25_B = 0.75

Mode = Literal["bm25", "tfidf"]
_EMPTY = np.zeros(0, np.int64)


def term_keys(tokens: Sequence[str]) -> np.ndarray:
    """64-bit keys of tokens (CRC-32 and Adler-32 of the UTF-8 bytes side by side): stable across
    processes and machines, unlike Python's `hash`; two distinct tokens share a key with
    probability ~2^-64 per pair (CRC-32 alone: ~100 colliding pairs among a million n-grams)."""
    if not tokens:
        return _EMPTY
    data = (token.encode("utf-8", "surrogatepass") for token in tokens)
    return np.fromiter(((zlib.crc32(d) << 31) ^ zlib.adler32(d) for d in data), np.int64, len(tokens))


class SparseIndex:
    """Term -> (document positions, weights) postings over hashed tokens; `scores` gives one score
    per document, in build order."""

    corpus_size: int
    average: float

    def __init__(self, documents: Sequence[np.ndarray], mode: Mode = "bm25",
                 reference: SparseIndex | None = None, compact: bool = False) -> None:
        lengths = np.fromiter((len(d) for d in documents), np.int64, count=len(documents))
        keys = np.concatenate(list(documents)).astype(np.int64) if len(documents) else _EMPTY
        owner = np.repeat(np.arange(len(documents), dtype=np.int64), lengths)
        order = np.lexsort((owner, keys))  # by term, then document
        keys, owner = keys[order], owner[order]
        new_pair = np.ones(len(keys), bool)
        new_pair[1:] = (keys[1:] != keys[:-1]) | (owner[1:] != owner[:-1])
        starts = np.flatnonzero(new_pair)
        tf = np.diff(np.r_[starts, len(keys)])
        self._build(keys[starts], owner[starts], tf, lengths, mode, reference, compact)

    @classmethod
    def merged(cls, parts: Sequence[tuple[SparseIndex, np.ndarray]], compact: bool = False) -> SparseIndex:
        """One index of the documents kept (a bool per document) of each part, in that order, on
        its own statistics (no re-tokenising: the postings are re-sorted)."""
        keys, docs, tf, lengths, offset = [], [], [], [], 0
        for index, keep in parts:
            new_position = np.cumsum(keep) - 1 + offset
            alive = keep[index.docs]
            keys.append(np.repeat(index.vocab, np.diff(index.indptr))[alive])
            docs.append(new_position[index.docs[alive]])
            tf.append(index.tf[alive])
            lengths.append(index.lengths[keep])
            offset += int(keep.sum())
        all_keys, all_docs = np.concatenate(keys), np.concatenate(docs)
        order = np.lexsort((all_docs, all_keys))
        out = cls.__new__(cls)
        out._build(all_keys[order], all_docs[order], np.concatenate(tf)[order], np.concatenate(lengths),
                   parts[0][0].mode, None, compact)
        return out

    def _build(self, pair_keys: np.ndarray, docs: np.ndarray, tf: np.ndarray, lengths: np.ndarray,
               mode: Mode, reference: SparseIndex | None, compact: bool = False) -> None:
        """The postings from (term, document, count) triples sorted by term then document;
        `compact`: 3 bytes less per posting (see the module constants)."""
        self.mode = mode
        self.reference = reference
        self.size = len(lengths)
        new_term = np.ones(len(pair_keys), bool)
        new_term[1:] = pair_keys[1:] != pair_keys[:-1]
        term_starts = np.flatnonzero(new_term)
        self.vocab = pair_keys[term_starts]  # sorted term keys
        self.indptr = np.r_[term_starts, len(pair_keys)].astype(np.int64)
        self.df = np.diff(self.indptr).astype(np.float32)
        self.lengths = np.asarray(lengths, np.float32)
        self.docs = np.asarray(docs, np.int32)
        tf_type = np.uint8 if compact else np.uint16
        self.tf = np.minimum(tf, np.iinfo(tf_type).max).astype(tf_type)
        # Statistics: this index's own, or the reference's (a small index of recent documents).
        if reference is not None:
            self.corpus_size, self.average = reference.corpus_size, reference.average
            self.idf = self._idf(reference.df_of(self.vocab))
        else:
            self.corpus_size = self.size
            self.average = max(float(self.lengths.mean()), 1e-9) if self.size else 1.0
            self.idf = self._idf(self.df)
        count = self.tf.astype(np.float32)
        term_of_pair = np.repeat(np.arange(len(self.vocab)), np.diff(self.indptr))
        if mode == "bm25":
            norm = BM25_K1 * (1 - BM25_B + BM25_B * self.lengths[self.docs] / self.average)
            weights = self.idf[term_of_pair] * count * (BM25_K1 + 1) / (count + norm)
        else:  # sublinear tf, smooth idf (as scikit-learn's TfidfVectorizer), unit-length rows
            weights = (1 + np.log(count)) * self.idf[term_of_pair]
            norms = np.sqrt(np.maximum(np.bincount(self.docs, weights * weights, minlength=self.size), 1e-9))
            weights = weights / norms[self.docs]
        self.weights = weights.astype(np.float16 if compact else np.float32)

    def contains(self, position: int, keys: np.ndarray) -> np.ndarray:
        """For each term key, whether the document at `position` holds it."""
        at, found = self._find(keys)
        out = np.zeros(len(keys), bool)
        for i in np.flatnonzero(found).tolist():
            j = int(at[i])
            postings = self.docs[self.indptr[j]:self.indptr[j + 1]]
            k = int(np.searchsorted(postings, position))
            out[i] = k < len(postings) and postings[k] == position
        return out

    def _idf(self, df: np.ndarray) -> np.ndarray:
        n = self.corpus_size
        if self.mode == "bm25":
            return np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        return (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)

    def _find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each key's place in the vocabulary, and whether it is there."""
        at = np.searchsorted(self.vocab, keys)
        found = at < len(self.vocab)
        found[found] = self.vocab[at[found]] == keys[found]
        return at, found

    def df_of(self, keys: np.ndarray) -> np.ndarray:
        """Document frequency of each term key (0 when unknown)."""
        at, found = self._find(keys)
        out = np.zeros(len(keys), np.float32)
        out[found] = self.df[at[found]]
        return out

    def _query_terms(self, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The vocabulary places of the query's known terms, and each one's query weight."""
        if not len(query) or not len(self.vocab):
            return _EMPTY, np.zeros(0, np.float32)
        terms, counts = np.unique(query, return_counts=True)
        at, known = self._find(terms)
        at, counts = at[known], counts[known]
        if self.mode == "bm25":  # each distinct query term counts once
            return at, np.ones(len(at), np.float32)
        return at, (1 + np.log(counts)) * self.idf[at] / self._query_norm(query)

    def scores(self, query: np.ndarray) -> np.ndarray:
        """BM25 score, or TF-IDF cosine, of every document for the query's term keys."""
        at, query_weights = self._query_terms(query)
        docs, contribution = self._contributions(at, query_weights)
        return np.bincount(docs, contribution, minlength=self.size).astype(np.float32)

    def scores_at(self, query: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """`scores(query)[positions]` for a few documents (sorted positions), without scoring the
        others. A character n-gram query against 100,000 declarations touches millions of postings
        (frequent n-grams are in most documents): a term with more than SEARCH_DF_FACTOR postings
        per wanted document has them binary-searched for those documents; the rarer terms' postings
        are gathered at once, as `scores` does."""
        out = np.zeros(len(positions), np.float64)
        at, query_weights = self._query_terms(query)
        if not len(at) or not len(positions):
            return out.astype(np.float32)
        wanted = np.asarray(positions, self.docs.dtype)
        common = self.indptr[at + 1] - self.indptr[at] > SEARCH_DF_FACTOR * len(wanted)
        docs, contribution = self._contributions(at[~common], query_weights[~common])
        if len(docs):
            slot = np.full(self.size, -1, np.int64)
            slot[wanted] = np.arange(len(wanted))
            slots = slot[docs]
            kept = slots >= 0
            out += np.bincount(slots[kept], contribution[kept], minlength=len(wanted))
        if common.any():  # one binary search per term; the hits gathered for all terms at once
            starts, ends = self.indptr[at[common]], self.indptr[at[common] + 1]
            places = np.empty((len(starts), len(wanted)), np.int64)
            for row, (start, end) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
                places[row] = self.docs[start:end].searchsorted(wanted)
            rows = starts[:, None] + np.minimum(places, (ends - starts - 1)[:, None])  # last one if past
            held = np.where(self.docs[rows] == wanted, self.weights[rows].astype(np.float64), 0.0)
            out += query_weights[common].astype(np.float64) @ held
        return out.astype(np.float32)

    def _contributions(self, at: np.ndarray, query_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every posting of the vocabulary places `at`: its document and its weighted score."""
        if not len(at):
            return np.zeros(0, self.docs.dtype), np.zeros(0, np.float64)
        sizes = self.indptr[at + 1] - self.indptr[at]
        rows = np.repeat(self.indptr[at] - np.r_[0, np.cumsum(sizes)[:-1]], sizes) + np.arange(sizes.sum())
        return self.docs[rows], self.weights[rows] * np.repeat(query_weights, sizes)  # float32 at least

    def _query_norm(self, query: np.ndarray) -> float:
        """Length of the query's TF-IDF vector over the terms the (reference) index knows, so that
        a small index of recent documents scores on the big one's scale."""
        index = self.reference or self
        terms, counts = np.unique(query, return_counts=True)
        at, known = index._find(terms)
        weights = (1 + np.log(counts[known])) * index.idf[at[known]]
        return float(np.sqrt((weights ** 2).sum())) or 1.0

    def nbytes(self) -> int:
        """Memory held by the postings, in bytes."""
        return int(sum(a.nbytes for a in (self.vocab, self.indptr, self.df, self.lengths, self.idf,
                                          self.docs, self.tf, self.weights)))
