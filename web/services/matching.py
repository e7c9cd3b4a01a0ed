"""Matching service: keeps the hybrid indexes and the FAISS collections in step with the database.

Proposals rank with the hybrid ranker (matcher/hybrid.py: USE + e5 + BM25 + character n-grams),
the very code scripts/rank.py runs: each current declaration (its non-negated statements) and each
need (title + description) has one stored `HybridArtefact`, and each process keeps one HybridIndex
per collection built from those rows. The FAISS collections of statement vectors (matcher/engine.py)
serve the statement-pair searches (`search`) and the explanations' cosines.

The database is the truth. Every write that changes what can be matched adds an IndexEvent row in
the same transaction; each process applies the events it has not seen before searching, so every
gunicorn worker (and every machine) follows the same database. The index files under the
instance folder are only a cache: missing, truncated or out-of-date files are rebuilt from the
stored vectors, without re-encoding any text.
"""

from __future__ import annotations

import ctypes
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import event, func, insert
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col, delete, select

from matcher.analysis import Analysis, Analyzer, get_analyzer
from matcher.embeddings import Embedder, RecentVectors, get_embedder
from matcher.engine import Collection, Hit
from matcher.hybrid import (
    EXACT_DOCS,
    Document,
    DocumentArtefact,
    Encoders,
    HybridIndex,
    Neighbours,
    RankedDoc,
    encoder_spec,
    get_encoders,
    make_artefacts,
    negated_clause,
    searched_text,
    use_vectors_of,
)
from matcher.index import IndexFileError
from matcher.pipeline import (
    Models,
    PreparedDeclaration,
    declaration_document,
    prepare_analysed,
    statement_vectors,
)
from matcher.policy import Policy
from models import (
    HybridArtefact,
    IndexEvent,
    Need,
    NeedStatement,
    Resident,
    SkillDeclaration,
    SkillStatement,
    utcnow,
)
from web.config import Config
from web.services.audit import changes, record
from web.services.categories import categorise

log = logging.getLogger(__name__)

RESIDENTS = "residents"
NEEDS = "needs"
# Save the index files when they lag this many events or seconds behind the database; but never
# spend more than 1/SAVE_COST_RATIO of the time saving: a save costs O(index), ~5 s of write_index at
# 100,000 residents, and a bulk ingest (256 events a batch) spent 21 % of its time saving.
SAVE_EVERY_EVENTS = 500
SAVE_EVERY_SECONDS = 300.0
SAVE_COST_RATIO = 20.0
# Documents encoded per call by the batch paths (bulk import, artefact rebuilds).
INGEST_BATCH = 256
# Stored artefacts read per query when an index is rebuilt (~25 KB each).
ARTEFACT_PAGE = 2_000
# A ranking filtered by an `Eligibility` first fetches this many times the documents wanted (at
# least OVERFETCH_MIN more), and asks the database about those only.
OVERFETCH = 2
OVERFETCH_MIN = 50


@dataclass(frozen=True)
class Eligibility:
    """A filter of documents decided by the database (valid consent, what a caller may read),
    asked as `among(ids)` (the eligible ones among a few ids: one small query) or `every()` (all
    of them). At 100,000 residents listing every eligible id cost more than ranking them."""

    among: Callable[[Sequence[int]], set[int]]
    every: Callable[[], set[int]]


def _content(document: Document) -> tuple[str, str | None, tuple[str, ...], bool]:
    """What an artefact is made from (not the id)."""
    return (document.text, document.title, document.segments, document.searched)


def need_document(need: Need) -> Document:
    """The hybrid ranker's document of a need: as scripts/rank.py reads a corpus line; searched
    for residents with its own text (`need_query`)."""
    return need_text_document(need.id or 0, need.title, need.description or "")


def need_text_document(doc_id: int, title: str, description: str) -> Document:
    """`need_document` of a need not written yet (a bulk import encodes ahead: see `prebuilt`)."""
    return Document(doc_id, description, title, searched=True)


def need_query(need: Need) -> str:
    """What a need searches residents with: its title and description."""
    return searched_text(need_document(need))


