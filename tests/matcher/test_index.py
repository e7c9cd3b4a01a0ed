"""FAISS index and collections: add, remove, save, load, rebuild equivalence."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from matcher.engine import Collection
from matcher.index import HNSW_PARAMS, IndexFileError, VectorIndex, top_k

DIM = 16


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_upsert_search_delete() -> None:
    rng = np.random.default_rng(0)
    vectors = unit(rng, 50)
    index = VectorIndex(DIM)
    index.upsert(range(100, 150), vectors)
    assert len(index) == 50
    (hits,) = index.search(vectors[7:8], 3)
    assert hits[0][0] == 107 and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    index.upsert([107], vectors[8:9])  # replace, do not duplicate
    assert len(index) == 50
    assert index.delete([107, 999]) == 1
    assert 107 not in {i for i, _ in index.search(vectors[8:9], 50)[0]}


def test_exact_search_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    vectors, queries = unit(rng, 300), unit(rng, 5)
    index = VectorIndex(DIM)
    index.upsert(range(300), vectors)
    for q, hits in zip(queries, index.search(queries, 10), strict=True):
        expected = np.argsort(-(vectors @ q))[:10]
        assert [i for i, _ in hits] == expected.tolist()


def test_save_load_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    vectors = unit(rng, 40)
    index = VectorIndex(DIM, generation=7)
    index.upsert(range(40), vectors)
    index.save(tmp_path / "x.faiss")
    loaded = VectorIndex.load(tmp_path / "x.faiss", DIM)
    assert loaded.generation == 7 and loaded.ids() == set(range(40))
    assert loaded.search(vectors[:3], 5) == index.search(vectors[:3], 5)


@pytest.mark.parametrize("damage", ["missing", "truncated", "wrong_dim", "stale_meta"])
def test_damaged_files_are_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "x.faiss"
    index = VectorIndex(DIM)
    index.upsert(range(10), unit(np.random.default_rng(3), 10))
    index.save(path)
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "stale_meta":
        (tmp_path / "x.faiss.json").write_text('{"dim": 16, "generation": 1, "count": 3}')
    dim = DIM * 2 if damage == "wrong_dim" else DIM
    with pytest.raises(IndexFileError):
        VectorIndex.load(path, dim)


def flip_a_bit_of(path: Path, stored: bytes) -> None:
    """The lowest bit of the first number of `stored` (a vector as the file keeps it) changed:
    the file keeps its size and every structure in it."""
    data = bytearray(path.read_bytes())
    at = data.find(stored)
    assert at >= 0
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(("kind", "dtype"), [("flat", np.float32), ("hnsw", np.float16)])
def test_a_changed_bit_in_the_faiss_file_is_refused(tmp_path: Path, kind: str, dtype: type) -> None:
    """Same size, every structure still readable: a stored vector silently different. The stamp
    carries the FAISS file's digest."""
    path = tmp_path / "x.faiss"
    vectors = unit(np.random.default_rng(5), 40)
    index = VectorIndex(DIM, exact_limit=0 if kind == "hnsw" else 1000)
    index.upsert(range(40), vectors)
    assert index.kind == kind
    index.save(path)
    VectorIndex.load(path, DIM)  # as saved: reads
    flip_a_bit_of(path, vectors[7].astype(dtype).tobytes())
    with pytest.raises(IndexFileError, match="digest"):
        VectorIndex.load(path, DIM)


def test_a_changed_owner_in_the_collection_file_is_refused(tmp_path: Path) -> None:
    """The statement -> document map (`.owners.npy`): one document id changed for another, the
    same statements listed; a search would have named the wrong person."""
    path = tmp_path / "c.faiss"
    c = Collection(DIM)
    c.upsert(1, [10, 11], unit(np.random.default_rng(6), 2))
    c.upsert(2, [20], unit(np.random.default_rng(7), 1))
    c.save(path)
    owners = tmp_path / "c.faiss.owners.npy"
    pairs = np.load(owners)
    pairs[1][pairs[1] == 2] = 3
    np.save(owners, pairs)
    with pytest.raises(IndexFileError, match="owners"):
        Collection.load(path, DIM)


def test_files_saved_before_the_digests_still_load(tmp_path: Path) -> None:
    """A stamp without the digests (saved by an earlier version of this format) is checked as
    before, not rebuilt at the upgrade (minutes at 100,000 residents); the next save adds them."""
    path = tmp_path / "c.faiss"
    c = Collection(DIM)
    c.upsert(1, [10, 11], unit(np.random.default_rng(8), 2))
    c.save(path)
    meta_path = tmp_path / "c.faiss.json"
    meta = json.loads(meta_path.read_text())
    digests = {"index_digest", "owners_digest"}
    assert digests <= set(meta)
    meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k not in digests}))
    assert Collection.load(path, DIM).statements(1) == [10, 11]


