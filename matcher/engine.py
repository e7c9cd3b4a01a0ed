"""The engine's small API: a Collection of documents' statements, searched with statements.

A document is a resident's declaration or a need; it owns statements (sentences, clauses), each
with a stored vector. Searching with a query's statements returns documents ranked by their best
statement pairs, with the pairs kept so a person can be told why.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np

from matcher.index import POSTFILTER_MARGIN, POSTFILTER_SHARE, IndexFileError, VectorIndex, sorted_unique

# A document scores on its best statement pair, plus a little for each further query statement
# it also answers well: someone who sews *and* teaches beats someone who only sews for a
# "teach sewing" need, but five weak pairs never outweigh one strong one.
SUPPORT_WEIGHT = 0.15
SUPPORT_FLOOR = 0.35
# A filter over fewer than 1/TABLE_SHARE of the documents gathers their statements one document at
# a time (~1 µs each) rather than rebuilding the document table after a write (~30 ms at 100,000
# documents and 470,000 statements).
TABLE_SHARE = 16


@dataclass(frozen=True)
class Pair:
    """One query statement meeting one document statement."""

    query_index: int
    statement_id: int
    similarity: float


@dataclass
class Hit:
    doc_id: int
    score: float
    pairs: list[Pair] = field(default_factory=list)  # best first, one per query statement

    @property
    def best(self) -> Pair:
        return self.pairs[0]


class Collection:
    """Statement vectors of many documents in one FAISS index, with the statement → doc map."""

    def __init__(self, dim: int, generation: int = 0) -> None:
        self.index = VectorIndex(dim, generation)
        self.owner: dict[int, int] = {}
        self.statements_of: dict[int, list[int]] = {}
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # docs, bounds, statements

    @property
    def dim(self) -> int:
        return self.index.dim

    @property
    def generation(self) -> int:
        return self.index.generation

    @generation.setter
    def generation(self, value: int) -> None:
        self.index.generation = value

    def __len__(self) -> int:
        """Number of documents held."""
        return len(self.statements_of)

    def upsert(self, doc_id: int, statement_ids: Sequence[int], vectors: np.ndarray) -> None:
        """Replace every statement of `doc_id` with these."""
        self.delete(doc_id)
        if not statement_ids:
            return
        self._table = None
        self.index.upsert(statement_ids, vectors)
        self.statements_of[doc_id] = list(statement_ids)
        self.owner.update(dict.fromkeys(statement_ids, doc_id))

    def delete(self, doc_id: int) -> None:
        """Forget `doc_id` and its statements."""
        old = self.statements_of.pop(doc_id, [])
        if not old:
            return
        self._table = None
        self.index.delete(old)
        for sid in old:
            self.owner.pop(sid, None)

    def search(
        self,
        query_vectors: np.ndarray,
        k: int,
        allowed: Iterable[int] | None = None,
        per_statement: int = 64,
    ) -> list[Hit]:
        """Documents best answering the query statements, best first (at most `k`)."""
        if len(self) == 0 or query_vectors.shape[0] == 0 or k <= 0:
            return []
        depth = min(max(per_statement, 4 * k), len(self.index))
        if allowed is None:
            found = self.index.search(query_vectors, depth)
        else:
            found = self._search_docs(query_vectors, depth, allowed)
        best: dict[int, dict[int, Pair]] = {}
        for qi, row in enumerate(found):
            for sid, sim in row:
                doc = self.owner.get(sid)
                if doc is None:
                    continue
                pairs = best.setdefault(doc, {})
                if qi not in pairs or pairs[qi].similarity < sim:
                    pairs[qi] = Pair(qi, sid, sim)
        hits = []
        for doc, pairs in best.items():
            ordered = sorted(pairs.values(), key=lambda p: -p.similarity)
            support = sum(max(0.0, p.similarity - SUPPORT_FLOOR) for p in ordered[1:])
            hits.append(Hit(doc, ordered[0].similarity + SUPPORT_WEIGHT * support, ordered))
        hits.sort(key=lambda h: (-h.score, h.doc_id))
        return hits[:k]

    def neighbours(self, query_vectors: np.ndarray, depth: int,
                   allowed: Iterable[int] | None = None) -> set[int]:
        """Documents owning the `depth` statements nearest to each query vector (among `allowed`
        ones): the hybrid ranker's dense candidates."""
        if len(self) == 0 or query_vectors.shape[0] == 0 or depth <= 0:
            return set()
        depth = min(depth, len(self.index))
        rows = (self.index.search(query_vectors, depth) if allowed is None
                else self._search_docs(query_vectors, depth, allowed))
        return {doc for row in rows for sid, _ in row if (doc := self.owner.get(sid)) is not None}

    def _search_docs(self, query_vectors: np.ndarray, depth: int,
                     allowed: Iterable[int]) -> list[list[tuple[int, float]]]:
        """The `depth` best statements of the allowed documents for each query statement.

        When most documents are allowed, a deeper unfiltered search is filtered here by owner (no
        array of every allowed statement to build); queries it leaves short, and smaller filters,
        go to the index with the allowed documents' statement ids.
        """
        docs = allowed if isinstance(allowed, (set, frozenset)) else set(
            allowed.tolist() if isinstance(allowed, np.ndarray) else allowed)
        found: list[list[tuple[int, float]]] = [[] for _ in range(query_vectors.shape[0])]
        todo = list(range(query_vectors.shape[0]))
        share = len(docs) / len(self)
        if share >= POSTFILTER_SHARE:
            deeper = min(len(self.index), math.ceil(depth / share * POSTFILTER_MARGIN))
            rows = self.index.search(query_vectors, deeper)
            found = [[(sid, sim) for sid, sim in row if self.owner.get(sid) in docs][:depth] for row in rows]
            todo = [qi for qi, row in enumerate(found) if len(row) < depth and deeper < len(self.index)]
        if todo:
            allowed_ids = self.statements_of_docs(docs)
            if len(allowed_ids):
                for qi, row in zip(todo, self.index.search(query_vectors[todo], depth, allowed=allowed_ids),
                                   strict=True):
                    found[qi] = row
        return found

    def statements_of_docs(self, docs: Iterable[int] | np.ndarray) -> np.ndarray:
        """The statement ids of `docs` (unknown documents have none), with numpy for large sets."""
        wanted = docs.astype(np.int64, copy=False).ravel() if isinstance(docs, np.ndarray) else docs
        count = len(wanted) if isinstance(wanted, (np.ndarray, set, frozenset, list, tuple)) else None
        if count is not None and count * TABLE_SHARE < len(self) and self._table is None:
            held = (self.statements_of.get(int(doc), ()) for doc in wanted)
            return np.fromiter(chain.from_iterable(held), dtype=np.int64)
        if not isinstance(wanted, np.ndarray):
            wanted = np.fromiter(wanted, dtype=np.int64)
        table_docs, bounds, statements = self._doc_table()
        if not len(table_docs) or not len(wanted):
            return np.zeros(0, dtype=np.int64)
        wanted = sorted_unique(wanted)
        pos = np.minimum(np.searchsorted(table_docs, wanted), len(table_docs) - 1)
        pos = pos[table_docs[pos] == wanted]
        starts, ends = bounds[pos], bounds[pos + 1]
        counts = ends - starts
        offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts)
        return statements[np.arange(int(counts.sum())) + offsets]

    def _doc_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Documents sorted, the bounds of each one's statements, and the statements (rebuilt after a
        write, when a filter needs it)."""
        if self._table is None:
            docs = np.fromiter(self.statements_of, dtype=np.int64, count=len(self.statements_of))
            counts = np.fromiter(map(len, self.statements_of.values()), dtype=np.int64, count=len(docs))
            statements = np.fromiter(chain.from_iterable(self.statements_of.values()), dtype=np.int64,
                                     count=int(counts.sum()))
            order = np.argsort(docs, kind="stable")
            starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[order]
            counts = counts[order]
            gather = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
            self._table = (docs[order], np.concatenate(([0], np.cumsum(counts))), statements[gather])
        return self._table

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index file and its statement → document map."""
        self.index.save(path)
        ids = np.fromiter(self.owner.keys(), dtype=np.int64, count=len(self.owner))
        docs = np.fromiter(self.owner.values(), dtype=np.int64, count=len(self.owner))
        owners = Path(str(path) + ".owners.npy")
        tmp = owners.with_suffix(".tmp.npy")
        np.save(tmp, np.stack([ids, docs]) if len(ids) else np.zeros((2, 0), dtype=np.int64))
        os.replace(tmp, owners)

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> Collection:
        """Read a collection saved by `save`; IndexFileError when it cannot be trusted."""
        index = VectorIndex.load(path, dim)
        try:
            pairs = np.load(str(path) + ".owners.npy")
        except (OSError, ValueError) as exc:
            raise IndexFileError(f"cannot read the owners of {path}: {exc}") from exc
        if pairs.shape != (2, len(index)) or set(pairs[0].tolist()) != index.ids():
            raise IndexFileError(f"the owners of {path} do not match its vectors")
        collection = cls(dim, index.generation)
        collection.index = index
        for sid, doc in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
            collection.owner[sid] = doc
            collection.statements_of.setdefault(doc, []).append(sid)
        return collection
