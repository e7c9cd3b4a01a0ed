"""A FAISS vector index with stable ids (the database's statement ids) and a generation stamp.

The database is the truth: this index only mirrors the statement vectors stored there, so it can
always be thrown away and rebuilt. `generation` records the last database change it reflects.

One stored vector per distinct vector
-------------------------------------
People write the same sentence word for word ("Je parle français", "je fais le ménage"): at 10,000
generated residents 36 % of the statements were exact copies (28,732 distinct vectors among
45,203). Stored once per id, identical vectors filled each other's HNSW neighbour lists and formed
cliques the greedy search could not enter: recall@10 0.935 over all statements (worst query 0),
0.999 over the distinct vectors alone. So FAISS holds each distinct vector once (a 64-bit blake2b
hash of its float16 bytes finds it, the bytes are compared), labelled by its row; a `RowMap`
(matcher.rowmap: sorted numpy arrays) gives the ids holding a row (sorted) and the row of an id.
A search asks FAISS for min(k, live vectors) rows (each row has at least one id, so that always
gives min(k, ids) answers), and answers every id of each row with the row's cosine, ties ordered
by id. Upserting an id onto a vector already held only adds the id; a vector whose last id goes is
a tombstone. The size policy counts distinct vectors.

Two kinds, chosen by size
-------------------------
* ``flat`` (exact): ``IndexIDMap(IndexFlatIP)``, used up to `EXACT_LIMIT` live vectors.
* ``hnsw`` (approximate): ``IndexIDMap(IndexHNSWSQ)`` with ``METRIC_INNER_PRODUCT``, above it,
  its vectors stored in float16 (``QT_fp16``): half the memory of float32 (at 100,000 generated
  residents ~178,000 distinct vectors: the index file went from 519 MB to 232 MB), cosines within
  ~1e-3 of float32. Callers needing exact scores (the hybrid ranker, explanations) read the
  database's float32 vectors or their own tables. The figures below were measured in float32;
  on the statements of 100,000 generated residents (scripts/bench.py, recall judged on the true
  float32 cosines of the ids returned) float16 gave recall@10 0.9985 against 0.9995 in float32,
  p95 3.9 ms against 4.2 ms (a slower machine than the table's).

An upsert that takes the index over `exact_limit` rebuilds it as HNSW (one batched build, every
core); deletes that take it under ``EXACT_RETURN * exact_limit`` rebuild it as flat (hysteresis:
an index hovering around the limit is not rebuilt at every write).

Both kinds delete softly, because HNSW cannot remove a vector from its graph: the label of a
vector no id holds any more is overwritten with `TOMBSTONE` (negative; rows are not) in the id
map, and while there are tombstones every search carries an ``IDSelectorRange(0, …)`` so FAISS
skips them as it walks the graph (HNSW also widens ``efSearch`` by total/live to make up for them).
The vectors themselves stay in the index's own flat storage (``IndexFlat`` or
``IndexHNSWSQ.storage``), so nothing is kept twice: when tombstones pass `TOMBSTONE_LIMIT` of the
stored vectors, the live ones are read back from that storage and the index is rebuilt without them
(`compact`, rows renumbered), as the kind its size calls for. Searches asking for a large share of
the index (the engine asks for everything when it filters by document) are answered exactly from
the same storage.

Filters (`allowed` ids) stay in numpy: the allowed ids are sorted once per search; when they are
at least `POSTFILTER_SHARE` of the ids, an unfiltered search `POSTFILTER_MARGIN` times deeper than
k/share is post-filtered, and only the queries it leaves short go on to the filtered search; that
one finds the allowed ids' rows (a vectorised look-up in the row map), scans them exactly when
they are few, or walks the graph with an ``IDSelectorBatch`` over them.

Files: one FAISS file (labels are rows; tombstones travel inside), the ids with their rows (raw
int64, ``.ids``) and a JSON stamp (format, kind, dim, generation, ids, distinct vectors, stored
total, digest of the ids file), written last. `load` refuses any disagreement, and every file of an
older format: the service rebuilds the index from the stored vectors then.

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
and the new index at once (plus one 16k-vector chunk). The id map was then a Python dict (~110
bytes per id; numpy arrays since, ~42 bytes per id with the hashes, matcher.rowmap).

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
On the statements of 100,000 generated residents (453,003 statements, ~180,000 distinct vectors,
200 need statements as queries, tie-aware recall@10 from ``scripts/bench.py``), efSearch 256 gave
0.974 to 0.9825 from one ingest to the next (worst query 0: a whole top 10 missed); 512 gives 0.9985
(worst 0.9, p95 1.75 -> 2.03 ms) and 768 0.9995 (p95 2.78 ms). Hence efSearch=512.

The figures above were measured with one stored vector per id and no copies. With 36 % exact copies
(``--duplicate-share 0.36``, the measured share; copies follow a 1/rank popularity; 500 queries, a
third of them near the most copied vectors; recall tie-aware: identical vectors tie)::

    vectors  distinct  kind  build   p50 / p95 ms  recall@10 (worst)  top-1 missed  Python maps
     60,000   38,400   hnsw  41.7 s  0.75 / 5.0    1      (1)         0             17 MB
    200,000  128,000   hnsw   156 s  0.97 / 5.5    1      (1)         0             61 MB
    200,000  128,000   flat   2.3 s    52 / 66     1      (1)         0             61 MB
  1,000,000  640,000   hnsw  2,155 s 1.97 / 4.6    0.9963 (0)         0.7 %         283 MB

At 1,000,000 (300 queries; FAISS 1.49 GB, process growth 1.86 GB; load 5-10, the build got about
half a core on average) two queries missed their whole top 10: the rare total miss of clustered
data described below, not the cliques. A cheaper build (efConstruction 100) was not measured.

Before, one vector per id (the 60,000 above, same queries): recall@10 0.902, worst query 0, the true
best answer missed by 9.2 % of the queries. 15 % deleted and not compacted: recall@10 1 at both
sizes. (Load average 4-7 during these runs.)
"""