def test_collection_ranks_documents_by_their_best_statements() -> None:
    rng = np.random.default_rng(4)
    base = unit(rng, 6)
    c = Collection(DIM)
    c.upsert(1, [10, 11], base[[0, 1]])
    c.upsert(2, [20], base[[2]])
    c.upsert(3, [30, 31], base[[3, 0]] * 0.999)
    hits = c.search(base[[0]], k=3)
    assert {h.doc_id for h in hits[:2]} == {1, 3}
    assert hits[0].best.query_index == 0
    assert [h.doc_id for h in c.search(base[[0]], k=3, allowed={2, 3})][0] == 3
    assert c.search(base[[0]], k=3, allowed=set()) == []


def test_collection_upsert_replaces_and_delete_forgets() -> None:
    rng = np.random.default_rng(5)
    v = unit(rng, 4)
    c = Collection(DIM)
    c.upsert(1, [10, 11], v[:2])
    c.upsert(1, [12], v[2:3])
    assert c.statements(1) == [12] and 1 in c and len(c) == 1 and len(c.index) == 1
    c.delete(1)
    assert len(c) == 0 and len(c.index) == 0 and 1 not in c and c.owners([10, 11, 12]).tolist() == [-1] * 3


def test_collection_rebuild_is_equivalent_to_incremental(tmp_path: Path) -> None:
    """Adding, replacing and removing step by step gives the same answers as a fresh build."""
    rng = np.random.default_rng(6)
    docs = {d: unit(rng, int(rng.integers(1, 5))) for d in range(30)}
    incremental = Collection(DIM)
    next_id = 0
    ids: dict[int, list[int]] = {}
    for d, vecs in docs.items():
        ids[d] = list(range(next_id, next_id + len(vecs)))
        next_id += len(vecs)
        incremental.upsert(d, ids[d], vecs)
    for d in range(0, 30, 3):
        incremental.delete(d)
    replaced = set(range(1, 30, 5))  # some of them were deleted first: they come back
    for d in sorted(replaced):
        docs[d] = unit(rng, 2)
        ids[d] = [next_id, next_id + 1]
        next_id += 2
        incremental.upsert(d, ids[d], docs[d])
    fresh = Collection(DIM)
    for d, vecs in docs.items():
        if d % 3 or d in replaced:
            fresh.upsert(d, ids[d], vecs)
    incremental.save(tmp_path / "c.faiss")
    reloaded = Collection.load(tmp_path / "c.faiss", DIM)
    queries = unit(rng, 4)
    expected = [(h.doc_id, round(h.score, 5)) for h in fresh.search(queries, 10)]
    for c in (incremental, reloaded):
        assert [(h.doc_id, round(h.score, 5)) for h in c.search(queries, 10)] == expected


def test_collection_load_refuses_mismatched_owners(tmp_path: Path) -> None:
    c = Collection(DIM)
    c.upsert(1, [10, 11], unit(np.random.default_rng(7), 2))
    c.save(tmp_path / "c.faiss")
    np.save(tmp_path / "c.faiss.owners.npy", np.array([[10], [1]], dtype=np.int64))
    with pytest.raises(IndexFileError):
        Collection.load(tmp_path / "c.faiss", DIM)


# ---------------------------------------------------------------- the two kinds (exact, HNSW)

KINDS = {"flat": 10**9, "hnsw": 0}  # exact_limit forcing each kind from the first vector
# HNSW stores float16: its cosines are those of the rounded vectors (within ~1e-3 of float32).
PRECISION = {"flat": 1e-5, "hnsw": 1e-3}


def stored(vectors: np.ndarray, kind: str) -> np.ndarray:
    """The vectors as an index of `kind` holds them (HNSW: rounded to float16)."""
    return vectors.astype(np.float16).astype(np.float32) if kind == "hnsw" else vectors


def clustered(rng: np.random.Generator, n: int, dim: int, centres: int = 40) -> np.ndarray:
    """Unit vectors in gaussian clusters around a common direction, like sentence embeddings."""
    common = rng.normal(size=dim)
    centre = rng.normal(size=(centres, dim)) + 0.5 * common / np.linalg.norm(common) * np.sqrt(dim)
    centre /= np.linalg.norm(centre, axis=1, keepdims=True)
    noise = rng.normal(size=(n, dim)) * rng.uniform(0.5, 1.1, size=(n, 1)) / np.sqrt(dim)
    v = (centre[rng.integers(0, centres, size=n)] + noise).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def exact(vectors: dict[int, np.ndarray], queries: np.ndarray, k: int) -> list[list[int]]:
    ids = np.fromiter(vectors, dtype=np.int64)
    matrix = np.stack([vectors[i] for i in ids.tolist()])
    return [ids[np.argsort(-(matrix @ q), kind="stable")[:k]].tolist() for q in queries]


