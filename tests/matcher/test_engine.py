"""Collections over statements that people often write word for word, filtered by document."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from matcher.engine import TABLE_SHARE, Collection
from matcher.index import VectorIndex

DIM = 16


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def documents(rng: np.random.Generator, count: int) -> dict[int, tuple[list[int], np.ndarray]]:
    """Documents of 1-5 statements, a third of them copies of five common sentences."""
    common, docs, next_id = unit(rng, 5), {}, 0
    for doc in range(count):
        size = int(rng.integers(1, 6))
        vectors = unit(rng, size)
        copied = rng.random(size) < 0.35
        vectors[copied] = common[rng.integers(0, 5, size=int(copied.sum()))]
        docs[doc] = (list(range(next_id, next_id + size)), vectors)
        next_id += size + int(rng.integers(0, 3))  # gaps, as database ids have
    return docs


def best_pairs(docs: dict[int, tuple[list[int], np.ndarray]], query: np.ndarray,
               allowed: set[int]) -> list[tuple[int, float]]:
    """Every allowed document with its best statement's cosine, best first."""
    best = [(doc, float(np.max(vectors @ query))) for doc, (_, vectors) in docs.items() if doc in allowed]
    return sorted(best, key=lambda pair: (-round(pair[1], 5), pair[0]))


@pytest.mark.parametrize("exact_limit", [10**9, 0])
def test_filters_by_document_with_identical_statements(exact_limit: int) -> None:
    """Small and large allowed shares (gathered one by one or from the table, searched inside
    FAISS or post-filtered): only allowed documents, ranked on their true best statement."""
    rng = np.random.default_rng(30)
    docs = documents(rng, 300)
    if not exact_limit:  # HNSW stores float16: the truth is that of the stored vectors
        docs = {doc: (ids, v.astype(np.float16).astype(np.float32)) for doc, (ids, v) in docs.items()}
    collection = Collection(DIM)
    collection.index = VectorIndex(DIM, exact_limit=exact_limit)
    for doc, (ids, vectors) in docs.items():
        collection.upsert(doc, ids, vectors)
    assert collection.index.vectors < len(collection.index)  # copies are stored once
    queries = np.concatenate([docs[0][1][:1], unit(rng, 3)])
    far = [doc for doc, _ in best_pairs(docs, queries[1], set(docs))[-120:]]  # deep under the top
    for allowed in ({3, 4, 5, 999}, set(range(0, 300, 2)), set(range(300)) - {1}, set(far)):
        for qi, query in enumerate(queries):
            hits = collection.search(queries[qi:qi + 1], k=10, allowed=allowed)
            expected = best_pairs(docs, query, allowed)[:10]
            assert [h.doc_id for h in hits] == [doc for doc, _ in expected]
            assert [h.best.similarity for h in hits] == pytest.approx([s for _, s in expected], abs=1e-5)


def test_statements_of_documents_follow_writes() -> None:
    rng = np.random.default_rng(31)
    docs = documents(rng, 200)
    collection = Collection(DIM)
    for doc, (ids, vectors) in docs.items():
        collection.upsert(doc, ids, vectors)

    held = {doc: list(ids) for doc, (ids, _) in docs.items()}

    def expected(wanted: set[int]) -> list[int]:
        return sorted(sid for doc in wanted for sid in held.get(doc, ()))

    small = {7, 8, 500}  # fewer than 1/TABLE_SHARE of the documents: gathered one by one
    large = set(range(0, 200, 3)) | {500}
    assert len(small) * TABLE_SHARE < len(collection) < len(large) * TABLE_SHARE
    for wanted in (small, large, set()):
        assert sorted(collection.statements_of_docs(wanted).tolist()) == expected(wanted)
        assert sorted(collection.statements_of_docs(np.asarray(sorted(wanted))).tolist()) == expected(wanted)
    collection.upsert(9, [10_000, 10_001], unit(rng, 2))  # after a write the table is rebuilt
    collection.delete(12)
    held[9] = [10_000, 10_001]
    del held[12]
    for wanted in (large | {9, 12}, small | {9, 12}):
        assert sorted(collection.statements_of_docs(wanted).tolist()) == expected(wanted)
    assert 10_000 in collection.statements_of_docs(large | {9}).tolist()


def test_neighbours_are_the_owners_of_the_nearest_allowed_statements() -> None:
    """The hybrid ranker's dense candidates: owners of each query's `depth` nearest statements,
    exactly those of a brute-force scan, only allowed documents, for narrow and wide filters."""
    rng = np.random.default_rng(31)
    docs = documents(rng, 200)
    collection = Collection(DIM)
    for doc, (ids, vectors) in docs.items():
        collection.upsert(doc, ids, vectors)
    queries = unit(rng, 2)
    for allowed in (None, {1, 2, 3, 500}, set(range(0, 200, 3)), set(range(200)) - {7}):
        kept = set(docs) if allowed is None else allowed & set(docs)
        expected: set[int] = set()
        for query in queries:
            scored = sorted(((float(v @ query), doc) for doc, (_, vs) in docs.items() if doc in kept
                             for v in vs), reverse=True)
            expected |= {doc for _, doc in scored[:5]}
        found = collection.neighbours(queries, 5, allowed)
        assert found <= kept and found == expected


@pytest.mark.parametrize("seed", range(4))
def test_the_statement_map_follows_writes_across_compactions(seed: int, monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    """Writes, rewrites (with the same or new statement ids) and deletes, folded into the arrays
    every few documents: owners, statements, length and a reload agree with a plain dict model."""
    import matcher.engine as engine

    monkeypatch.setattr(engine, "RECENT_MIN", 3)
    monkeypatch.setattr(engine, "RECENT_SHARE", 2)
    rng = np.random.default_rng(seed)
    collection = Collection(DIM)
    model: dict[int, list[int]] = {}
    next_id = 0
    for step in range(300):
        doc = int(rng.integers(0, 40))
        if rng.random() < 0.25:
            collection.delete(doc)
            model.pop(doc, None)
        else:
            size = int(rng.integers(0, 4))
            if doc in model and rng.random() < 0.3:  # the same statements again
                ids = model[doc]
            else:
                ids, next_id = list(range(next_id, next_id + size)), next_id + size
            collection.upsert(doc, ids, unit(rng, len(ids)))
            if ids:
                model[doc] = ids
            else:
                model.pop(doc, None)
        if step % 25 == 0 or step == 299:
            owner = {sid: d for d, ids in model.items() for sid in ids}
            probe = list(range(next_id + 2))
            assert collection.owners(probe).tolist() == [owner.get(sid, -1) for sid in probe]
            assert all(collection.statements(d) == model.get(d, []) for d in range(41))
            assert len(collection) == len(model) and len(collection.index) == len(owner)
            assert sorted(collection.statements_of_docs(set(range(41))).tolist()) == sorted(owner)
    sids, owners = collection.pairs()
    assert dict(zip(sids.tolist(), owners.tolist(), strict=True)) == owner
    collection.save(tmp_path / "c.faiss")
    reloaded = Collection.load(tmp_path / "c.faiss", DIM)
    assert len(reloaded) == len(model) and all(reloaded.statements(d) == model.get(d, []) for d in range(41))
    assert reloaded.owners(list(owner)).tolist() == list(owner.values())
