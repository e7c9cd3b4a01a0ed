"""A FAISS vector index with stable ids (the database's statement ids) and a generation stamp.

The database is the truth: this index only mirrors the statement vectors stored there, so it can
always be thrown away and rebuilt. `generation` records the last database change it reflects.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import faiss
import numpy as np


class IndexFileError(RuntimeError):
    """The index file is missing, truncated or made for another model: rebuild it."""


class VectorIndex:
    """Inner-product (cosine on normalised vectors) search over id-labelled vectors."""

    def __init__(self, dim: int, generation: int = 0) -> None:
        self.dim = dim
        self.generation = generation
        # Exact search: a neighbourhood's few thousand statements scan in well under a millisecond.
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __contains__(self, item_id: int) -> bool:
        return item_id in self.ids()

    def ids(self) -> set[int]:
        """Every id held."""
        return set(faiss.vector_to_array(self._index.id_map).tolist())

    def upsert(self, ids: Iterable[int], vectors: np.ndarray) -> None:
        """Add vectors under `ids`, replacing any vector already held under the same id."""
        id_array = np.asarray(list(ids), dtype=np.int64)
        if id_array.size == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(id_array), self.dim)
        self._index.remove_ids(id_array)  # type: ignore[arg-type]  # faiss accepts id arrays
        self._index.add_with_ids(vectors, id_array)

    def delete(self, ids: Iterable[int]) -> int:
        """Remove `ids`; return how many were held."""
        id_array = np.asarray(list(ids), dtype=np.int64)
        if id_array.size == 0:
            return 0
        return int(self._index.remove_ids(id_array))  # type: ignore[arg-type]

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """For each query vector, up to `k` (id, cosine) pairs, best first."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if len(self) == 0 or queries.shape[0] == 0 or k <= 0:
            return [[] for _ in range(queries.shape[0])]
        scores, labels = self._index.search(queries, min(k, len(self)))
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i != -1]
            for row_ids, row_scores in zip(labels, scores, strict=True)
        ]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index and its stamp atomically (readers never see half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.close(fd)
        try:
            faiss.write_index(self._index, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        meta = {"dim": self.dim, "generation": self.generation, "count": len(self)}
        _atomic_write_text(_meta_path(path), json.dumps(meta))

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int) -> VectorIndex:
        """Read an index saved by `save`; raise IndexFileError if it cannot be trusted."""
        path = Path(path)
        try:
            meta = json.loads(_meta_path(path).read_text())
            raw = faiss.read_index(str(path))
        except (OSError, ValueError, RuntimeError) as exc:
            raise IndexFileError(f"cannot read {path}: {exc}") from exc
        if raw.d != dim or meta.get("dim") != dim or raw.ntotal != meta.get("count"):
            raise IndexFileError(f"{path} does not match its stamp or the model (dim {dim})")
        if not isinstance(raw, faiss.IndexIDMap2):
            raise IndexFileError(f"{path} is not an id-mapped index")
        index = cls(dim, generation=int(meta["generation"]))
        index._index = raw
        return index


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
