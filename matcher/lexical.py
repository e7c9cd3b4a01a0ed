"""Small postings indexes over token lists (numpy only): BM25 and TF-IDF cosine.

Built in memory from the tokens stored in each document's artefact, in about a second per thousand
long documents; no scipy or scikit-learn needed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Literal

import numpy as np

# Okapi defaults; the ranker's fusion was calibrated with them.
BM25_K1 = 1.2
BM25_B = 0.75


class SparseIndex:
    """Term -> (documents, weights) postings; `scores` gives one score per document, in build order."""

    def __init__(self, documents: Sequence[Sequence[str]], mode: Literal["bm25", "tfidf"] = "bm25") -> None:
        self.mode = mode
        self.size = len(documents)
        counts = [Counter(tokens) for tokens in documents]
        vocab: dict[str, int] = {}
        for tf in counts:
            for term in tf:
                vocab.setdefault(term, len(vocab))
        lengths = np.array([sum(tf.values()) for tf in counts], np.float32)
        average = max(float(lengths.mean()), 1e-9) if self.size else 1.0
        df = np.zeros(len(vocab), np.float32)
        for tf in counts:
            for term in tf:
                df[vocab[term]] += 1
        if mode == "bm25":
            self.idf = np.log(1 + (self.size - df + 0.5) / (df + 0.5))
        else:  # smooth idf, as scikit-learn's TfidfVectorizer
            self.idf = np.log((1 + self.size) / (1 + df)) + 1
        docs: list[list[int]] = [[] for _ in vocab]
        weights: list[list[float]] = [[] for _ in vocab]
        norms = np.zeros(self.size, np.float32)
        for d, tf in enumerate(counts):
            for term, c in tf.items():
                i = vocab[term]
                if mode == "bm25":
                    w = c * (BM25_K1 + 1) / (c + BM25_K1 * (1 - BM25_B + BM25_B * lengths[d] / average))
                else:
                    w = (1 + np.log(c)) * self.idf[i]  # sublinear tf
                    norms[d] += w * w
                docs[i].append(d)
                weights[i].append(float(w))
        if mode != "bm25":
            norms = np.sqrt(np.maximum(norms, 1e-9))
            weights = [[w / norms[d] for d, w in zip(ds, ws, strict=True)] for ds, ws in zip(docs, weights,
                                                                                           strict=True)]
        self.vocab = vocab
        self.postings = [np.array(ds, np.int32) for ds in docs]
        self.weights = [np.array(ws, np.float32) for ws in weights]

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """BM25 score, or TF-IDF cosine, of every document for the query tokens."""
        out = np.zeros(self.size, np.float32)
        tf = Counter(t for t in query if t in self.vocab)
        if self.mode == "bm25":
            for term in tf:
                i = self.vocab[term]
                out[self.postings[i]] += self.idf[i] * self.weights[i]
            return out
        query_weights = {t: (1 + np.log(c)) * self.idf[self.vocab[t]] for t, c in tf.items()}
        query_norm = float(np.sqrt(sum(w * w for w in query_weights.values()))) or 1.0
        for term, w in query_weights.items():
            i = self.vocab[term]
            out[self.postings[i]] += (w / query_norm) * self.weights[i]
        return out

    def nbytes(self) -> int:
        """Memory held by the postings, in bytes."""
        return sum(p.nbytes + w.nbytes for p, w in zip(self.postings, self.weights, strict=True))