def returned(index: VectorIndex, queries: np.ndarray, k: int) -> set[int]:
    return {i for row in index.search(queries, k) for i, _ in row}


@pytest.mark.parametrize("kind", KINDS)
def test_both_kinds_upsert_replace_delete_alike(kind: str) -> None:
    rng = np.random.default_rng(10)
    vectors = unit(rng, 300)
    index = VectorIndex(DIM, exact_limit=KINDS[kind])
    assert index.search(vectors[:2], 5) == [[], []]
    index.upsert(range(1000, 1300), vectors)
    assert index.kind == kind and len(index) == 300 and 1000 in index and 999 not in index
    for i in (0, 150, 299):
        (hits,) = index.search(vectors[i:i + 1], 5)
        assert len(hits) == 5 and hits[0][0] == 1000 + i
        assert hits[0][1] == pytest.approx(1.0, abs=PRECISION[kind])
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    fresh = unit(rng, 3)
    index.upsert([1000, 1001, 1002], fresh)  # replaced: the new vector answers, the old does not
    assert len(index) == 300 and index.ids() == set(range(1000, 1300))
    for j in range(3):
        assert index.search(fresh[j:j + 1], 1)[0][0][0] == 1000 + j
        top = index.search(vectors[j:j + 1], 300)[0]
        assert dict(top)[1000 + j] == pytest.approx(float(fresh[j] @ vectors[j]), abs=PRECISION[kind])
    gone = list(range(1100, 1150))
    assert index.delete(gone + [5, 6]) == 50 and index.delete(gone) == 0
    assert len(index) == 250 and not index.ids() & set(gone) and 1100 not in index
    for k in (1, 10, 250, 1000):  # never returned, at any depth, and min(k, len) answers each
        rows = index.search(vectors[90:110], k)
        assert all(len(row) == min(k, 250) for row in rows)
        assert not {i for row in rows for i, _ in row} & set(gone)
    assert index.search(vectors[:1], 0) == [[]] and index.search(np.zeros((0, DIM)), 3) == []


@pytest.mark.parametrize("kind", KINDS)
def test_the_last_vector_given_for_an_id_wins(kind: str) -> None:
    v = unit(np.random.default_rng(11), 3)
    index = VectorIndex(DIM, exact_limit=KINDS[kind])
    index.upsert([7, 8, 7], v)
    assert len(index) == 2
    assert index.search(v[2:3], 1)[0][0] == (7, pytest.approx(1.0, abs=PRECISION[kind]))
    with pytest.raises(ValueError):
        index.upsert([-3], v[:1])


def test_switches_kind_by_size_with_hysteresis() -> None:
    rng = np.random.default_rng(12)
    vectors = unit(rng, 700)
    index = VectorIndex(DIM, exact_limit=500)
    index.upsert(range(400), vectors[:400])
    assert index.kind == "flat"
    index.upsert(range(400, 500), vectors[400:500])
    assert index.kind == "flat"  # at the limit, not over it
    index.upsert(range(500, 700), vectors[500:700])
    assert index.kind == "hnsw" and len(index) == 700 and index.tombstones == 0
    assert index.search(vectors[650:651], 1)[0][0][0] == 650
    index.delete(range(0, 300))  # 400 left: under the limit, not well under it
    assert index.kind == "hnsw" and len(index) == 400
    index.delete(range(300, 460))  # 240 left: under half the limit
    assert index.kind == "flat" and len(index) == 240 and index.tombstones == 0
    assert index.ids() == set(range(460, 700))
    live = {i: vectors[i] for i in range(460, 700)}
    assert [[i for i, _ in row] for row in index.search(vectors[:5], 10)] == exact(live, vectors[:5], 10)


