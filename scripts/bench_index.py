#!/usr/bin/env python3
"""Benchmark the two kinds of matcher.index.VectorIndex on the same synthetic sentence-like data.

    python scripts/bench_index.py --vectors 200000 --dim 512 --json

Builds the exact (flat) and the HNSW kind on the same vectors and prints, for each, the build
time, single-query search latency for k=10 (p50/p95, through VectorIndex.search), recall@10 (and
@64, the engine's depth) against exact search, tie-aware (identical vectors tie; by id too), and
memory (bytes of the FAISS index as serialised, the index's Python maps, and the process's
resident-memory growth). For HNSW it also
measures recall with tombstones (--delete, a share of the vectors deleted but not yet compacted)
and the time a compaction takes. With --json the last line printed is one JSON object.

The data imitates sentence embeddings rather than uniform noise: a common direction (encoders
are anisotropic: unrelated sentences still score ~0.1), 24 topics, 300 cluster centres of
Dirichlet-distributed sizes, and per-cluster gaussian noise with a decaying spectrum in a random
basis (--isotropic for plain gaussian noise, which is harder for HNSW). Vectors are L2-normalised
float32. --duplicate-share (default 0.36, the share measured at 10,000 generated residents) makes
that share of the vectors exact copies of others, popular ones most often; queries are held-out
draws from the same distribution and, for the same share of them, near copies of the most copied
vectors (the queries that met cliques of identical vectors).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matcher.index import HNSW_PARAMS, HNSWParams, VectorIndex  # noqa: E402


def unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, dim: int, seed: int = 0, *, centres: int = 300, topics: int = 24,
              isotropic: bool = False) -> np.ndarray:
    """`n` unit vectors shaped like sentence embeddings (see the module docstring)."""
    rng = np.random.default_rng(seed)
    common = unit(rng.normal(size=(1, dim)))
    topic = unit(rng.normal(size=(topics, dim)))[rng.integers(0, topics, size=centres)]
    centre = unit(0.45 * common + 0.65 * topic + unit(rng.normal(size=(centres, dim))))
    basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    spectrum = np.ones(dim) if isotropic else 1.0 / np.sqrt(np.arange(dim) + 8.0)
    spectrum = (spectrum / np.sqrt((spectrum**2).sum())).astype(np.float32)
    spread = rng.uniform(0.5, 1.1, size=centres).astype(np.float32)
    members = rng.choice(centres, size=n, p=rng.dirichlet(np.full(centres, 0.7)))
    out = np.empty((n, dim), np.float32)
    rotate = basis.T.astype(np.float32)
    for start in range(0, n, 50_000):
        c = members[start:start + 50_000]
        noise = (rng.normal(size=(len(c), dim)).astype(np.float32) * spectrum) @ rotate
        out[start:start + len(c)] = unit(centre[c] + spread[c, None] * noise)
    return out


def with_duplicates(n: int, dim: int, share: float, seed: int = 0, *, held_out: int = 0,
                    isotropic: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """`n` vectors of which a share `share` are exact copies of others, popular ones most often,
    and `held_out` further draws from the same distribution (queries).

    People write the same sentence ("Je parle français", "je fais le ménage"): at 10,000 generated
    residents 36 % of the statements were copies (28,732 distinct vectors among 45,203). The copies
    go to a Zipf-like popularity (weight 1/rank) over the distinct vectors, in a shuffled order.
    """
    distinct = max(1, round(n * (1.0 - share)))
    data = clustered(distinct + held_out, dim, seed, isotropic=isotropic)
    base, queries = data[:distinct], data[distinct:]
    if distinct == n:
        return base, queries
    rng = np.random.default_rng(seed + 7)
    weight = 1.0 / np.arange(1, distinct + 1)
    sources = rng.permutation(distinct)[rng.choice(distinct, size=n - distinct, p=weight / weight.sum())]
    out = np.concatenate([base, base[sources]])
    return out[rng.permutation(n)], queries


def near_copies(vectors: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """`count` queries close to the most copied vectors (cosine ~0.9): needs phrased like common
    statements, the queries that met cliques of identical vectors."""
    if count <= 0:
        return np.zeros((0, vectors.shape[1]), np.float32)
    _, first, counts = np.unique(vectors.view(np.dtype((np.void, vectors.shape[1] * 4))).ravel(),
                                 return_index=True, return_counts=True)
    popular = first[np.argsort(-counts, kind="stable")][:max(count, 1)]
    rng = np.random.default_rng(seed + 11)
    picked = vectors[rng.choice(popular, size=count)]
    noise = unit(rng.normal(size=picked.shape))
    return unit(picked + 0.45 * noise)


def rss() -> int:
    """Resident memory of this process, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def map_bytes(index: VectorIndex) -> int:
    """The index's maps (id -> row, row -> ids, hash -> row)."""
    return int(index._map.nbytes + index._digests.nbytes)  # private: measuring them is the point


