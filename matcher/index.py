"""A FAISS vector index with stable ids (the database's statement ids) and a generation stamp.

The database is the truth: this index only mirrors the statement vectors stored there, so it can
always be thrown away and rebuilt. `generation` records the last database change it reflects.

Two kinds, chosen by size
-------------------------
* ``flat`` (exact): ``IndexIDMap(IndexFlatIP)``, used up to `EXACT_LIMIT` live vectors.
* ``hnsw`` (approximate): ``IndexIDMap(IndexHNSWFlat)`` with ``METRIC_INNER_PRODUCT``, above it.

An upsert that takes the index over `exact_limit` rebuilds it as HNSW (one batched build, every
core); deletes that take it under ``EXACT_RETURN * exact_limit`` rebuild it as flat (hysteresis:
an index hovering around the limit is not rebuilt at every write).

Both kinds delete softly, because HNSW cannot remove a vector from its graph: the label of a
deleted or replaced vector is overwritten with `TOMBSTONE` (negative; database ids are not) in
the id map, and while there are tombstones every search carries an ``IDSelectorRange(0, …)`` so
FAISS skips them as it walks the graph (HNSW also widens ``efSearch`` by total/live to make up for
them). The vectors
themselves stay in the index's own flat storage (``IndexFlat`` or ``IndexHNSWFlat.storage``), so
nothing is kept twice: when tombstones pass `TOMBSTONE_LIMIT` of the stored vectors, the live
ones are read back from that storage and the index is rebuilt without them (`compact`), as the
kind its size calls for. Searches asking for a large share of the index (the engine asks for
everything when it filters by document) are answered exactly from the same storage.

Files: one FAISS file (the id map travels inside, tombstones included) and a JSON stamp beside it
(format, kind, dim, generation, live count, stored total). `load` refuses any disagreement, and
reads the older exact-only files (``IndexIDMap2``, no kind in the stamp) as flat indexes.

Measured choices (``scripts/bench_index.py --json``, 2 cores shared with other jobs, so latencies
are noisy upwards; data: 300 gaussian clusters of Dirichlet sizes under 24 topics and a common
direction, anisotropic noise, dim 512, L2-normalised; 1,000 held-out queries; single-query k=10
latency through `search`; recall@10 against exact search, mean and worst query)::

    vectors  kind  build    p50 / p95 ms   recall@10 (worst)  recall@64  FAISS bytes  id map
     30,000  flat    0.1 s   2.4 /  3.5    1                             62 MB        3.0 MB
     30,000  hnsw   12.9 s   0.48 / 0.62   1      (1)         0.9999     70 MB        3.0 MB
     60,000  flat    0.2 s   5.6 /  6.3 .. 9.7 / 17.9 (load)              123 MB       6.0 MB
     60,000  hnsw   25-40 s  0.56 / 3.1    1      (1)         0.9998     140 MB       6.0 MB
    200,000  flat    0.4 s    31 /  39 .. 49 / 61 (load)                 411 MB      21.7 MB
    200,000  hnsw  102-195 s 0.89 / 5.1    0.9999 (0.9)       0.9998     466 MB      21.7 MB

With 15 % of the vectors deleted (tombstones, not yet compacted): recall@10 1.0 at 60k and 200k,
p50 0.68 / 1.08 ms; compacting then took 21-28 s (60k) and 74-142 s (200k). A rebuild holds the old
and the new index at once (plus one 16k-vector chunk). The id map is a Python dict (~110 bytes
per id).

efSearch at 200k (recall@10 / worst query / share of queries whose true best match is missed): 64:
0.9933 / 0 / 0.3 %; 96: 0.9978 / 0 / 0.1 %; 128: 0.9997 / 0.9 / 0; 256: 0.9999 / 0.9 / 0; 512:
0.9999 / 0.9 / 0 (p50 0.50, 0.59, 0.65, 0.89, 1.43 ms). With isotropic noise (harder) at 60k:
0.9931, 0.9978, 0.9993, 1.0, 1.0 (at 200k: 0.990 at 96, 0.9966 at 128, 0.9998 at 256). HNSW's
failures on clustered data are not spread thin: now and then a query from a small, isolated cluster
misses its whole top 10 (the greedy descent never enters the cluster). Over 3,000 queries at 200k
that happened to 5 queries at efSearch 128, 2 at 256, 0 at 512; M=48 did not help (4, 2, 1), nor
did an unbounded queue or a wider upper-layer beam; efConstruction 100 made it more frequent (at
60k already). Hence M=32, efConstruction=200 (twice the build time of 100) and efSearch=256:
recall@10 >= 0.999 at both sizes, the rare total miss halved, for 0.24 ms more than 128 at 200k.
Raise `HNSWParams.ef_search` (512: +0.5 ms) if rare skills must never be missed.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

FLAT = "flat"
HNSW = "hnsw"
KINDS = (FLAT, HNSW)
FORMAT = 2

# Exact search up to this many live vectors: a single-query scan at dim 512 takes ~0.1 ms per 1,000
# vectors on one core (p50 0.9 ms at 10k, 2.9 ms at 30k, 5.6-8.3 ms at 50-60k), HNSW under 1 ms.
EXACT_LIMIT = 30_000
# Back to exact search only well under the limit (hysteresis).
EXACT_RETURN = 0.5
# Compact when tombstones are more than this share of the stored vectors.
TOMBSTONE_LIMIT = 0.2
# Label of a deleted vector in the id map; any negative label is a tombstone.
TOMBSTONE = -2
# An HNSW search asking for more than this, or for more than 1/EXACT_SHARE of the live vectors,
# is answered by an exact scan of the stored vectors instead (faster and exact at that depth).
EXACT_K = 1024
EXACT_SHARE = 8
_CHUNK = 16_384  # vectors copied at a time when rebuilding


@dataclass(frozen=True)
class HNSWParams:
    """HNSW graph parameters (see the measurements above)."""

    m: int = 32  # links per node (2*m on the bottom layer)
    ef_construction: int = 200  # 100 left some clustered queries unreachable (recall 0 for them)
    ef_search: int = 256  # raised to k when k is larger, and by total/live under tombstones


HNSW_PARAMS = HNSWParams()

_LIVE = faiss.IDSelectorRange(0, np.iinfo(np.int64).max)  # every label but tombstones


class IndexFileError(RuntimeError):
    """The index file is missing, truncated or made for another model: rebuild it."""


class VectorIndex:
    """Inner-product (cosine on normalised vectors) search over id-labelled vectors."""

    def __init__(self, dim: int, generation: int = 0, *, exact_limit: int = EXACT_LIMIT,
                 hnsw: HNSWParams = HNSW_PARAMS) -> None:
        self.dim = dim
        self.generation = generation
        self.exact_limit = exact_limit
        self.hnsw = hnsw
        self._kind = FLAT
        self._index: Any = self._new_index(FLAT)
        self._pos: dict[int, int] = {}  # live id -> its row in the FAISS index

    # ------------------------------------------------------------------ state

    @property
    def kind(self) -> str:
        """``"flat"`` (exact) or ``"hnsw"`` (approximate)."""
        return self._kind

    @property
    def tombstones(self) -> int:
        """Deleted or replaced vectors still stored (until the next compaction)."""
        return int(self._index.ntotal) - len(self._pos)

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, item_id: int) -> bool:
        return item_id in self._pos

    def ids(self) -> set[int]:
        """Every id held."""
        return set(self._pos)

    def stats(self) -> dict[str, object]:
        """Kind, counts and approximate memory of the FAISS structures, for logs and benchmarks."""
        total = int(self._index.ntotal)
        nbytes = total * (self.dim * 4 + 8)  # vectors and id map
        if self._kind == HNSW:
            graph = self._inner().hnsw
            nbytes += graph.neighbors.size() * 4 + graph.levels.size() * 4 + graph.offsets.size() * 8
        return {"kind": self._kind, "count": len(self), "tombstones": total - len(self),
                "index_bytes": nbytes}

    # ------------------------------------------------------------------ writes

    def upsert(self, ids: Iterable[int], vectors: np.ndarray) -> None:
        """Add vectors under `ids`, replacing any vector already held under the same id."""
        id_array = np.asarray(list(ids), dtype=np.int64)
        if id_array.size == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(id_array), self.dim)
        if id_array.min() < 0:
            raise ValueError("ids must not be negative")
        if len(np.unique(id_array)) != len(id_array):  # the last vector given for an id wins
            _, last = np.unique(id_array[::-1], return_index=True)
            keep = np.sort(len(id_array) - 1 - last)
            id_array, vectors = id_array[keep], vectors[keep]
        self._kill(id_array.tolist())
        live = len(self._pos) + len(id_array)
        if self._kind == FLAT and live > self.exact_limit:
            self._rebuild(HNSW, id_array, vectors)
            return
        start = int(self._index.ntotal)
        self._index.add_with_ids(vectors, id_array)
        self._pos.update(zip(id_array.tolist(), range(start, start + len(id_array)), strict=True))
        self._maintain()

    def delete(self, ids: Iterable[int]) -> int:
        """Remove `ids`; return how many were held."""
        removed = self._kill(ids)
        if removed:
            self._maintain()
        return removed

    def compact(self) -> None:
        """Drop the tombstones now, rebuilding as the kind the live count calls for."""
        self._rebuild(self._wanted_kind())

    # ------------------------------------------------------------------ search

    def search(self, queries: np.ndarray, k: int,
               allowed: Iterable[int] | np.ndarray | None = None) -> list[list[tuple[int, float]]]:
        """For each query vector, up to `k` (id, cosine) pairs, best first.

        Every query gets min(k, len(self)) pairs, as with exact search: an HNSW query that finds
        fewer (a corner of the graph cut off by tombstones) is answered by an exact scan.

        `allowed` restricts the search to those ids inside FAISS (an ``IDSelectorBatch``), so a
        filter never costs a scan of everything followed by post-filtering: a small allowed share
        is scanned exactly from its own rows, a large one walks the graph with the selector.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if len(self) == 0 or queries.shape[0] == 0 or k <= 0:
            return [[] for _ in range(queries.shape[0])]
        if allowed is not None:
            return self._search_allowed(queries, k, allowed)
        k = min(k, len(self))
        with _threads(1 if queries.shape[0] == 1 else None):
            if self._kind == HNSW and (k > EXACT_K or k * EXACT_SHARE > len(self)):
                scores, labels = self._exact(queries, k)
            elif self._kind == HNSW:
                scores, labels = self._hnsw_search(queries, k)
            else:
                params = faiss.SearchParameters()
                params.sel = _LIVE if self.tombstones else None
                scores, labels = self._index.search(queries, k, params=params)
        return _pairs(scores, labels)

    def _search_allowed(self, queries: np.ndarray, k: int,
                        allowed: Iterable[int] | np.ndarray) -> list[list[tuple[int, float]]]:
        ids = np.unique(np.asarray(allowed if isinstance(allowed, np.ndarray) else list(allowed),
                                   dtype=np.int64))
        ids = ids[[int(i) in self._pos for i in ids]] if len(ids) else ids
        if not len(ids):
            return [[] for _ in range(queries.shape[0])]
        k = min(k, len(ids))
        with _threads(1 if queries.shape[0] == 1 else None):
            if len(ids) * EXACT_SHARE <= len(self) or (self._kind == HNSW and k > EXACT_K):
                scores, labels = self._exact_rows(queries, ids, k)
            else:
                selector = faiss.IDSelectorBatch(len(ids), faiss.swig_ptr(ids))
                if self._kind == HNSW:
                    params: Any = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
                    params.efSearch = max(self.hnsw.ef_search, k) * max(1, len(self) // len(ids))
                else:
                    params = faiss.SearchParameters()
                params.sel = selector
                scores, labels = self._index.search(queries, k, params=params)
                short = np.flatnonzero((labels < 0).any(axis=1))
                if short.size:
                    scores[short], labels[short] = self._exact_rows(queries[short], ids, k)
        return _pairs(scores, labels)

    def _exact_rows(self, queries: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over the stored vectors of `ids` only (all held)."""
        rows = np.fromiter((self._pos[int(i)] for i in ids), dtype=np.int64, count=len(ids))
        sims = queries @ self._stored()[rows].T
        top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(sims, top, axis=1), ids[top]

    def _hnsw_search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        ef = max(self.hnsw.ef_search, k)
        if self.tombstones:  # walk past the tombstones: about total/live more candidates
            ef = math.ceil(ef * int(self._index.ntotal) / len(self))
        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]  # missing from faiss's stubs
        params.efSearch = ef
        params.sel = _LIVE if self.tombstones else None
        scores, labels = self._index.search(queries, k, params=params)
        short = np.flatnonzero((labels < 0).any(axis=1))
        if short.size:
            scores[short], labels[short] = self._exact(queries[short], k)
        return scores, labels

    def _exact(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over the stored vectors (HNSW keeps them in a flat storage)."""
        storage: Any = faiss.downcast_index(self._inner().storage)
        depth = min(k + self.tombstones, int(self._index.ntotal))  # at most that many dead ahead
        scores, rows = storage.search(queries, depth)
        labels = np.where(rows >= 0, self._labels()[np.maximum(rows, 0)], -1)
        order = np.argsort(labels < 0, axis=1, kind="stable")[:, :k]  # live first, best first
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(labels, order, axis=1)

    # ------------------------------------------------------------------ files

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
        meta = {"format": FORMAT, "kind": self._kind, "dim": self.dim, "generation": self.generation,
                "count": len(self), "total": int(self._index.ntotal)}
        if self._kind == HNSW:
            meta["hnsw"] = {"m": self.hnsw.m, "ef_construction": self.hnsw.ef_construction}
        _atomic_write_text(_meta_path(path), json.dumps(meta))

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int, *, exact_limit: int = EXACT_LIMIT,
             hnsw: HNSWParams = HNSW_PARAMS) -> VectorIndex:
        """Read an index saved by `save`; raise IndexFileError if it cannot be trusted.

        The kind is kept as saved; the size policy applies again at the next write.
        """
        path = Path(path)
        try:
            meta = json.loads(_meta_path(path).read_text())
            raw = faiss.read_index(str(path))
        except (OSError, ValueError, RuntimeError) as exc:
            raise IndexFileError(f"cannot read {path}: {exc}") from exc
        if not isinstance(meta, dict):
            raise IndexFileError(f"{path} has no valid stamp")
        legacy = "format" not in meta  # the exact-only files written before the two kinds
        kind = meta.get("kind", FLAT)
        total = meta.get("count") if legacy else meta.get("total")
        if raw.d != dim or meta.get("dim") != dim or raw.ntotal != total:
            raise IndexFileError(f"{path} does not match its stamp or the model (dim {dim})")
        if not isinstance(raw, faiss.IndexIDMap) or (legacy and not isinstance(raw, faiss.IndexIDMap2)):
            raise IndexFileError(f"{path} is not an id-mapped index")
        inner = faiss.downcast_index(raw.index)
        expected = faiss.IndexHNSWFlat if kind == HNSW else faiss.IndexFlat
        if (kind not in KINDS or meta.get("format", FORMAT) != FORMAT or not isinstance(inner, expected)
                or inner.metric_type != faiss.METRIC_INNER_PRODUCT):
            raise IndexFileError(f"{path} is not the {kind} inner-product index its stamp says")
        labels = faiss.vector_to_array(raw.id_map)
        rows = np.flatnonzero(labels >= 0)
        live = labels[rows]
        if len(live) != meta.get("count") or len(np.unique(live)) != len(live):
            raise IndexFileError(f"{path} does not hold the {meta.get('count')} distinct ids of its stamp")
        if isinstance(meta.get("generation"), bool) or not isinstance(meta.get("generation"), int):
            raise IndexFileError(f"{path} has no generation stamp")
        index = cls(dim, generation=meta["generation"], exact_limit=exact_limit, hnsw=hnsw)
        index._kind, index._index = kind, raw
        index._pos = dict(zip(live.tolist(), rows.tolist(), strict=True))
        if legacy:  # an IndexIDMap2: re-store it as the plain id map the tombstones rely on
            index._rebuild(FLAT)
        return index

    # ------------------------------------------------------------------ internals

    def _new_index(self, kind: str) -> Any:
        inner: Any
        if kind == HNSW:
            inner = faiss.IndexHNSWFlat(self.dim, self.hnsw.m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.hnsw.ef_construction
            inner.hnsw.efSearch = self.hnsw.ef_search
        else:
            inner = faiss.IndexFlatIP(self.dim)
        return faiss.IndexIDMap(inner)

    def _inner(self) -> Any:
        return faiss.downcast_index(self._index.index)

    def _labels(self) -> np.ndarray:
        """A writable view of the id map (valid until the next add)."""
        return faiss.rev_swig_ptr(self._index.id_map.data(), int(self._index.ntotal))

    def _stored(self) -> np.ndarray:
        """A view of every stored vector, tombstones included (valid until the next add)."""
        inner = self._inner()
        flat: Any = faiss.downcast_index(inner.storage) if self._kind == HNSW else inner
        total = int(self._index.ntotal)
        return faiss.rev_swig_ptr(flat.get_xb(), total * self.dim).reshape(total, self.dim)

    def _kill(self, ids: Iterable[int]) -> int:
        rows = [row for row in (self._pos.pop(int(i), None) for i in ids) if row is not None]
        if rows:
            self._labels()[np.asarray(rows, dtype=np.int64)] = TOMBSTONE
        return len(rows)

    def _wanted_kind(self) -> str:
        if len(self) > self.exact_limit:
            return HNSW
        if len(self) < self.exact_limit * EXACT_RETURN:
            return FLAT
        return self._kind

    def _maintain(self) -> None:
        """Switch kind, or compact, when the last write calls for it."""
        wanted = self._wanted_kind()
        if wanted != self._kind or self.tombstones > TOMBSTONE_LIMIT * int(self._index.ntotal):
            self._rebuild(wanted)

    def _rebuild(self, kind: str, extra_ids: np.ndarray | None = None,
                 extra_vectors: np.ndarray | None = None) -> None:
        """A fresh index of `kind` with the live vectors (in their stored order), then `extra_*`.

        The old index serves until the new one is complete; the live vectors are copied across
        in chunks, so the peak is both indexes plus one chunk.
        """
        rows = np.fromiter(sorted(self._pos.values()), dtype=np.int64, count=len(self._pos))
        labels, stored = self._labels(), self._stored()
        index = self._new_index(kind)
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start:start + _CHUNK]
            index.add_with_ids(stored[chunk], labels[chunk])  # fancy indexing copies the chunk
        ids = labels[rows].tolist()
        if extra_ids is not None and extra_vectors is not None and len(extra_ids):
            index.add_with_ids(extra_vectors, extra_ids)
            ids += extra_ids.tolist()
        self._kind, self._index = kind, index
        self._pos = dict(zip(ids, range(len(ids)), strict=True))


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """Run FAISS on `count` OpenMP threads in this thread (the setting is per calling thread).

    A single query has nothing to share out, and waking a team for it costs more than the scan
    when the cores are busy (measured: 0.9 ms on one thread, 20 ms on two, 10,000 vectors).
    """
    if count is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _pairs(scores: np.ndarray, labels: np.ndarray) -> list[list[tuple[int, float]]]:
    return [
        [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i >= 0]
        for row_ids, row_scores in zip(labels, scores, strict=True)
    ]


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