@pytest.mark.parametrize("kind", KINDS)
def test_compaction_drops_tombstones(kind: str) -> None:
    rng = np.random.default_rng(13)
    vectors = unit(rng, 1000)
    index = VectorIndex(DIM, exact_limit=KINDS[kind])
    index.upsert(range(1000), vectors)
    index.delete(range(0, 150))
    assert index.tombstones == 150 and len(index) == 850  # 15 %: kept, searches skip them
    assert not returned(index, vectors[:150], 20) & set(range(150))
    index.delete(range(150, 210))  # 21 % of the stored vectors: compacted
    assert index.tombstones == 0 and len(index) == 790 and index.kind == kind
    for _ in range(3):  # replacing leaves tombstones too
        index.upsert(range(300, 400), unit(rng, 100))
    assert index.tombstones < 0.2 * (len(index) + index.tombstones)
    live = {i: vectors[i] for i in range(210, 1000)}
    assert not returned(index, vectors[:300], 50) & set(range(210))
    (row,) = index.search(vectors[500:501], 1)
    assert row[0][0] == 500
    assert index.search(vectors[500:501], 790)[0][-1][0] in live  # everything, dead ones excluded


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip_with_tombstones(kind: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    vectors = unit(rng, 600)
    index = VectorIndex(DIM, generation=42, exact_limit=KINDS[kind])
    index.upsert(range(600), vectors)
    index.delete(range(0, 600, 7))
    index.upsert([1, 2], unit(rng, 2))
    assert index.tombstones > 0
    index.save(tmp_path / "x.faiss")
    loaded = VectorIndex.load(tmp_path / "x.faiss", DIM, exact_limit=KINDS[kind])
    assert loaded.kind == kind and loaded.generation == 42
    assert loaded.ids() == index.ids() and loaded.tombstones == index.tombstones
    queries = unit(rng, 20)
    assert loaded.search(queries, 10) == index.search(queries, 10)
    assert loaded.search(queries, 600) == index.search(queries, 600)
    loaded.delete([3])  # the loaded index goes on as usual
    loaded.upsert([7000], vectors[3:4])
    assert loaded.search(vectors[3:4], 1)[0][0][0] == 7000 and 3 not in loaded


@pytest.mark.parametrize("kind", KINDS)
def test_a_scrubbing_delete_leaves_no_vector_in_the_file(kind: str, tmp_path: Path) -> None:
    """A deleted vector stays in the index's storage (a tombstone) until a compaction, so in the
    saved file: an erased person's sentences could be read back from it. Deleted with `scrub`,
    the vectors no id holds any more are zeros at once; one another id still holds stays, and
    searches answer as before."""
    rng = np.random.default_rng(15)
    vectors = unit(rng, 400)
    vectors[399] = vectors[0]  # id 399 says the same sentence as id 0
    index = VectorIndex(DIM, exact_limit=KINDS[kind])
    index.upsert(range(400), vectors)
    index.delete(range(0, 10), scrub=True)  # 2.5 %: no compaction
    index.delete(range(10, 20))
    assert index.tombstones == 19 and len(index) == 380
    index.save(tmp_path / "x.faiss")
    raw = faiss.read_index(str(tmp_path / "x.faiss"))
    inner = faiss.downcast_index(raw.index)
    total = int(raw.ntotal)
    if kind == "hnsw":
        storage = faiss.downcast_index(inner.storage)
        held = faiss.rev_swig_ptr(storage.codes.data(), total * storage.code_size).view(np.float16)
    else:
        held = faiss.rev_swig_ptr(inner.get_xb(), total * DIM)
    held = held.reshape(total, DIM).astype(np.float32)
    closest = (stored(vectors, kind) @ held.T).max(axis=1)
    assert (closest[0:1] > 1 - PRECISION[kind] * 10).all()  # id 399 still holds it
    assert (closest[1:10] < 0.99).all()  # scrubbed
    assert (closest[10:20] > 1 - PRECISION[kind] * 10).all()  # a plain delete keeps them until compaction
    loaded = VectorIndex.load(tmp_path / "x.faiss", DIM, exact_limit=KINDS[kind])
    queries = vectors[20:60]
    assert loaded.search(queries, 10) == index.search(queries, 10)
    assert [row[0][0] for row in loaded.search(queries, 1)] == list(range(20, 60))
    assert [i for i, _ in loaded.search(vectors[:1], 2)[0]][:1] == [399]


@pytest.mark.parametrize("damage", ["kind", "total", "count", "vectors", "ids_digest", "format",
                                    "generation"])
def test_stamp_mismatches_are_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "x.faiss"
    index = VectorIndex(DIM, exact_limit=0)
    index.upsert(range(50), unit(np.random.default_rng(15), 50))
    index.delete([3])
    index.save(path)
    meta_path = tmp_path / "x.faiss.json"
    meta = json.loads(meta_path.read_text())
    meta.update({"kind": {"kind": "flat"}, "total": {"total": 49}, "count": {"count": 50},
                 "vectors": {"vectors": 50}, "ids_digest": {"ids_digest": "0" * 32},
                 "format": {"format": 2}, "generation": {"generation": "7"}}[damage])
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(IndexFileError):
        VectorIndex.load(path, DIM)


@pytest.mark.parametrize("version", ["exact_only", "format_2"])
def test_files_of_older_formats_are_refused(tmp_path: Path, version: str) -> None:
    """Older files labelled vectors by id (one row per id): the service rebuilds them."""
    vectors = unit(np.random.default_rng(16), 20)
    old = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM)) if version == "exact_only" else faiss.IndexIDMap(
        faiss.IndexFlatIP(DIM))
    old.add_with_ids(vectors, np.arange(100, 120, dtype=np.int64))
    faiss.write_index(old, str(tmp_path / "x.faiss"))
    meta: dict[str, object] = {"dim": 16, "generation": 5, "count": 20}
    if version == "format_2":
        meta.update(format=2, kind="flat", total=20)
    (tmp_path / "x.faiss.json").write_text(json.dumps(meta))
    with pytest.raises(IndexFileError):
        VectorIndex.load(tmp_path / "x.faiss", DIM)