Found = list[list[tuple[int, float]]]


def latencies(index: VectorIndex, queries: np.ndarray, k: int) -> tuple[Found, dict[str, float]]:
    """Single-query searches, one after the other, as a request would make them."""
    found, times = [], []
    index.search(queries[:5], k)  # warm up
    for q in queries:
        started = time.perf_counter()
        (row,) = index.search(q[None, :], k)
        times.append(time.perf_counter() - started)
        found.append(row)
    ms = np.asarray(times) * 1000
    return found, {"p50_ms": round(float(np.percentile(ms, 50)), 3),
                   "p95_ms": round(float(np.percentile(ms, 95)), 3)}


def rescored(found: Found, queries: np.ndarray, vectors: np.ndarray,
             ids: np.ndarray | None = None) -> Found:
    """The answers with their true (float32) cosines: HNSW stores float16, whose cosines stray
    from the truth by ~1e-4, more than the tie tolerance of `quality`. `ids`, sorted, label the
    rows of `vectors` (default: the row numbers)."""
    def row(answer: list[tuple[int, float]], query: np.ndarray) -> list[tuple[int, float]]:
        got = np.asarray([i for i, _ in answer], np.int64)
        at = got if ids is None else np.searchsorted(ids, got)
        assert ids is None or np.array_equal(ids[at], got), "an answer's id has no vector"
        return list(zip(got.tolist(), (vectors[at] @ query).tolist(), strict=True))
    return [row(answer, query) for answer, query in zip(found, queries, strict=True)]


def quality(found: Found, truth: tuple[np.ndarray, np.ndarray], k: int) -> dict[str, float]:
    """Recall@k against exact search, mean and worst query, and what the misses cost at the top: the
    share of queries whose best answer is not the true best, and the largest cosine so lost.

    Identical vectors tie, and which tied ids two searches return is arbitrary: the tie-aware
    recall counts an answer when it scores at least the true k-th score (float32 rounding aside;
    `found` carries true cosines: see `rescored`), as scripts/bench.py does;
    ``recall_at_k_by_id`` counts ids only (ties as misses).
    """
    ids, scores = truth
    by_id = [len({i for i, _ in f[:k]} & set(t[:k].tolist())) / k for f, t in zip(found, ids, strict=True)]
    tied = [min(k, sum(s >= float(t[k - 1]) - 1e-5 for _, s in f[:k])) / k
            for f, t in zip(found, scores, strict=True)]
    lost = [float(s[0]) - (f[0][1] if f else 0.0) for f, s in zip(found, scores, strict=True)]
    return {f"recall_at_{k}": round(float(np.mean(tied)), 4),
            f"worst_query_recall_at_{k}": round(float(np.min(tied)), 2),
            f"recall_at_{k}_by_id": round(float(np.mean(by_id)), 4),
            "top1_missed": round(float(np.mean([x > 1e-5 for x in lost])), 4),
            "worst_top1_cosine_lost": round(max(0.0, max(lost)), 4)}


def exact_truth(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray]:
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    scores, rows = flat.search(queries, k)
    return ids[rows], scores


def memory(index: VectorIndex, rss_before: int) -> dict[str, int]:
    return {"index_bytes": len(faiss.serialize_index(index._index)),  # noqa: SLF001
            "id_map_bytes": map_bytes(index), "rss_growth_bytes": rss() - rss_before}


def bench_flat(vectors: np.ndarray, queries: np.ndarray, truth: tuple[np.ndarray, np.ndarray],
               k: int) -> dict[str, Any]:
    before = rss()
    index = VectorIndex(vectors.shape[1], exact_limit=len(vectors))
    started = time.perf_counter()
    index.upsert(range(len(vectors)), vectors)
    build = time.perf_counter() - started
    assert index.kind == "flat"
    found, lat = latencies(index, queries, k)
    return {"kind": "flat", "build_s": round(build, 2), **lat,
            **quality(rescored(found, queries, vectors), truth, k),
            **memory(index, before)}


