"""The engine's small API: a Collection of documents' statements, searched with statements.

A document is a resident's declaration or a need; it owns statements (sentences, clauses), each
with a stored vector. Searching with a query's statements returns documents ranked by their best
statement pairs, with the pairs kept so a person can be told why.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np

from matcher.index import (
    POSTFILTER_MARGIN,
    POSTFILTER_SHARE,
    IndexFileError,
    VectorIndex,
    atomic_write_bytes,
    digest_of,
)
from matcher.rowmap import lookup, overlay, sorted_unique

# A document scores on its best statement pair, plus a little for each further query statement
# it also answers well: someone who sews *and* teaches beats someone who only sews for a
# "teach sewing" need, but five weak pairs never outweigh one strong one.
SUPPORT_WEIGHT = 0.15
SUPPORT_FLOOR = 0.35
# A filter over fewer than 1/TABLE_SHARE of the documents gathers their statements one document at
# a time (~1 µs each) rather than rebuilding the document table after a write (~30 ms at 100,000
# documents and 470,000 statements).
TABLE_SHARE = 16
# Documents written since the last compaction of a collection's map, at most (see Collection).
RECENT_SHARE = 16
RECENT_MIN = 2_048
_NONE = np.zeros(0, np.int64)


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
    """Statement vectors of many documents in one FAISS index, with the statement → doc map.

    The map is numpy arrays (the documents written since the last compaction excepted, in two
    small dicts): at 100,000 residents and 453,000 statements, two dicts of Python ints (statement
    -> document, document -> statements) took 74 MB per process; the arrays take 11 MB. A
    compaction (one sort, ~0.1 s at that size) folds the recent documents in once they pass
    1/RECENT_SHARE of the documents, and before the table is read whole (large filters, save).
    """

    def __init__(self, dim: int, generation: int = 0) -> None:
        self.index = VectorIndex(dim, generation)
        # Compacted: documents sorted, the bounds of each one's statements, the statements; and the
        # statements sorted with their documents (owner look-ups).
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray] = (_NONE, np.zeros(1, np.int64), _NONE)
        self._by_statement: tuple[np.ndarray, np.ndarray] = (_NONE, _NONE)
        self._gone: set[int] = set()  # documents of the table deleted or rewritten since
        self._recent: dict[int, list[int]] = {}  # documents written since: their statements
        self._recent_owner: dict[int, int] = {}  # and those statements' document
        self._count = 0

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
        return self._count

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, int) and bool(self.statements(doc_id))

    def statements(self, doc_id: int) -> list[int]:
        """The statement ids of `doc_id` ([] if unknown)."""
        if doc_id in self._recent:
            return self._recent[doc_id]
        if doc_id in self._gone:
            return []
        docs, bounds, statements = self._table
        at = int(np.searchsorted(docs, doc_id))
        if at < len(docs) and docs[at] == doc_id:
            return statements[bounds[at]:bounds[at + 1]].tolist()
        return []

    def owners(self, statement_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The document of each statement id (-1 for a statement not held)."""
        wanted = np.asarray(statement_ids, np.int64).ravel()
        out = lookup(*self._by_statement, wanted)
        if self._gone:  # a statement of a document rewritten since belongs to it no more
            out[np.isin(out, np.fromiter(self._gone, np.int64, len(self._gone)))] = -1
        return overlay(out, wanted, self._recent_owner)

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (statement id, document) held, by statement id."""
        self._compact()
        return self._by_statement

    def upsert(self, doc_id: int, statement_ids: Sequence[int], vectors: np.ndarray) -> None:
        """Replace every statement of `doc_id` with these."""
        self.delete(doc_id)
        if not len(statement_ids):
            return
        self.index.upsert(statement_ids, vectors)
        held = [int(sid) for sid in statement_ids]
        self._recent[doc_id] = held
        self._recent_owner.update(dict.fromkeys(held, doc_id))
        self._count += 1
        if len(self._recent) > max(RECENT_MIN, self._count // RECENT_SHARE):
            self._compact()

    def delete(self, doc_id: int, scrub: bool = False) -> None:
        """Forget `doc_id` and its statements (with `scrub`, their vectors leave the index's
        storage now: VectorIndex.delete)."""
        old = self.statements(doc_id)
        if not old:
            return
        self.index.delete(old, scrub=scrub)
        if self._recent.pop(doc_id, None) is not None:
            for sid in old:
                if self._recent_owner.get(sid) == doc_id:
                    del self._recent_owner[sid]
        else:
            self._gone.add(doc_id)
        self._count -= 1

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
            for (sid, sim), doc in zip(row, self.owners([sid for sid, _ in row]).tolist(), strict=True):
                if doc < 0:
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

    def neighbours(self, query_vectors: np.ndarray, depth: int, allowed: Iterable[int] | None = None,
                   ef_search: int | None = None) -> set[int]:
        """Documents owning the `depth` statements nearest to each query vector (among `allowed`
        ones): the hybrid ranker's dense candidates (`ef_search`: see VectorIndex.search)."""
        if len(self) == 0 or query_vectors.shape[0] == 0 or depth <= 0:
            return set()
        depth = min(depth, len(self.index))
        rows = (self.index.search(query_vectors, depth, ef_search=ef_search) if allowed is None
                else self._search_docs(query_vectors, depth, allowed, ef_search))
        docs = self.owners([sid for row in rows for sid, _ in row])
        return set(docs[docs >= 0].tolist())

    def _search_docs(self, query_vectors: np.ndarray, depth: int, allowed: Iterable[int],
                     ef_search: int | None = None) -> list[list[tuple[int, float]]]:
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
            rows = self.index.search(query_vectors, deeper, ef_search=ef_search)
            owners = [self.owners([sid for sid, _ in row]).tolist() for row in rows]
            found = [[pair for pair, doc in zip(row, of, strict=True) if doc in docs][:depth]
                     for row, of in zip(rows, owners, strict=True)]
            todo = [qi for qi, row in enumerate(found) if len(row) < depth and deeper < len(self.index)]
        if todo:
            allowed_ids = self.statements_of_docs(docs)
            if len(allowed_ids):
                rows = self.index.search(query_vectors[todo], depth, allowed=allowed_ids, ef_search=ef_search)
                for qi, row in zip(todo, rows, strict=True):
                    found[qi] = row
        return found

    def statements_of_docs(self, docs: Iterable[int] | np.ndarray) -> np.ndarray:
        """The statement ids of `docs` (unknown documents have none), with numpy for large sets."""
        wanted = docs.astype(np.int64, copy=False).ravel() if isinstance(docs, np.ndarray) else docs
        count = len(wanted) if isinstance(wanted, (np.ndarray, set, frozenset, list, tuple)) else None
        if count is not None and count * TABLE_SHARE < len(self) and (self._recent or self._gone):
            held = (self.statements(int(doc)) for doc in wanted)
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
        """Documents sorted, the bounds of each one's statements, and the statements (the recent
        writes folded in first)."""
        self._compact()
        return self._table

    def _compact(self) -> None:
        """Fold the documents written or deleted since into the arrays."""
        if not self._recent and not self._gone:
            return
        docs, bounds, statements = self._table
        counts = np.diff(bounds)
        keep = ~np.isin(docs, np.fromiter(self._gone, np.int64, len(self._gone))) if self._gone else None
        if keep is not None:
            statements = statements[np.repeat(keep, counts)]
            docs, counts = docs[keep], counts[keep]
        recent_docs = np.fromiter(self._recent, np.int64, len(self._recent))
        recent_counts = np.fromiter(map(len, self._recent.values()), np.int64, len(self._recent))
        recent = np.fromiter(chain.from_iterable(self._recent.values()), np.int64, int(recent_counts.sum()))
        owner = np.repeat(np.concatenate([docs, recent_docs]), np.concatenate([counts, recent_counts]))
        self._arrange(np.concatenate([statements, recent]), owner)
        self._gone, self._recent, self._recent_owner = set(), {}, {}

    def _arrange(self, statements: np.ndarray, owner: np.ndarray) -> None:
        """The arrays of these statements and their documents (a document's statements in the
        order given)."""
        order = np.argsort(owner, kind="stable")
        docs = owner[order]
        firsts = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]]) if len(docs) else _NONE
        self._table = (docs[firsts], np.r_[firsts, len(docs)].astype(np.int64), statements[order])
        by_id = np.argsort(statements, kind="stable")
        self._by_statement = (statements[by_id], owner[by_id])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the statement → document map, then the index, whose stamp (written last) carries
        the map's digest: a search must never name the wrong person."""
        ids, docs = self.pairs()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        data = io.BytesIO()
        np.save(data, np.stack([ids, docs]) if len(ids) else np.zeros((2, 0), dtype=np.int64))
        atomic_write_bytes(_owners_path(path), data.getvalue())
        self.index.save(path, stamp={"owners_digest": digest_of(data.getvalue())})

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> Collection:
        """Read a collection saved by `save`; IndexFileError when it cannot be trusted."""
        index = VectorIndex.load(path, dim)
        try:
            blob = _owners_path(path).read_bytes()
            pairs = np.load(io.BytesIO(blob))
        except (OSError, ValueError) as exc:
            raise IndexFileError(f"cannot read the owners of {path}: {exc}") from exc
        if "owners_digest" in index.stamp and digest_of(blob) != index.stamp["owners_digest"]:
            raise IndexFileError(f"the owners of {path} do not match the digest of its stamp")
        if pairs.shape != (2, len(index)) or set(pairs[0].tolist()) != index.ids():
            raise IndexFileError(f"the owners of {path} do not match its vectors")
        collection = cls(dim, index.generation)
        collection.index = index
        sids, docs = pairs.astype(np.int64)
        collection._arrange(sids, docs)
        collection._count = len(collection._table[0])
        return collection


def _owners_path(path: str | os.PathLike[str]) -> Path:
    return Path(str(path) + ".owners.npy")