def test_hnsw_recall_at_10_with_the_production_parameters() -> None:
    """Recall@10 against exact search on clustered data, before and after deletions."""
    rng = np.random.default_rng(17)
    dim, n = 128, 4000
    data = clustered(rng, n + 200, dim)
    vectors, queries = data[:n], data[n:]
    index = VectorIndex(dim, exact_limit=1000)  # production HNSW parameters, smaller switch point
    for start in range(0, n, 500):  # arrives in batches, crossing the limit on the way
        index.upsert(range(start, start + 500), vectors[start:start + 500])
    assert index.kind == "hnsw" and index.hnsw == HNSW_PARAMS
    live = dict(enumerate(vectors))

    def recall() -> float:
        hits = [{i for i, _ in row} for row in index.search(queries, 10)]
        truth = exact(live, queries, 10)
        return float(np.mean([len(h & set(t)) / 10 for h, t in zip(hits, truth, strict=True)]))

    assert recall() >= 0.98
    gone = rng.choice(n, size=int(0.15 * n), replace=False).tolist()
    index.delete(gone)
    for i in gone:
        del live[i]
    assert index.tombstones == len(gone)
    assert recall() >= 0.98


def test_a_search_may_walk_the_graph_less_deeply() -> None:
    """`ef_search` holds for one search only: a walk of 10 loses neighbours that 512 finds."""
    rng = np.random.default_rng(17)
    dim, n = 128, 4000
    data = clustered(rng, n + 200, dim)
    vectors, queries = data[:n], data[n:]
    index = VectorIndex(dim, exact_limit=1000)
    for start in range(0, n, 500):
        index.upsert(range(start, start + 500), vectors[start:start + 500])
    truth = exact(dict(enumerate(vectors)), queries, 10)

    def recall(**options: int) -> float:
        hits = [{i for i, _ in row} for row in index.search(queries, 10, **options)]
        return float(np.mean([len(h & set(t)) / 10 for h, t in zip(hits, truth, strict=True)]))

    shallow, deep = recall(ef_search=10), recall()
    assert 0.9 <= shallow < deep and deep >= 0.99
    assert index.hnsw == HNSW_PARAMS  # the index's own parameter is untouched
    allowed = range(0, n, 2)  # the filtered path walks as deep as asked, too
    rows = index.search(queries[:20], 10, allowed=allowed, ef_search=10)
    assert all(len(row) == 10 and all(i % 2 == 0 for i, _ in row) for row in rows)


def test_collection_on_hnsw_matches_a_fresh_exact_build() -> None:
    rng = np.random.default_rng(18)
    docs = {d: unit(rng, 3) for d in range(80)}
    hnsw, fresh = Collection(DIM), Collection(DIM)
    hnsw.index = VectorIndex(DIM, exact_limit=0)
    for d, vecs in docs.items():
        hnsw.upsert(d, [3 * d, 3 * d + 1, 3 * d + 2], vecs)
    for d in range(0, 80, 4):
        hnsw.delete(d)
    for d, vecs in docs.items():
        if d % 4:
            fresh.upsert(d, [3 * d, 3 * d + 1, 3 * d + 2], stored(vecs, "hnsw"))
    assert hnsw.index.kind == "hnsw" and fresh.index.kind == "flat"
    queries = unit(rng, 3)
    for allowed in (None, set(range(1, 80, 2))):
        expected = [(h.doc_id, round(h.score, 5)) for h in fresh.search(queries, 10, allowed=allowed)]
        assert [(h.doc_id, round(h.score, 5)) for h in hnsw.search(queries, 10, allowed=allowed)] == expected