from __future__ import annotations

import hashlib
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

from matcher.rowmap import DigestMap, RowMap, sorted_unique

FLAT = "flat"
HNSW = "hnsw"
KINDS = (FLAT, HNSW)
FORMAT = 4  # 3: one row per distinct vector, labelled by its row; ids in a file beside it; 4: HNSW in float16

# Exact search up to this many live distinct vectors: a single-query scan at dim 512 takes ~0.1 ms
# per 1,000 vectors on one core (p50 0.9 ms at 10k, 2.9 ms at 30k, 5.6-8.3 ms at 50-60k), HNSW
# under 1 ms.
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
# A filter allowing at least this share of the ids is applied after an unfiltered search
# POSTFILTER_MARGIN times deeper than k / share (no allowed-row set to build, no selector); a query
# left short falls back to the filtered search. At 0.25 the search is at most 8 k deep, which
# stays under EXACT_K for the depths callers ask (<= 256 rows per query unit).
POSTFILTER_SHARE = 0.25
POSTFILTER_MARGIN = 2.0
_CHUNK = 16_384  # vectors copied at a time when rebuilding
_DIGEST_BYTES = 16  # blake2b-128 of the ids file, in the stamp
_KEY_BYTES = 8  # blake2b-64 of a vector's float16 bytes finds its row (the bytes are compared then)


@dataclass(frozen=True)
class HNSWParams:
    """HNSW graph parameters (see the measurements above)."""

    m: int = 32  # links per node (2*m on the bottom layer)
    ef_construction: int = 200  # 100 left some clustered queries unreachable (recall 0 for them)
    ef_search: int = 512  # raised to k when k is larger, and by total/live under tombstones


HNSW_PARAMS = HNSWParams()

