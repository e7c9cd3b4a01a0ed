"""The engine's small API: a Collection of documents' statements, searched with statements.

A document is a resident's declaration or a need; it owns statements (sentences, clauses), each
with a stored vector. Searching with a query's statements returns documents ranked by their best
statement pairs, with the pairs kept so a person can be told why.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from matcher.index import IndexFileError, VectorIndex

# A document scores on its best statement pair, plus a little for each further query statement
# it also answers well: someone who sews *and* teaches beats someone who only sews for a
# "teach sewing" need, but five weak pairs never outweigh one strong one.
SUPPORT_WEIGHT = 0.15
SUPPORT_FLOOR = 0.35


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
        self.index.upsert(statement_ids, vectors)
        self.statements_of[doc_id] = list(statement_ids)
        self.owner.update(dict.fromkeys(statement_ids, doc_id))

    def delete(self, doc_id: int) -> None:
        """Forget `doc_id` and its statements."""
        old = self.statements_of.pop(doc_id, [])
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
        allowed_set = set(allowed) if allowed is not None else None
        if len(self) == 0 or query_vectors.shape[0] == 0 or k <= 0:
            return []
        allowed_ids = None
        if allowed_set is not None:
            # The filter goes into FAISS (an id selector over the allowed documents' statements)
            # rather than a full scan post-filtered here.
            allowed_ids = np.fromiter((sid for doc in allowed_set for sid in self.statements_of.get(doc, ())),
                                      dtype=np.int64)
            if not len(allowed_ids):
                return []
        depth = min(max(per_statement, 4 * k), len(self.index))
        best: dict[int, dict[int, Pair]] = {}
        for qi, row in enumerate(self.index.search(query_vectors, depth, allowed=allowed_ids)):
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