@pytest.mark.parametrize("kind_limit", [10_000, 50])
def test_allowed_ids_are_searched_inside_faiss(kind_limit: int) -> None:
    """An `allowed` filter returns the allowed ids' true nearest neighbours (flat and HNSW, small
    and large allowed shares), never another id."""
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(400, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(16, exact_limit=kind_limit)
    index.upsert(range(400), vectors)
    index.delete([5, 6, 7])
    query = vectors[:3]
    for allowed in ({1, 2, 3, 5, 300}, set(range(0, 400, 2)), set(range(400))):
        live = sorted(allowed - {5, 6, 7})
        truth = np.asarray(live)[np.argsort(-(query @ vectors[live].T), axis=1)[:, :10]]
        got = index.search(query, 10, allowed=allowed)
        assert [[i for i, _ in row] for row in got] == truth.tolist()


# ---------------------------------------------------------------- identical vectors: one row, many ids


def with_copies(rng: np.random.Generator, base: np.ndarray, n: int) -> np.ndarray:
    """`n` vectors: every row of `base` once, then exact copies of them, the popular ones most often
    (weight 1/rank, as people write "Je parle français"), shuffled."""
    weight = 1.0 / np.arange(1, len(base) + 1)
    extra = rng.choice(len(base), size=n - len(base), p=weight / weight.sum())
    return np.concatenate([base, base[extra]])[rng.permutation(n)]


def ranked(vectors: np.ndarray, queries: np.ndarray, k: int, allowed: set[int] | None = None,
           ids: np.ndarray | None = None) -> list[list[int]]:
    """The exact answer: best cosine first, ties (identical vectors) by id."""
    ids = np.arange(len(vectors)) if ids is None else ids
    keep = np.asarray([allowed is None or int(i) in allowed for i in ids], dtype=bool)
    ids, vectors = ids[keep], vectors[keep]
    return [ids[np.lexsort((ids, -np.round(vectors @ q, 5)))][:k].tolist() for q in queries]


@pytest.mark.parametrize("kind", KINDS)
def test_identical_vectors_are_stored_once_and_answer_for_every_id(kind: str) -> None:
    v = unit(np.random.default_rng(20), 8)
    index = VectorIndex(DIM, exact_limit=KINDS[kind])
    index.upsert(range(10, 20), np.repeat(v[:1], 10, axis=0))
    index.upsert([5, 30, 40, 60, 61, 62, 63], v[[1, 2, 0, 4, 5, 6, 7]])  # 40: the same vector again
    assert index.kind == kind and len(index) == 17 and index.vectors == 7 and index.tombstones == 0
    (hits,) = index.search(v[:1], 20)
    assert len(hits) == 17 and [i for i, _ in hits[:11]] == [*range(10, 20), 40]
    assert len({s for _, s in hits[:11]}) == 1 and hits[0][1] == pytest.approx(1.0, abs=PRECISION[kind])
    assert [i for i, _ in index.search(v[:1], 3)[0]] == [10, 11, 12]  # ties by id, k respected
    assert index.delete([10, 11]) == 2 and index.vectors == 7 and index.tombstones == 0
    assert index.search(v[:1], 1)[0][0][0] == 12 and 10 not in index
    index.upsert([12], v[3:4])  # one id changes vector: the others keep theirs
    assert index.search(v[3:4], 1)[0][0][0] == 12 and index.vectors == 8
    assert [i for i, _ in index.search(v[:1], 8)[0]] == [*range(13, 20), 40]
    index.delete([*range(13, 20), 40])  # the last holders gone: the vector is a tombstone
    assert index.vectors == 7 and index.tombstones == 1 and len(index) == 7  # 1/8: not compacted
    assert not returned(index, v, 10) & {10, 11, *range(13, 20), 40}
    index.upsert([50], v[:1])  # and comes back, stored anew
    assert index.search(v[:1], 1)[0][0] == (50, pytest.approx(1.0, abs=PRECISION[kind]))
    assert index.vectors == 8


@pytest.mark.parametrize("kind", KINDS)
def test_vectors_equal_in_float16_are_one_vector(kind: str, tmp_path: Path) -> None:
    """HNSW stores float16, so "the same vector" means the same float16 bytes in both kinds (the
    same text encoded in two batches may differ in its last float32 bits), saved and loaded too."""
    base = stored(unit(np.random.default_rng(26), 3), "hnsw")  # exact in float16
    nudged = np.nextafter(base, np.float32(2))  # one float32 step away: the same float16
    index = VectorIndex(DIM, exact_limit=KINDS[kind])
    index.upsert([1, 2], base[:2])
    index.upsert([3, 4], nudged[:2])
    assert index.vectors == 2 and [i for i, _ in index.search(base[:1], 2)[0]] == [1, 3]
    index.save(tmp_path / "x.faiss")
    loaded = VectorIndex.load(tmp_path / "x.faiss", DIM, exact_limit=KINDS[kind])
    loaded.upsert([5], nudged[1:2])
    loaded.delete([1, 3])  # base[0]'s last holders: a tombstone, and no other row is lost
    assert loaded.vectors == 1 and [i for i, _ in loaded.search(base[1:2], 3)[0]] == [2, 4, 5]


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_may_swap_and_share_vectors(kind: str) -> None:
    v = unit(np.random.default_rng(21), 4)
    index = VectorIndex(DIM, exact_limit=KINDS[kind])
    index.upsert([1, 2], v[:2])
    index.upsert([1, 2], v[[1, 0]])  # swapped: both vectors stay, nothing is deleted
    assert index.vectors == 2 and index.tombstones == 0
    assert index.search(v[:1], 1)[0][0][0] == 2 and index.search(v[1:2], 1)[0][0][0] == 1
    index.upsert([3, 4, 5, 1], v[[2, 2, 2, 2]])  # three new ids and a moved one on one new vector
    assert index.vectors == 2 and len(index) == 5  # v[1] lost its only id (and was compacted away)
    assert [i for i, _ in index.search(v[2:3], 4)[0]] == [1, 3, 4, 5]


@pytest.mark.parametrize("kind_limit", [10_000, 50])
def test_allowed_filters_with_identical_vectors(kind_limit: int) -> None:
    """Filters of every size over ids sharing vectors: only allowed ids, min(k, allowed held) of
    them, the exact answer (ties by id) whether the filter is applied inside FAISS or after it."""
    rng = np.random.default_rng(22)
    vectors = with_copies(rng, unit(rng, 300), 600)
    index = VectorIndex(DIM, exact_limit=kind_limit)
    index.upsert(range(600), vectors)
    gone = {5, 6, 7, *range(100, 130)}
    index.delete(sorted(gone))
    assert index.vectors < 300 < len(index) and index.kind == ("flat" if kind_limit > 300 else "hnsw")
    queries = np.concatenate([vectors[[0, 1, 2]], unit(rng, 3)])
    far = np.argsort(vectors @ queries[3])[:200]  # the 200 least like query 3: deep under its top
    for allowed in ({1, 2, 3, 5, 300}, set(range(0, 600, 7)), set(range(0, 600, 2)), set(range(600)) - {8, 9},
                    set(far.tolist()), {int(i) for i in np.flatnonzero((vectors == vectors[0]).all(1))}):
        live = allowed - gone
        for k in (1, 10, 40):
            for given in (allowed, np.asarray(sorted(allowed)), sorted(allowed)):
                got = index.search(queries, k, allowed=given)
                assert all(len(row) == min(k, len(live)) for row in got)
                exact = ranked(stored(vectors, index.kind), queries, k, live)
                assert [[i for i, _ in row] for row in got] == exact


def test_hnsw_recall_with_many_identical_vectors() -> None:
    """Recall@10 against exact search when a large share of the vectors are copies (cliques of
    identical vectors used to fill each other's neighbour lists and wall queries out)."""
    rng = np.random.default_rng(23)
    dim, n = 64, 6000
    base = clustered(rng, 2600, dim)
    vectors, queries = with_copies(rng, base[:2400], n), base[2400:]  # 60 % copies
    popular = base[:20] + rng.normal(size=(20, dim)) * 0.1 / np.sqrt(dim)  # near the copied ones
    queries = np.concatenate([queries, popular / np.linalg.norm(popular, axis=1, keepdims=True)])
    index = VectorIndex(dim, exact_limit=1000)  # production HNSW parameters, smaller switch point
    for start in range(0, n, 1500):
        index.upsert(range(start, start + 1500), vectors[start:start + 1500])
    assert index.kind == "hnsw" and index.vectors == 2400 and len(index) == n

    def recall() -> float:
        """Tie-aware: an answer counts when its true (float32) cosine is at least the true 10th."""
        found = index.search(queries, 10)
        truth = np.sort(queries @ vectors[sorted(index.ids())].T, axis=1)[:, -10]
        assert all(len(row) == 10 for row in found)
        return float(np.mean([sum(float(q @ vectors[i]) >= t - 1e-5 for i, _ in row) / 10
                              for q, row, t in zip(queries, found, truth, strict=True)]))

    assert recall() >= 0.98
    index.delete(rng.choice(n, size=n // 5, replace=False).tolist())
    assert recall() >= 0.98


@pytest.mark.parametrize("kind", KINDS)
def test_tombstones_and_compaction_count_vectors_not_ids(kind: str) -> None:
    rng = np.random.default_rng(24)
    base = unit(rng, 200)
    vectors = with_copies(rng, base, 1000)
    index = VectorIndex(DIM, exact_limit=KINDS[kind])
    index.upsert(range(1000), vectors)
    assert index.vectors == 200 and index.tombstones == 0
    popular = np.flatnonzero((vectors == vectors[0]).all(1))
    assert len(popular) > 1
    index.delete(popular[1:].tolist())  # holders gone, the vector still held by one id
    assert index.tombstones == 0 and index.vectors == 200
    rows_of = [np.flatnonzero((vectors == b).all(1)) for b in base]
    singles = [r for r in rows_of if len(r) == 1][:30]  # 30 of the 200 vectors lose their only id
    index.delete([int(r[0]) for r in singles])
    assert index.tombstones == 30 and index.vectors == 170
    index.delete([int(r[0]) for r in [r for r in rows_of if len(r) == 1][30:45]])  # 45/200 > 20 %
    assert index.tombstones == 0 and index.vectors == 155 and index.kind == kind
    live = np.asarray(sorted(index.ids()))
    queries = vectors[live[:12]]
    got = [[i for i, _ in row] for row in index.search(queries, 10)]
    assert got == ranked(vectors[live], queries, 10, ids=live)


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip_with_identical_vectors(kind: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(25)
    vectors = with_copies(rng, unit(rng, 150), 600)
    index = VectorIndex(DIM, generation=9, exact_limit=KINDS[kind])
    index.upsert(range(600), vectors)
    index.delete(range(0, 600, 3))
    index.upsert([1, 2], unit(rng, 2))
    index.save(tmp_path / "x.faiss")
    loaded = VectorIndex.load(tmp_path / "x.faiss", DIM, exact_limit=KINDS[kind])
    assert (loaded.kind, loaded.generation, loaded.ids(), loaded.vectors, loaded.tombstones) == (
        index.kind, 9, index.ids(), index.vectors, index.tombstones)
    queries = np.concatenate([vectors[:5], unit(rng, 5)])
    for k in (10, 600):
        assert loaded.search(queries, k) == index.search(queries, k)
        assert loaded.search(queries, k, allowed=range(0, 600, 5)) == index.search(queries, k,
                                                                                   allowed=range(0, 600, 5))
    loaded.upsert([0, 3], vectors[[4, 4]])  # the loaded index goes on: the copies join their vector
    assert loaded.vectors == index.vectors and {0, 3} <= {i for i, _ in loaded.search(vectors[4:5], 600)[0]}


@pytest.mark.parametrize("damage", ["missing", "truncated", "other_ids"])
def test_damaged_ids_files_are_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "x.faiss"
    rng = np.random.default_rng(26)
    index = VectorIndex(DIM)
    index.upsert(range(30), with_copies(rng, unit(rng, 10), 30))
    index.save(path)
    ids_path = tmp_path / "x.faiss.ids"
    if damage == "missing":
        ids_path.unlink()
    elif damage == "truncated":
        ids_path.write_bytes(ids_path.read_bytes()[:-16])
    else:  # another index's ids, of the same size
        other = VectorIndex(DIM)
        other.upsert(range(100, 130), with_copies(rng, unit(rng, 10), 30))
        other.save(tmp_path / "y.faiss")
        ids_path.write_bytes((tmp_path / "y.faiss.ids").read_bytes())
    with pytest.raises(IndexFileError):
        VectorIndex.load(path, DIM)


def test_an_empty_index_round_trips(tmp_path: Path) -> None:
    index = VectorIndex(DIM, generation=3)
    index.upsert([1, 2], unit(np.random.default_rng(27), 2))
    index.delete([1, 2])
    index.save(tmp_path / "x.faiss")
    loaded = VectorIndex.load(tmp_path / "x.faiss", DIM)
    assert len(loaded) == 0 and loaded.vectors == 0 and loaded.generation == 3
    assert loaded.search(unit(np.random.default_rng(28), 1), 5) == [[]]


@pytest.mark.parametrize("seed", range(20))
def test_top_k_is_the_start_of_a_stable_sort(seed: int) -> None:
    """The exact search's top k, ties included (scores drawn from a few values half the time),
    is what sorting every row would give."""
    rng = np.random.default_rng(seed)
    width = int(rng.integers(1, 400))
    scores = (rng.integers(0, 5, size=(3, width)) if seed % 2 else rng.random((3, width))).astype(np.float32)
    if seed % 5 == 0:  # a NaN (no path makes one today): sorted last, as argsort does
        scores[1, rng.integers(0, width)] = np.nan
    for k in sorted({1, 2, max(1, width // 10), width // 4 + 1, width}):
        assert np.array_equal(top_k(scores, min(k, width)),
                              np.argsort(-scores, axis=1, kind="stable")[:, :min(k, width)])