def to_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def from_blobs(blobs: Sequence[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dim)


class MatchingService:
    """One per process: the model, the analyzer and the two collections."""

    def __init__(self) -> None:
        self.embedder: Embedder | None = None
        self.embedder_spec = ""
        self.analyzer: Analyzer | None = None
        self.collections: dict[str, Collection] = {}
        self.encoders: Encoders | None = None
        self.hybrid: dict[str, HybridIndex] = {}
        # Documents scored exhaustively by the hybrid ranker; above, candidates first (tests lower it).
        self.hybrid_exact_docs = EXACT_DOCS
        self._hybrid_generation = 0
        self.index_dir: Path | None = None
        self.min_similarity = 0.25
        self.proposals_per_need = 5
        self.proposals_per_resident = 3
        self.policy = Policy()
        self._lock = threading.RLock()
        self._saved_generation = 0
        self._mark = "0"  # which database the collections follow (`_event_mark`), saved beside them
        self._saved_at = 0.0
        self._save_seconds = 0.0  # how long the last save took
        # Artefacts encoded ahead of a write (see `prebuilt`), by document content.
        self._prebuilt: dict[tuple[str, str | None, tuple[str, ...], bool], bytes] = {}

    # ------------------------------------------------------------------ set-up

    def configure(self, embedder_spec: str, index_dir: Path, min_similarity: float,
                  proposals_per_need: int = 5, proposals_per_resident: int = 3,
                  policy: Policy | None = None, encoders: str | None = None) -> None:
        """Load the models and the analyzer (once per process) and point at the index files.

        `encoders` ("use+e5" or "use") defaults to RELAIS_ENCODERS, read as scripts/rank.py reads it."""
        self.embedder = get_embedder(embedder_spec)
        self.embedder_spec = embedder_spec
        self.encoders = get_encoders(encoder_spec(encoders))
        self.hybrid = {}
        self._hybrid_generation = 0
        self.analyzer = get_analyzer()
        self.index_dir = index_dir
        self.min_similarity = min_similarity
        self.proposals_per_need = proposals_per_need
        self.proposals_per_resident = proposals_per_resident
        self.policy = policy or Policy()
        self.collections = {}

    def configure_from(self, config: Config) -> None:
        """Configure from the deployment's settings (the app factory and the scripts)."""
        self.configure(config.embedder, config.index_dir, config.min_similarity,
                       config.proposals_per_need, config.proposals_per_resident, config.policy())

    @property
    def dim(self) -> int:
        assert self.embedder is not None, "MatchingService.configure() was not called"
        return self.embedder.dim

    def index_path(self, name: str) -> Path:
        """Index files live in a folder per model: vectors of two models never mix."""
        assert self.index_dir is not None and self.embedder is not None
        model = re.sub(r"[^A-Za-z0-9._-]+", "_", self.embedder.name)
        return self.index_dir / model / f"{name}.faiss"

    def _mark_path(self) -> Path:
        return self.index_path(RESIDENTS).with_name("database.txt")

    def _saved_mark(self) -> str | None:
        try:
            return self._mark_path().read_text(encoding="utf-8").strip()
        except OSError:
            return None

    def load_or_rebuild(self, session: Session) -> str:
        """Open the index files, or rebuild them from the database; say which happened."""
        with self._lock:
            self.build_missing_artefacts(session)
            if self.reencode_stale(session):
                self.rebuild(session)
                return "re-encoded"
            try:
                loaded = {name: Collection.load(self.index_path(name), self.dim)
                          for name in (RESIDENTS, NEEDS)}
                generations = {c.generation for c in loaded.values()}
                if len(generations) != 1 or (generation := generations.pop()) > _last_event(session):
                    raise IndexFileError("index files are ahead of, or out of step with, the database")
                if self._saved_mark() != (mark := _event_mark(session, generation)):
                    raise IndexFileError("index files made from another database (or an older Relais)")
            except IndexFileError as exc:
                log.warning("rebuilding the index from the database: %s", exc)
                self.rebuild(session)
                return "rebuilt"
            self.collections = loaded
            self._mark = mark
            self._saved_generation = self.generation
            self._saved_at = time.monotonic()
            self.sync(session)
            return "loaded"

    def reencode_stale(self, session: Session, batch: int = 256) -> int:
        """Re-encode statements stored by another model (the site changed RELAIS_EMBEDDER)."""
        assert self.embedder is not None
        count = 0
        tables: tuple[type[SkillStatement] | type[NeedStatement], ...] = (SkillStatement, NeedStatement)
        for table in tables:
            while True:
                rows: Sequence[Any] = session.exec(
                    select(table).where(col(table.embedder) != self.embedder.name).limit(batch)).all()
                if not rows:
                    break
                for row, vector in zip(rows, self.encode([r.norm for r in rows]), strict=True):
                    row.vector, row.embedder = to_blob(vector), self.embedder.name
                    session.add(row)
                session.commit()
                count += len(rows)
        if count:
            log.warning("re-encoded %d statements with %s", count, self.embedder.name)
        return count

    @property
    def generation(self) -> int:
        return min((c.generation for c in self.collections.values()), default=0)

    def rebuild(self, session: Session) -> None:
        """Rebuild both collections from the stored vectors and save them."""
        with self._lock:
            generation = _last_event(session)
            residents = Collection(self.dim, generation)
            for rid, ids, vectors in self._resident_vectors(session, None):
                residents.upsert(rid, ids, vectors)
            needs = Collection(self.dim, generation)
            for nid, ids, vectors in self._need_vectors(session, None):
                needs.upsert(nid, ids, vectors)
            self.collections = {RESIDENTS: residents, NEEDS: needs}
            self._mark = _event_mark(session, generation)
            self._rebuild_hybrid(session, generation)
            self.save()

    def save(self) -> None:
        """Write both collections to the instance folder."""
        with self._lock:
            started = time.monotonic()
            for name, collection in self.collections.items():
                collection.save(self.index_path(name))
            if self.collections:
                self._mark_path().write_text(self._mark + "\n", encoding="utf-8")
            self._saved_generation = self.generation
            self._saved_at = time.monotonic()
            self._save_seconds = self._saved_at - started

    def _save_due(self) -> bool:
        """Whether the files lag enough behind to be saved now (the events replay them anyway)."""
        lag, since = self.generation - self._saved_generation, time.monotonic() - self._saved_at
        if not lag:
            return False
        return since >= SAVE_EVERY_SECONDS or (lag >= SAVE_EVERY_EVENTS
                                               and since >= SAVE_COST_RATIO * self._save_seconds)

    def sync(self, session: Session) -> int:
        """Apply the database changes this process has not seen; return how many."""
        with self._lock:
            if not self.collections:
                self.load_or_rebuild(session)
                return 0
            last = _last_event(session)
            applied = self._sync_collections(session, last)
            self._sync_hybrid(session, last)
            return applied

    def _touched(self, session: Session, since: int) -> dict[str, set[int]]:
        events = session.exec(
            select(IndexEvent.collection, IndexEvent.doc_id).where(col(IndexEvent.id) > since)).all()
        touched: dict[str, set[int]] = {RESIDENTS: set(), NEEDS: set()}
        for collection, doc in events:
            touched.setdefault(collection, set()).add(doc)
        return touched

    def _sync_collections(self, session: Session, last: int) -> int:
        current = self.generation
        if last == current:
            return 0
        if last < current:  # the database was restored or reset under us
            self.rebuild(session)
            return 0
        touched = self._touched(session, current)
        for name, loader in ((RESIDENTS, self._resident_vectors), (NEEDS, self._need_vectors)):
            fresh: set[int] = set()
            for doc, ids, vectors in loader(session, touched[name]):
                self.collections[name].upsert(doc, ids, vectors)
                fresh.add(doc)
            for doc in touched[name] - fresh:
                self.collections[name].delete(doc, scrub=True)  # erased: vectors off the disk too
            self.collections[name].generation = last
        self._mark = _event_mark(session, last)
        if self._save_due():
            self.save()
        return sum(len(docs) for docs in touched.values())

    # ------------------------------------------------------------------ hybrid indexes

    def _rebuild_hybrid(self, session: Session, generation: int) -> None:
        """Both hybrid indexes from the stored artefacts (no encoding), packed into matrices before
        any worker forks (gunicorn preloads the app: the workers share those pages)."""
        assert self.encoders is not None, "MatchingService.configure() was not called"
        self.hybrid = {name: HybridIndex(self.encoders, exact_docs=self.hybrid_exact_docs,
                                         neighbours=self._neighbours(name))
                       for name in (RESIDENTS, NEEDS)}
        for name in (RESIDENTS, NEEDS):
            expected = session.exec(select(func.count()).select_from(HybridArtefact)
                                    .where(HybridArtefact.collection == name)).one()
            self.hybrid[name].extend(self._artefacts(session, name, None), size_hint=int(expected))
            self.hybrid[name].prepare()
        self._hybrid_generation = generation
        _release_freed_memory()

    def _neighbours(self, name: str) -> Neighbours | None:
        """The hybrid index's dense candidates (above its exact size) from this process's FAISS
        collection of statement vectors, when those are USE vectors as the ranker's are: one copy
        of the vectors per process instead of two (the ranker's own index would hold ~2 KB per
        segment, 1.2 GB at 100,000 declarations)."""
        assert self.embedder is not None and self.encoders is not None
        if self.embedder.name != self.encoders.use.name:
            return None

        def find(vectors: np.ndarray, depth: int, allowed: set[Any] | None, ef_search: int) -> set[int]:
            with self._lock:
                return self.collections[name].neighbours(vectors, depth, allowed, ef_search)
        return find

    def _sync_hybrid(self, session: Session, last: int) -> None:
        """Apply the unseen events to the hybrid indexes; their matrices are rebuilt once, lazily,
        at the next search (not per event)."""
        if not self.hybrid or last < self._hybrid_generation:
            self._rebuild_hybrid(session, last)
            return
        if last == self._hybrid_generation:
            return
        touched = self._touched(session, self._hybrid_generation)
        for name in (RESIDENTS, NEEDS):
            fresh: set[int] = set()
            for doc, artefact in self._artefacts(session, name, touched[name]):
                self.hybrid[name].upsert(doc, artefact)
                fresh.add(doc)
            for doc in touched[name] - fresh:
                self.hybrid[name].delete(doc)
        self._hybrid_generation = last

    def _artefacts(self, session: Session, collection: str, only: Iterable[int] | None
                   ) -> Iterable[tuple[int, DocumentArtefact]]:
        """Stored artefacts of `collection` that may be matched: a resident's only while their
        current declaration has a non-negated statement (an erased person's never), a need's only
        while it has statements, and only those built by this process's encoders."""
        assert self.encoders is not None
        if only is not None and not only:
            return
        if collection == RESIDENTS:
            live: Any = (select(SkillStatement.resident_id)
                         .join(SkillDeclaration, col(SkillDeclaration.id) == SkillStatement.declaration_id)
                         .where(col(SkillDeclaration.is_current).is_(True),
                                col(SkillStatement.negated).is_(False)))
            owner = SkillStatement.resident_id
        else:
            live = select(NeedStatement.need_id)
            owner = NeedStatement.need_id
        if only is not None:  # inside the subquery: SQLite otherwise reads every live statement per sync
            live = live.where(col(owner).in_(list(only)))
        query = select(HybridArtefact.doc_id, HybridArtefact.artefact).where(
            HybridArtefact.collection == collection, HybridArtefact.encoders == self.encoders.spec,
            col(HybridArtefact.doc_id).in_(live)).order_by(col(HybridArtefact.doc_id))
        # Read a page of blobs at a time (by id): 100,000 artefacts are ~2 GB of blobs.
        after = -1
        while True:
            page = session.exec(query.where(col(HybridArtefact.doc_id) > after).limit(ARTEFACT_PAGE)).all()
            for doc, blob in page:
                yield doc, DocumentArtefact.from_bytes(blob)
            if len(page) < ARTEFACT_PAGE:
                return
            after = page[-1][0]

    @contextmanager
    def prebuilt(self, documents: Sequence[Document | None]) -> Iterator[None]:
        """Encode the artefacts of `documents` (needs) now, outside any transaction; writes of
        needs with the same content inside the block use them instead of encoding (a bulk import
        keeps its write transaction, and SQLite's one write lock, short). Declarations come to
        `store_declarations` prepared instead (matcher.pipeline)."""
        assert self.encoders is not None
        present = [d for d in documents if d is not None]
        keys = [_content(d) for d in present]
        built = [a.to_bytes() for a in make_artefacts(present, self.encoders)] if present else []
        with self._lock:
            self._prebuilt.update(zip(keys, built, strict=True))
        try:
            yield
        finally:
            with self._lock:
                for key in keys:
                    self._prebuilt.pop(key, None)

    def _built(self, documents: Sequence[tuple[int, Document | None]]) -> list[tuple[int, bytes | None]]:
        """The stored form of each document's artefact: prebuilt (see `prebuilt`) or encoded now,
        in one batch; None where the document has nothing to match."""
        assert self.encoders is not None
        with self._lock:
            built = {doc: self._prebuilt[_content(d)] for doc, d in documents
                     if d is not None and _content(d) in self._prebuilt}
        todo = [(doc, d) for doc, d in documents if d is not None and doc not in built]
        artefacts = make_artefacts([d for _, d in todo], self.encoders) if todo else []
        built.update((doc, a.to_bytes()) for (doc, _), a in zip(todo, artefacts, strict=True))
        return [(doc, built.get(doc)) for doc, _ in documents]

    def _write_artefacts(self, session: Session, collection: str,
                         artefacts: Sequence[tuple[int, bytes | None]]) -> None:
        """Store the artefacts of these documents (None: the document has nothing to match)."""
        assert self.encoders is not None
        ids = [doc for doc, _ in artefacts]
        existing = {row.doc_id: row for row in session.exec(select(HybridArtefact).where(
            HybridArtefact.collection == collection, col(HybridArtefact.doc_id).in_(ids))).all()}
        for doc, blob in artefacts:
            row = existing.get(doc)
            if blob is None:
                if row is not None:
                    session.delete(row)
                continue
            if row is None:
                row = HybridArtefact(collection=collection, doc_id=doc, encoders="", artefact=b"")
            row.artefact, row.encoders, row.updated_at = blob, self.encoders.spec, utcnow()
            session.add(row)

    def build_missing_artefacts(self, session: Session, everything: bool = False,
                                batch: int = INGEST_BATCH) -> int:
        """Build the artefacts that are missing or were made by other encoders (a database from
        before migration 0009, a change of RELAIS_ENCODERS), or all of them with `everything`;
        each change is an index event, so every process follows. Returns how many were built."""
        assert self.encoders is not None
        stored = {(c, d) for c, d in session.exec(select(HybridArtefact.collection, HybridArtefact.doc_id)
                                                  .where(HybridArtefact.encoders == self.encoders.spec))}
        residents = sorted(set(session.exec(
            select(SkillStatement.resident_id)
            .join(SkillDeclaration, col(SkillDeclaration.id) == SkillStatement.declaration_id)
            .where(col(SkillDeclaration.is_current).is_(True))).all()))
        needs = sorted(set(session.exec(select(NeedStatement.need_id)).all()))
        todo_residents = [r for r in residents if everything or (RESIDENTS, r) not in stored]
        todo_needs = [n for n in needs if everything or (NEEDS, n) not in stored]
        built = len(todo_needs)
        for start in range(0, len(todo_residents), batch):
            chunk = todo_residents[start:start + batch]
            statements: dict[int, list[tuple[str, bool]]] = {r: [] for r in chunk}
            for rid, text, negated in session.exec(
                    select(SkillStatement.resident_id, SkillStatement.text, SkillStatement.negated)
                    .join(SkillDeclaration, col(SkillDeclaration.id) == SkillStatement.declaration_id)
                    .where(col(SkillDeclaration.is_current).is_(True),
                           col(SkillStatement.resident_id).in_(chunk))
                    .order_by(col(SkillStatement.resident_id), col(SkillStatement.position))).all():
                statements[rid].append((text, negated))
            documents = [(r, declaration_document(r, statements[r])) for r in chunk]
            if not everything:  # a declaration whose statements are all negated has no artefact to miss
                documents = [(r, d) for r, d in documents if d is not None]
            self._write_artefacts(session, RESIDENTS, self._built(documents))
            for r, _d in documents:
                self.mark(session, RESIDENTS, r)
            built += len(documents)
            session.commit()
        for start in range(0, len(todo_needs), batch):
            rows = session.exec(select(Need).where(col(Need.id).in_(todo_needs[start:start + batch]))).all()
            self._write_artefacts(session, NEEDS, self._built([(n.id or 0, need_document(n)) for n in rows]))
            for n in rows:
                self.mark(session, NEEDS, n.id or 0)
            session.commit()
        if built:
            log.warning("built %d hybrid artefacts with %s", built, self.encoders.spec)
        return built

    def _resident_vectors(self, session: Session, only: Iterable[int] | None
                          ) -> Iterable[tuple[int, list[int], np.ndarray]]:
        query = (
            select(SkillStatement.resident_id, SkillStatement.id, SkillStatement.norm, SkillStatement.vector)
            .join(SkillDeclaration, col(SkillDeclaration.id) == SkillStatement.declaration_id)
            .where(col(SkillDeclaration.is_current).is_(True), col(SkillStatement.negated).is_(False))
            .order_by(col(SkillStatement.resident_id), col(SkillStatement.position))
        )
        if only is not None:
            query = query.where(col(SkillStatement.resident_id).in_(list(only)))
        return self._grouped(session.exec(query).all())

    def _need_vectors(self, session: Session, only: Iterable[int] | None
                      ) -> Iterable[tuple[int, list[int], np.ndarray]]:
        query = select(NeedStatement.need_id, NeedStatement.id, NeedStatement.norm,
                       NeedStatement.vector).order_by(col(NeedStatement.need_id), col(NeedStatement.position))
        if only is not None:
            query = query.where(col(NeedStatement.need_id).in_(list(only)))
        return self._grouped(session.exec(query).all())

    def _grouped(self, rows: Sequence[tuple[int, int | None, str, bytes]]
                 ) -> Iterable[tuple[int, list[int], np.ndarray]]:
        """Statement ids and vectors per document; statements of one text get one vector.

        USE's vectors of a text differ in the last bits with the batch it was encoded in (padding
        changes the sums' order): stored copies of "je parle français" from different batches
        would each be a distinct vector to the FAISS index, forming near-duplicate cliques that
        the HNSW search cannot enter (recall@10 0.936 at 100k residents, 377k stored vectors for
        175k texts). The first stored vector of each text stands for all its copies."""
        groups: dict[int, tuple[list[int], list[bytes]]] = {}
        first_of: dict[str, bytes] = {}
        for doc, sid, norm, blob in rows:
            ids, blobs = groups.setdefault(doc, ([], []))
            ids.append(int(sid or 0))
            blobs.append(first_of.setdefault(norm, blob))
        for doc, (ids, blobs) in groups.items():
            yield doc, ids, from_blobs(blobs, self.dim)

    # ------------------------------------------------------------------ writes

    def restate(self, session: Session, batch: int = INGEST_BATCH) -> tuple[int, int]:
        """Analyse again every current declaration in matching and every need in it, and rewrite
        their statements (negation, languages, categories, vectors), artefacts and index events:
        after a change of the analysis (`scripts/reindex.py --statements`), since statements are
        derived from the texts, which the database keeps. Languages the new analysis finds are
        added to the profile (none removed: a worker may have ticked them). Returns how many
        declarations and needs were analysed again."""
        assert self.analyzer is not None, "MatchingService.configure() was not called"
        declarations = sorted(set(session.exec(
            select(SkillStatement.declaration_id)
            .join(SkillDeclaration, col(SkillDeclaration.id) == SkillStatement.declaration_id)
            .where(col(SkillDeclaration.is_current).is_(True))).all()))
        for start in range(0, len(declarations), batch):
            chunk = declarations[start:start + batch]
            rows = session.exec(select(SkillDeclaration).where(col(SkillDeclaration.id).in_(chunk))
                                .order_by(col(SkillDeclaration.id))).all()
            analyses = self.analyzer.analyze_many([d.text for d in rows])
            session.exec(delete(SkillStatement).where(col(SkillStatement.declaration_id).in_(chunk)))
            self.store_declarations(session, list(zip(rows, analyses, strict=True)))
            people = {r.id: r for r in session.exec(select(Resident).where(
                col(Resident.id).in_([d.resident_id for d in rows]))).all()}
            for declaration, analysis in zip(rows, analyses, strict=True):
                person = people.get(declaration.resident_id)
                if person is not None and not set(analysis.languages) <= set(person.languages):
                    before = list(person.languages)
                    person.languages = list(dict.fromkeys([*person.languages, *analysis.languages]))
                    session.add(person)
                    record(session, None, "resident.restate", "resident", person.id,
                           changes=changes({"languages": before}, {"languages": person.languages}))
            session.commit()
        needs = sorted(set(session.exec(select(NeedStatement.need_id)).all()))
        for start in range(0, len(needs), batch):
            for need in session.exec(select(Need).where(col(Need.id).in_(needs[start:start + batch]))).all():
                self.store_need(session, need)
            session.commit()
        return len(declarations), len(needs)

    def analyze(self, text: str) -> Analysis:
        assert self.analyzer is not None, "MatchingService.configure() was not called"
        return self.analyzer.analyze(text)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Statement vectors of these texts (see matcher.pipeline.statement_vectors)."""
        assert self.embedder is not None, "MatchingService.configure() was not called"
        return statement_vectors(self.embedder, texts)

    def encode_search(self, collection: str, text: str, norms: list[str]) -> np.ndarray:
        """Statement vectors of `norms`, the statements of a text searched in `collection`. When
        the ranker encodes with the same model, the texts `rank` will encode for `text` go in the
        same model call and are remembered for it: one USE call instead of two per text never
        seen (11 vs 16 ms for three statements and three units, one thread)."""
        assert self.embedder is not None and self.encoders is not None
        index = self.hybrid.get(collection) if self.encoders.use is self.embedder else None
        units = index.query_units(text) if index is not None else []
        return self.encode([*norms, *units])[:len(norms)]

    def models(self) -> Models:
        """What a worker process loads to prepare declarations as this service would."""
        assert self.embedder is not None and self.encoders is not None and self.analyzer is not None
        return Models(self.embedder_spec, self.encoders.spec, self.analyzer.model)

    def prepare(self, analyses: Sequence[Analysis]) -> list[PreparedDeclaration]:
        """Statement vectors and artefacts of analysed declarations, encoded in batches."""
        assert self.embedder is not None and self.encoders is not None
        out: list[PreparedDeclaration] = []
        for start in range(0, len(analyses), INGEST_BATCH):
            out.extend(prepare_analysed(analyses[start:start + INGEST_BATCH], self.embedder, self.encoders))
        return out

    def store_declaration(self, session: Session, declaration: SkillDeclaration,
                          analysis: Analysis | PreparedDeclaration) -> int:
        """Write the declaration's statements with their vectors and its hybrid artefact (encoded
        here unless `analysis` is already prepared; caller commits). Returns how many statements."""
        return self.store_declarations(session, [(declaration, analysis)])[0]

    def store_declarations(self, session: Session,
                           items: Sequence[tuple[SkillDeclaration, Analysis | PreparedDeclaration]]
                           ) -> list[int]:
        """Many declarations at once (bulk import): the ones not prepared yet are encoded in
        batches (matcher.pipeline prepares them in worker processes); statements (one INSERT: as
        ORM objects they cost a bulk import ~0.2 ms each), artefacts and one index event each
        are written in the session's transaction (caller commits). Returns each declaration's
        number of statements."""
        assert self.embedder is not None
        if any(declaration.id is None for declaration, _ in items):
            session.flush()
        todo = [analysis for _, analysis in items if isinstance(analysis, Analysis)]
        fresh = iter(self.prepare(todo))
        counts: list[int] = []
        rows: list[dict[str, Any]] = []
        artefacts: list[tuple[int, bytes | None]] = []
        for declaration, given in items:
            prepared = next(fresh) if isinstance(given, Analysis) else given
            statements = prepared.analysis.statements
            rows.extend(
                {"declaration_id": declaration.id, "resident_id": declaration.resident_id, "position": i,
                 "text": st.text, "norm": st.norm,
                 # One decision, the ranker's too: "je suis sans voiture" is no skill to quote.
                 "negated": st.negated or negated_clause(st.text),
                 "languages": list(st.languages), "lemmas": list(st.lemmas), "vector": to_blob(vec),
                 "embedder": self.embedder.name, "category": categorise(st.text, st.lemmas)}
                for i, (st, vec) in enumerate(zip(statements, prepared.vectors, strict=True)))
            self.mark(session, RESIDENTS, declaration.resident_id)
            artefacts.append((declaration.resident_id, prepared.artefact))
            counts.append(len(statements))
        if rows:
            session.execute(insert(SkillStatement), rows)
        for start in range(0, len(artefacts), INGEST_BATCH):  # bounded IN lists
            self._write_artefacts(session, RESIDENTS, artefacts[start:start + INGEST_BATCH])
        return counts

    def store_need(self, session: Session, need: Need) -> list[NeedStatement]:
        """(Re)write the need's statements: its title, then the sentences of its text that are not
    negated."""
        assert self.embedder is not None and need.id is not None
        session.exec(delete(NeedStatement).where(col(NeedStatement.need_id) == need.id))
        assert self.analyzer is not None, "MatchingService.configure() was not called"
        title = need.title.strip()
        titled, described = self.analyzer.analyze_many([title, need.description])  # one spaCy pipe
        title_lemmas = [lemma for st in titled.statements for lemma in st.lemmas]
        parts = [(title, title, True, title_lemmas)] if title else []
        # What the need does not ask (« il ne s'agit ni de soins ni de ménage », « pas de voiture
        # nécessaire ») is no task to match or quote, as its search already leaves it out.
        parts += [(st.text, st.norm, False, list(st.lemmas)) for st in described.statements
                  if not (st.negated or negated_clause(st.text))]
        vectors = self.encode([norm for _, norm, _, _ in parts])
        rows = [
            NeedStatement(need_id=need.id, position=i, text=text, norm=norm, is_title=is_title,
                          lemmas=lemmas, vector=to_blob(vec), embedder=self.embedder.name)
            for i, ((text, norm, is_title, lemmas), vec) in enumerate(zip(parts, vectors, strict=True))
        ]
        session.add_all(rows)
        self._write_artefacts(session, NEEDS, self._built([(need.id, need_document(need))]))
        self.mark(session, NEEDS, need.id)
        return rows

    def mark(self, session: Session, collection: str, doc_id: int, op: str = "upsert") -> None:
        """Record that `doc_id` changed, so every process's index follows (a deleted document's
        hybrid artefact goes with it). The event row is written when the transaction commits
        (`_events_in_commit_order`)."""
        if op == "delete":
            session.exec(delete(HybridArtefact).where(col(HybridArtefact.collection) == collection,
                                                      col(HybridArtefact.doc_id) == doc_id))
        session.info.setdefault(_PENDING_EVENTS, []).append(IndexEvent(collection=collection, doc_id=doc_id,
                                                                       op=op))

    # ------------------------------------------------------------------ relevance

    def lend_need_vectors(self, session: Session, need: Need) -> None:
        """Hand the encoder the stored USE vectors of a need's own texts (its artefact's whole text,
        title and sentences) before residents are searched with them: the ranker then encodes only
        the clauses it cuts otherwise (at 100k, 58 % of a need's characters were found there)."""
        assert self.encoders is not None, "MatchingService.configure() was not called"
        use = self.encoders.use
        if not isinstance(use, RecentVectors) or need.id is None:
            return
        blob = session.exec(select(HybridArtefact.artefact).where(
            HybridArtefact.collection == NEEDS, HybridArtefact.doc_id == need.id)).first()
        if blob is not None:
            use.remember(*use_vectors_of(need_document(need), DocumentArtefact.from_bytes(blob)))

    def rank(self, session: Session, collection: str, text: str, depth: int,
             allowed: set[int] | Eligibility | None) -> list[RankedDoc]:
        """Documents of `collection` ranked for `text` by the hybrid ranker (after a sync): the
        code path of scripts/rank.py, restricted to `allowed`.

        An `Eligibility` is asked only about the documents the ranking puts first (a few more than
        `depth`); only when too few of them pass is the full list asked for and the ranking redone
        within it. Up to the ranker's exact size both give the same order (a filter restricts the
        results, not the scores); above it, the first way draws candidates from every document."""
        if depth <= 0:
            return []
        self.sync(session)
        index = self.hybrid[collection]
        if not isinstance(allowed, Eligibility):
            return index.search(text, depth, allowed)
        wide = max(OVERFETCH * depth, depth + OVERFETCH_MIN)
        ranked = index.search(text, wide)
        passed = allowed.among([int(r.doc_id) for r in ranked])
        kept = [r for r in ranked if r.doc_id in passed]
        # Fewer than `wide` means every document was ranked only when all of them are scored;
        # above the exact size only the query's candidates are, and the allowed ones may be elsewhere.
        exhausted = len(ranked) < wide and len(index) <= index.exact_docs
        if len(kept) >= depth or exhausted:
            return kept[:depth]
        return index.search(text, depth, allowed.every())

    def search(self, session: Session, collection: str, query_vectors: np.ndarray, depth: int,
               allowed: set[int]) -> list[Hit]:
        """Documents of `collection` whose statements best meet the query statements' vectors (after
        a sync): the statement-pair search of the FAISS collections, for "match this text"."""
        self.sync(session)
        with self._lock:
            return self.collections[collection].search(query_vectors, depth, allowed=allowed)


def _release_freed_memory() -> None:
    """Hand the heap pages freed by a rebuild back to the system: glibc keeps them otherwise (the
    artefacts read page by page, the chunks merged into matrices), and every gunicorn worker
    forked after a preload would carry them in its resident memory."""
    with suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


_PENDING_EVENTS = "relais_index_events"
# Any constant: the pg_advisory_xact_lock that orders index events (below).
_EVENT_LOCK = 0x52454C414953


@event.listens_for(OrmSession, "before_commit")
def _events_in_commit_order(session: OrmSession) -> None:
    """Write the transaction's index events last, in commit order. Every process reads the events
    above the last id it applied; on PostgreSQL an id is drawn at the insert, not at the commit, so
    an edit that inserted its event (id 3) before another transaction committed id 4 became
    visible after a process had moved past 4, and was never applied there: the person ranked on
    their old words until a restart. The rest of the transaction is flushed first (its row locks
    taken), then a transaction-scoped advisory lock lets one transaction at a time draw ids and
    commit. SQLite has one writer at a time already."""
    events = session.info.pop(_PENDING_EVENTS, None)
    if not events:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.flush()
        session.execute(sql_text("SELECT pg_advisory_xact_lock(:key)"), {"key": _EVENT_LOCK})
    session.add_all(events)


@event.listens_for(OrmSession, "after_transaction_end")
def _drop_pending_events(session: OrmSession, transaction: SessionTransaction) -> None:
    """A transaction rolled back (or a session closed) takes its events with it."""
    if transaction.parent is None:
        session.info.pop(_PENDING_EVENTS, None)


def _event_mark(session: Session, generation: int) -> str:
    """The index event a generation stands for, as a database holds it (id, document, instant):
    index files copied from another site, or from another database of the same site, carry a
    generation this database may also have reached, and were served as its own (another site's
    statements quoted for this site's residents)."""
    if not generation:
        return "0"
    row = session.exec(select(IndexEvent.collection, IndexEvent.doc_id, IndexEvent.at)
                       .where(IndexEvent.id == generation)).first()
    return f"{generation}:{row[0]}:{row[1]}:{row[2].isoformat()}" if row else f"{generation}:missing"


def _last_event(session: Session) -> int:
    return int(session.exec(select(func.max(IndexEvent.id))).one() or 0)