def bench_hnsw(vectors: np.ndarray, queries: np.ndarray, truth: tuple[np.ndarray, np.ndarray], k: int,
               params: HNSWParams, ef_values: list[int], delete: float, compact: bool,
               seed: int) -> dict[str, Any]:
    before = rss()
    index = VectorIndex(vectors.shape[1], exact_limit=0, hnsw=params)
    started = time.perf_counter()
    index.upsert(range(len(vectors)), vectors)
    build = time.perf_counter() - started
    assert index.kind == "hnsw"
    result: dict[str, Any] = {"kind": "hnsw", "m": params.m, "ef_construction": params.ef_construction,
                              "ef_search": params.ef_search, "build_s": round(build, 2),
                              **memory(index, before)}
    sweep = []
    for ef in sorted(set(ef_values) | {params.ef_search}):
        index.hnsw = replace(params, ef_search=ef)
        found, lat = latencies(index, queries, k)
        deep = quality(rescored(index.search(queries, 64), queries, vectors), truth, 64)
        row = {"ef_search": ef, **lat, **quality(rescored(found, queries, vectors), truth, k),
               "recall_at_64": deep["recall_at_64"]}
        sweep.append(row)
        if ef == params.ef_search:
            result.update({key: value for key, value in row.items() if key != "ef_search"})
    result["ef_search_sweep"] = sweep
    index.hnsw = params
    if delete > 0:
        rng = np.random.default_rng(seed + 1)
        gone = rng.choice(len(vectors), size=int(delete * len(vectors)), replace=False)
        index.delete(gone.tolist())
        keep = np.setdiff1d(np.arange(len(vectors)), gone)
        truth_left = exact_truth(vectors[keep], keep, queries, k)
        found, lat = latencies(index, queries, k)
        result["with_tombstones"] = {"deleted_share": delete, "tombstones": index.tombstones, **lat,
                                     **quality(rescored(found, queries, vectors), truth_left, k)}
        if compact:
            started = time.perf_counter()
            index.compact()
            result["with_tombstones"]["compaction_s"] = round(time.perf_counter() - started, 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--vectors", type=int, default=60_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default="flat,hnsw", help="comma-separated: flat, hnsw")
    parser.add_argument("--m", type=int, default=HNSW_PARAMS.m)
    parser.add_argument("--ef-construction", type=int, default=HNSW_PARAMS.ef_construction)
    parser.add_argument("--ef-search", type=int, default=HNSW_PARAMS.ef_search)
    parser.add_argument("--ef-sweep", default="32,64,96,256", help="further efSearch values to measure")
    parser.add_argument("--delete", type=float, default=0.15,
                        help="share deleted (left as tombstones) before measuring again; 0 to skip")
    parser.add_argument("--no-compact", action="store_true", help="do not time a compaction")
    parser.add_argument("--isotropic", action="store_true", help="plain gaussian cluster noise")
    parser.add_argument("--duplicate-share", type=float, default=0.36,
                        help="share of the vectors that are exact copies of others (measured: 0.36 at 10k "
                             "residents); as many of the queries are near the most copied vectors")
    parser.add_argument("--threads", type=int, default=0, help="OpenMP threads (0: FAISS default)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    kinds = {kind.strip() for kind in args.kinds.split(",") if kind.strip()}

    started = time.perf_counter()
    near = round(args.queries * args.duplicate_share) if args.duplicate_share > 0 else 0
    held_out = args.queries - near
    vectors, queries = with_duplicates(args.vectors, args.dim, args.duplicate_share, args.seed,
                                       held_out=held_out, isotropic=args.isotropic)
    queries = np.concatenate([queries, near_copies(vectors, near, args.seed)])
    truth = exact_truth(vectors, np.arange(len(vectors)), queries, 64)
    sims = queries[:100] @ vectors[:20_000].T
    report: dict[str, Any] = {
        "vectors": args.vectors, "dim": args.dim, "queries": args.queries, "k": args.k,
        "threads": faiss.omp_get_max_threads(), "isotropic": args.isotropic,
        "duplicate_share": args.duplicate_share,
        "distinct_vectors": int(len(np.unique(vectors.view(np.dtype((np.void, args.dim * 4))).ravel()))),
        "data": {"mean_cosine": round(float(sims.mean()), 3),
                 "mean_top1_cosine_in_20k": round(float(sims.max(axis=1).mean()), 3),
                 "seconds": round(time.perf_counter() - started, 1)},
    }
    print(f"data: {args.vectors} x {args.dim}, {args.queries} queries, {report['data']}", flush=True)
    if "flat" in kinds:
        report["flat"] = bench_flat(vectors, queries, truth, args.k)
        print(f"flat: {report['flat']}", flush=True)
    if "hnsw" in kinds:
        params = HNSWParams(args.m, args.ef_construction, args.ef_search)
        ef_values = [int(v) for v in args.ef_sweep.split(",") if v.strip()]
        report["hnsw"] = bench_hnsw(vectors, queries, truth, args.k, params, ef_values,
                                    args.delete, not args.no_compact, args.seed)
        print(f"hnsw: {report['hnsw']}", flush=True)
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