_LIVE = faiss.IDSelectorRange(0, np.iinfo(np.int64).max)  # every label but tombstones


class IndexFileError(RuntimeError):
    """The index files are missing, truncated, of an older format or made for another model: rebuild."""


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
        self._map = RowMap()  # live id -> the row of its vector; live row -> its ids, sorted
        self._digests = DigestMap()  # hash of a stored vector's float16 bytes -> its row
        self.stamp: dict[str, Any] = {}  # as last saved or loaded (`save`)
        # float16 as FAISS writes it (its rounding is not always numpy's): the key of a vector.
        self._half: Any = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16,
                                                     faiss.METRIC_INNER_PRODUCT)

    # ------------------------------------------------------------------ state

    @property
    def kind(self) -> str:
        """``"flat"`` (exact) or ``"hnsw"`` (approximate)."""
        return self._kind

    @property
    def vectors(self) -> int:
        """Distinct live vectors (each stored once, whatever the number of ids holding it)."""
        return self._map.live_rows

    @property
    def tombstones(self) -> int:
        """Stored vectors no id holds any more (until the next compaction)."""
        return int(self._index.ntotal) - self._map.live_rows

    def __len__(self) -> int:
        return len(self._map)

    def __contains__(self, item_id: int) -> bool:
        return item_id in self._map

    def ids(self) -> set[int]:
        """Every id held."""
        return set(self._map.table()[0].tolist())

    def stats(self) -> dict[str, object]:
        """Kind, counts and approximate memory of the FAISS structures, for logs and benchmarks."""
        total = int(self._index.ntotal)
        nbytes = total * (self.dim * self._stored().itemsize + 8)  # vectors and labels
        if self._kind == HNSW:
            graph = self._inner().hnsw
            nbytes += graph.neighbors.size() * 4 + graph.levels.size() * 4 + graph.offsets.size() * 8
        return {"kind": self._kind, "count": len(self), "vectors": self.vectors,
                "tombstones": self.tombstones, "index_bytes": nbytes}

    # ------------------------------------------------------------------ writes

    def upsert(self, ids: Iterable[int] | np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under `ids`, replacing any vector already held under the same id."""
        id_array = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids), dtype=np.int64).ravel()
        if id_array.size == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(id_array), self.dim)
        if id_array.min() < 0:
            raise ValueError("ids must not be negative")
        if len(sorted_unique(id_array)) != len(id_array):  # the last vector given for an id wins
            _, last = np.unique(id_array[::-1], return_index=True)
            keep = np.sort(len(id_array) - 1 - last)
            id_array, vectors = id_array[keep], vectors[keep]
        keys = self._keys(vectors)
        # The row already storing each vector, if any: found by hash, its bytes compared.
        digests = np.fromiter(map(_digest, keys), np.uint64, len(keys))
        rows = self._digests.rows_of(digests)
        hit = np.flatnonzero(rows >= 0)
        if hit.size:
            alive = self._labels()[rows[hit]] >= 0  # not a tombstone
            alive[alive] = (self._keys(self._stored()[rows[hit[alive]]]) == keys[hit[alive]]).all(axis=1)
            rows[hit[~alive]] = -1
        order = np.argsort(id_array)
        olds = np.empty_like(rows)
        olds[order] = self._map.rows_of(id_array[order])
        todo = (rows < 0) | (rows != olds)
        leaving = todo & (olds >= 0)
        for item_id in id_array[leaving].tolist():
            self._map.detach(item_id)
        joins = todo & (rows >= 0)
        self._map.attach(id_array[joins], rows[joins])
        self._bury(olds[leaving])  # after every attach: a row gaining an id here is never killed
        fresh: dict[bytes, list[int]] = {}  # a vector not held yet (its bytes) -> its positions here
        for pos in np.flatnonzero(rows < 0).tolist():
            fresh.setdefault(keys[pos].tobytes(), []).append(pos)
        if fresh:
            self._add(fresh, id_array, vectors, digests)
        self._maintain()

    def delete(self, ids: Iterable[int] | np.ndarray, scrub: bool = False) -> int:
        """Remove `ids`; return how many were held. With `scrub`, the vectors no id holds any more
        are overwritten with zeros at once: a tombstone keeps its vector in the index's storage,
        hence in the saved file, until the next compaction, and an erased person's sentences can
        be read back from their vectors (nearest texts). A zero vector is no closer to a query than
        an unrelated sentence, and tombstones are never answered."""
        removed = 0
        buried: list[int] = []
        for item_id in (ids.tolist() if isinstance(ids, np.ndarray) else ids):
            row = self._map.detach(int(item_id))
            if row is not None:
                buried += self._bury([row])
                removed += 1
        if buried and scrub:
            self._stored()[np.asarray(buried, np.int64)] = 0
        if removed:
            self._maintain()
        return removed

    def compact(self) -> None:
        """Drop the tombstones now, rebuilding as the kind the live count calls for."""
        self._rebuild(self._wanted_kind())

    def _bury(self, rows: Iterable[int] | np.ndarray) -> list[int]:
        """Rows (just left by an id) that no id holds any more become tombstones; return them."""
        labels = self._labels()
        buried = []
        for row in (rows.tolist() if isinstance(rows, np.ndarray) else rows):
            if not self._map.is_live(row) and labels[row] != TOMBSTONE:
                labels[row] = TOMBSTONE
                buried.append(row)
        return buried

    def _add(self, fresh: dict[bytes, list[int]], id_array: np.ndarray, vectors: np.ndarray,
             digests: np.ndarray) -> None:
        """Store the batch's new distinct vectors (as HNSW at once if they take the index over)."""
        firsts = np.fromiter((positions[0] for positions in fresh.values()), dtype=np.int64, count=len(fresh))
        new = vectors[firsts]
        if self._kind == FLAT and self.vectors + len(new) > self.exact_limit:
            start = self._rebuild(HNSW, new)
        else:
            start = int(self._index.ntotal)
            self._index.add_with_ids(new, np.arange(start, start + len(new), dtype=np.int64))
        positions = list(fresh.values())
        counts = np.fromiter(map(len, positions), np.int64, len(positions))
        self._map.attach(id_array[np.concatenate(positions)],
                         np.repeat(np.arange(start, start + len(positions)), counts))
        self._digests.set(digests[firsts], np.arange(start, start + len(positions)))
        if self._digests.crowded:
            self._digests.renumber(self._identity())

    # ------------------------------------------------------------------ search

    def search(self, queries: np.ndarray, k: int, allowed: Iterable[int] | np.ndarray | None = None,
               ef_search: int | None = None) -> list[list[tuple[int, float]]]:
        """For each query vector, up to `k` (id, cosine) pairs, best first, ties by id.

        Every query gets min(k, len(self)) pairs, as with exact search: an HNSW query that finds
        fewer (a corner of the graph cut off by tombstones) is answered by an exact scan. Every id
        holding a found vector comes with it (same cosine): k distinct vectors always suffice.

        `allowed` restricts the answers to those ids, min(k, allowed ids held) of them: a large
        allowed share post-filters a deeper unfiltered search; a small one is scanned exactly
        from its own rows; in between the graph is walked with an id selector over their rows.

        `ef_search` replaces the HNSW parameter's for this search (a caller that re-ranks what it
        finds, as the hybrid ranker's candidates, can afford a shallower walk).
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if len(self) == 0 or queries.shape[0] == 0 or k <= 0:
            return [[] for _ in range(queries.shape[0])]
        ef = self.hnsw.ef_search if ef_search is None else ef_search
        if allowed is not None:
            return self._search_allowed(queries, k, sorted_unique(_int_array(allowed)), ef)
        with _threads(1 if queries.shape[0] == 1 else None):
            scores, rows = self._search_rows(queries, min(k, self.vectors), ef)
        return self._expand(scores, rows, k)

    def _search_rows(self, queries: np.ndarray, k: int, ef: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` (<= live vectors) best rows of each query, unfiltered."""
        if self._kind == HNSW and (k > EXACT_K or k * EXACT_SHARE > self.vectors):
            return self._exact(queries, k)
        if self._kind == HNSW:
            return self._hnsw_search(queries, k, ef)
        params = faiss.SearchParameters()
        params.sel = _LIVE if self.tombstones else None
        return self._index.search(queries, k, params=params)

    def _search_allowed(self, queries: np.ndarray, k: int, wanted: np.ndarray,
                        ef: int) -> list[list[tuple[int, float]]]:
        answers: list[list[tuple[int, float]]] = [[] for _ in range(queries.shape[0])]
        if not len(wanted):
            return answers
        todo = np.arange(queries.shape[0])
        share = len(wanted) / len(self)
        if share >= POSTFILTER_SHARE:
            depth = min(self.vectors, math.ceil(k / share * POSTFILTER_MARGIN))
            with _threads(1 if queries.shape[0] == 1 else None):
                scores, rows = self._search_rows(queries, depth, ef)
            answers = self._expand(scores, rows, k, wanted)
            if depth == self.vectors:  # every vector seen: nothing more to find
                return answers
            todo = np.flatnonzero([len(answer) < k for answer in answers])
            if not todo.size:
                return answers
        held, rows = self._lookup(wanted)
        if not len(held):
            return answers
        found = self._search_rows_of(queries[todo], k, sorted_unique(rows), held, ef)
        for qi, answer in zip(todo.tolist(), found, strict=True):
            answers[qi] = answer
        return answers

    def _search_rows_of(self, queries: np.ndarray, k: int, rows: np.ndarray, held: np.ndarray,
                        ef: int) -> list[list[tuple[int, float]]]:
        """The best `k` of the ids `held` (sorted), searching only their `rows` (sorted, live)."""
        depth = min(k, len(rows))
        with _threads(1 if queries.shape[0] == 1 else None):
            if len(rows) * EXACT_SHARE <= self.vectors or (self._kind == HNSW and depth > EXACT_K):
                scores, found = self._exact_rows(queries, rows, depth)
            else:
                selector = faiss.IDSelectorBatch(len(rows), faiss.swig_ptr(rows))
                if self._kind == HNSW:
                    params: Any = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
                    params.efSearch = max(ef, depth) * max(1, self.vectors // len(rows))
                else:
                    params = faiss.SearchParameters()
                params.sel = selector
                scores, found = self._index.search(queries, depth, params=params)
                short = np.flatnonzero((found < 0).any(axis=1))
                if short.size:
                    scores[short], found[short] = self._exact_rows(queries[short], rows, depth)
        return self._expand(scores, found, k, held)

    def _lookup(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The held ids among `wanted` (sorted) and their rows."""
        rows = self._map.rows_of(wanted)
        hit = rows >= 0
        return wanted[hit], rows[hit]

    def _expand(self, scores: np.ndarray, rows: np.ndarray, k: int,
                allowed: np.ndarray | None = None) -> list[list[tuple[int, float]]]:
        """Per query, the best `k` ids (of `allowed`, sorted, if given) holding the found rows."""
        out = []
        for row_scores, row_rows in zip(scores, rows, strict=True):
            found = row_rows >= 0
            # no row needs to give more than k ids, unless a filter may drop some
            ids, counts = self._map.expand(row_rows[found], k if allowed is None else None)
            sims = np.repeat(row_scores[found], counts)
            if allowed is not None:
                keep = _members(ids, allowed)
                ids, sims = ids[keep], sims[keep]
            order = np.lexsort((ids, -sims))[:k]
            out.append(list(zip(ids[order].tolist(), sims[order].tolist(), strict=True)))
        return out

    def _exact_rows(self, queries: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over the stored vectors of `rows` only (all live). HNSW's float16 rows are
        made float32 first: numpy multiplies mixed types without BLAS (12,000 rows of 512: 155 ms
        for one query, 21 ms so)."""
        sims = queries @ np.asarray(self._stored()[rows], dtype=np.float32).T
        top = top_k(sims, k)
        return np.take_along_axis(sims, top, axis=1), rows[top]

    def _hnsw_search(self, queries: np.ndarray, k: int, ef: int) -> tuple[np.ndarray, np.ndarray]:
        ef = max(ef, k)
        if self.tombstones:  # walk past the tombstones: about total/live more candidates
            ef = math.ceil(ef * int(self._index.ntotal) / self.vectors)
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

    def save(self, path: str | os.PathLike[str], stamp: dict[str, Any] | None = None) -> None:
        """Write the index, its ids and its stamp, each atomically (readers never see half a file);
        the stamp, written last, carries digests of the FAISS file and of the ids file, and
        `stamp` (a caller's own files' digests: `load` gives them back as `self.stamp`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.close(fd)
        try:
            faiss.write_index(self._index, tmp)
            with open(tmp, "rb") as handle:
                index_digest = hashlib.file_digest(handle, "sha256").hexdigest()
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        pairs = np.stack(self._map.table())
        atomic_write_bytes(_ids_path(path), pairs.tobytes())
        meta = {**(stamp or {}), "format": FORMAT, "kind": self._kind, "dim": self.dim,
                "generation": self.generation, "count": len(self), "vectors": self.vectors,
                "total": int(self._index.ntotal), "index_digest": index_digest,
                "ids_digest": hashlib.blake2b(pairs.tobytes(), digest_size=_DIGEST_BYTES).hexdigest()}
        if self._kind == HNSW:
            meta["hnsw"] = {"m": self.hnsw.m, "ef_construction": self.hnsw.ef_construction}
        _atomic_write_text(_meta_path(path), json.dumps(meta))
        self.stamp = meta

    @classmethod
    def load(cls, path: str | os.PathLike[str], dim: int, *, exact_limit: int = EXACT_LIMIT,
             hnsw: HNSWParams = HNSW_PARAMS) -> VectorIndex:
        """Read an index saved by `save`; raise IndexFileError if it cannot be trusted (older
        formats included: the caller rebuilds from the stored vectors).

        The kind is kept as saved; the size policy applies again at the next write.
        """
        path = Path(path)
        try:
            meta = json.loads(_meta_path(path).read_text())
            with open(path, "rb") as handle:  # one open file: the bytes digested are the bytes read
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
                handle.seek(0)
                raw = faiss.read_index(faiss.PyCallbackIOReader(handle.read))  # type: ignore[attr-defined]
            blob = _ids_path(path).read_bytes()
        except (OSError, ValueError, RuntimeError) as exc:
            raise IndexFileError(f"cannot read {path}: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise IndexFileError(f"{path} is not of format {FORMAT}")
        # Files saved before the digest came carry none: checked as before, digested at the next save.
        if "index_digest" in meta and meta["index_digest"] != digest:
            raise IndexFileError(f"{path} does not match the digest of its stamp")
        kind = meta.get("kind")
        if raw.d != dim or meta.get("dim") != dim or raw.ntotal != meta.get("total"):
            raise IndexFileError(f"{path} does not match its stamp or the model (dim {dim})")
        if not isinstance(raw, faiss.IndexIDMap) or isinstance(raw, faiss.IndexIDMap2):
            raise IndexFileError(f"{path} is not an id-mapped index")
        inner = faiss.downcast_index(raw.index)
        expected = faiss.IndexHNSWSQ if kind == HNSW else faiss.IndexFlat
        if (kind not in KINDS or not isinstance(inner, expected)
                or inner.metric_type != faiss.METRIC_INNER_PRODUCT):
            raise IndexFileError(f"{path} is not the {kind} inner-product index its stamp says")
        if isinstance(meta.get("generation"), bool) or not isinstance(meta.get("generation"), int):
            raise IndexFileError(f"{path} has no generation stamp")
        index = cls(dim, generation=meta["generation"], exact_limit=exact_limit, hnsw=hnsw)
        index._kind, index._index, index.stamp = kind, raw, meta
        index._restore(path, meta, blob)
        return index

    def _restore(self, path: Path, meta: dict[str, Any], blob: bytes) -> None:
        """Rebuild the maps from the labels, the ids file and the stored vectors, checking each."""
        count = meta.get("count")
        if (not isinstance(count, int) or len(blob) != 16 * count
                or hashlib.blake2b(blob, digest_size=_DIGEST_BYTES).hexdigest() != meta.get("ids_digest")):
            raise IndexFileError(f"the ids of {path} do not match its stamp")
        ids, rows = np.frombuffer(blob, dtype=np.int64).reshape(2, count)
        labels = faiss.vector_to_array(self._index.id_map)
        live = np.flatnonzero(labels >= 0)
        if (len(live) != meta.get("vectors") or not np.array_equal(labels[live], live)
                or (count and ids.min() < 0) or len(sorted_unique(ids)) != count
                or not np.array_equal(sorted_unique(rows), live)):
            raise IndexFileError(f"{path}: its labels, ids and rows disagree")
        self._map = RowMap.of(ids, rows)
        digests = np.zeros(len(live), np.uint64)
        for start in range(0, len(live), _CHUNK):
            keys = self._keys(self._stored()[live[start:start + _CHUNK]])
            digests[start:start + len(keys)] = [_digest(key) for key in keys]
        order = np.argsort(digests, kind="stable")
        same = np.flatnonzero(digests[order][1:] == digests[order][:-1])
        for at in same.tolist():  # one hash for two rows: the same vector twice, or a collision
            pair = self._keys(self._stored()[live[order[at:at + 2]]])
            if np.array_equal(pair[0], pair[1]):
                raise IndexFileError(f"{path} stores a vector twice")
        self._digests = DigestMap.of(digests, live)

    # ------------------------------------------------------------------ internals

    def _new_index(self, kind: str) -> Any:
        inner: Any
        if kind == HNSW:
            inner = faiss.IndexHNSWSQ(self.dim, faiss.ScalarQuantizer.QT_fp16,  # type: ignore[arg-type]
                                      self.hnsw.m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.hnsw.ef_construction
            inner.hnsw.efSearch = self.hnsw.ef_search
        else:
            inner = faiss.IndexFlatIP(self.dim)
        return faiss.IndexIDMap(inner)

    def _inner(self) -> Any:
        return faiss.downcast_index(self._index.index)

    def _labels(self) -> np.ndarray:
        """A writable view of the labels (a live vector's label is its row; valid until the next add)."""
        return faiss.rev_swig_ptr(self._index.id_map.data(), int(self._index.ntotal))

    def _stored(self) -> np.ndarray:
        """A view of every stored vector, tombstones included (valid until the next add): float32
        for flat, float16 for HNSW."""
        inner = self._inner()
        total = int(self._index.ntotal)
        if self._kind == HNSW:
            storage: Any = faiss.downcast_index(inner.storage)
            codes = faiss.rev_swig_ptr(storage.codes.data(), total * storage.code_size)
            return codes.view(np.float16).reshape(total, self.dim)
        return faiss.rev_swig_ptr(inner.get_xb(), total * self.dim).reshape(total, self.dim)

    def _keys(self, vectors: np.ndarray) -> np.ndarray:
        """The float16 bytes of `vectors` (rows of `_stored()` or given ones) as HNSW stores them,
        one row each: two vectors are one when these are equal, whatever the kind (flat storage
        keeps the first one's float32 values)."""
        if vectors.dtype == np.float16:
            return vectors.view(np.uint8)
        return self._half.sa_encode(np.ascontiguousarray(vectors, dtype=np.float32))

    def _wanted_kind(self) -> str:
        if self.vectors > self.exact_limit:
            return HNSW
        if self.vectors < self.exact_limit * EXACT_RETURN:
            return FLAT
        return self._kind

    def _maintain(self) -> None:
        """Switch kind, or compact, when the last write calls for it."""
        wanted = self._wanted_kind()
        if wanted != self._kind or self.tombstones > TOMBSTONE_LIMIT * int(self._index.ntotal):
            self._rebuild(wanted)

    def _rebuild(self, kind: str, extra: np.ndarray | None = None) -> int:
        """A fresh index of `kind` with the live vectors (in their row order), then `extra`; return
        the row of the first extra vector (the caller maps them).

        The old index serves until the new one is complete; the live vectors are copied across
        in chunks, so the peak is both indexes plus one chunk.
        """
        live = self._map.rows()
        stored = self._stored()
        index = self._new_index(kind)
        for start in range(0, len(live), _CHUNK):
            chunk = live[start:start + _CHUNK]  # fancy indexing copies the chunk
            index.add_with_ids(stored[chunk].astype(np.float32),
                               np.arange(start, start + len(chunk), dtype=np.int64))
        if extra is not None and len(extra):
            index.add_with_ids(extra, np.arange(len(live), len(live) + len(extra), dtype=np.int64))
        new_row = np.full(int(self._index.ntotal), -1, np.int64)
        new_row[live] = np.arange(len(live))
        self._map.renumber(new_row)
        self._digests.renumber(new_row)
        self._kind, self._index = kind, index
        return len(live)

    def _identity(self) -> np.ndarray:
        """Row -> itself for the live rows, -1 for the tombstones (drops stale hashes)."""
        labels = self._labels()
        return np.where(labels >= 0, np.arange(len(labels)), -1)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row of `scores`, the columns of the `k` highest, best first, ties by column: what a
    stable argsort of the negated scores starts with, without sorting whole rows (40 queries over
    12,000 rows: 54 ms to sort)."""
    width = scores.shape[1]
    if k >= width // 4:
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]
    cut = np.partition(scores, width - k, axis=1)[:, width - k]  # each row's k-th highest
    out = np.empty((scores.shape[0], k), dtype=np.int64)
    for i, (row, least) in enumerate(zip(scores, cut, strict=True)):
        kept = np.flatnonzero(row >= least)  # k or more (ties), in column order
        if len(kept) < k:  # a NaN in the row (partitioned as the highest, sorted last): sort it all
            out[i] = np.argsort(-row, kind="stable")[:k]
        else:
            out[i] = kept[np.argsort(-row[kept], kind="stable")[:k]]
    return out


def _digest(key: np.ndarray) -> int:
    """The 64-bit hash of a vector's float16 bytes (`VectorIndex._keys`), which make two vectors
    one: a hash finds a row, whose bytes are then compared."""
    return int.from_bytes(hashlib.blake2b(key.tobytes(), digest_size=_KEY_BYTES).digest(), "little")


def _int_array(values: Iterable[int] | np.ndarray) -> np.ndarray:
    if isinstance(values, np.ndarray):
        return values.astype(np.int64, copy=False).ravel()
    if isinstance(values, (set, frozenset, dict)):
        return np.fromiter(values, dtype=np.int64, count=len(values))
    return np.asarray(list(values), dtype=np.int64)


def _members(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Which of `values` are in `pool` (sorted, not empty)."""
    pos = np.minimum(np.searchsorted(pool, values), len(pool) - 1)
    return pool[pos] == values


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


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _ids_path(path: Path) -> Path:
    return path.with_name(path.name + ".ids")


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def digest_of(data: bytes) -> str:
    """The digest a stamp keeps of a file's bytes."""
    return hashlib.sha256(data).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
