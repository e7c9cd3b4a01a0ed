"""FAISS index and collections: add, remove, save, load, rebuild equivalence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from matcher.engine import Collection
from matcher.index import IndexFileError, VectorIndex

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
    assert c.statements_of == {1: [12]} and len(c.index) == 1
    c.delete(1)
    assert len(c) == 0 and len(c.index) == 0 and c.owner == {}


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
