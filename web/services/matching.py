"""Matching service: keeps the FAISS collections in step with the database and makes proposals.

The database is the truth. Every write that changes what can be matched adds an IndexEvent row in
the same transaction; each process applies the events it has not seen before searching, so every
gunicorn worker (and every machine) follows the same database. The index files under the
instance folder are only a cache: missing, truncated or out-of-date files are rebuilt from the
stored vectors, without re-encoding any text.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func
from sqlmodel import Session, col, delete, select

from matcher.analysis import Analysis, Analyzer, get_analyzer
from matcher.embeddings import Embedder, get_embedder
from matcher.engine import Collection, Hit
from matcher.index import IndexFileError
from matcher.policy import Policy
from models import (
    IndexEvent,
    Need,
    NeedStatement,
    SkillDeclaration,
    SkillStatement,
)
from web.config import Config

log = logging.getLogger(__name__)

RESIDENTS = "residents"
NEEDS = "needs"
# Save the index files when they lag this many events or seconds behind the database.
SAVE_EVERY_EVENTS = 500
SAVE_EVERY_SECONDS = 300.0


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
        self.analyzer: Analyzer | None = None
        self.collections: dict[str, Collection] = {}
        self.index_dir: Path | None = None
        self.min_similarity = 0.25
        self.proposals_per_need = 5
        self.proposals_per_resident = 3
        self.policy = Policy()
        self._lock = threading.RLock()
        self._saved_generation = 0
        self._saved_at = 0.0

    # ------------------------------------------------------------------ set-up

    def configure(self, embedder_spec: str, index_dir: Path, min_similarity: float,
                  proposals_per_need: int = 5, proposals_per_resident: int = 3,
                  policy: Policy | None = None) -> None:
        """Load the model and the analyzer (once per process) and point at the index files."""
        self.embedder = get_embedder(embedder_spec)
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

    def load_or_rebuild(self, session: Session) -> str:
        """Open the index files, or rebuild them from the database; say which happened."""
        with self._lock:
            if self.reencode_stale(session):
                self.rebuild(session)
                return "re-encoded"
            try:
                loaded = {name: Collection.load(self.index_path(name), self.dim)
                          for name in (RESIDENTS, NEEDS)}
                generations = {c.generation for c in loaded.values()}
                if len(generations) != 1 or generations.pop() > _last_event(session):
                    raise IndexFileError("index files are ahead of, or out of step with, the database")
            except IndexFileError as exc:
                log.warning("rebuilding the index from the database: %s", exc)
                self.rebuild(session)
                return "rebuilt"
            self.collections = loaded
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
            self.save()

    def save(self) -> None:
        """Write both collections to the instance folder."""
        with self._lock:
            for name, collection in self.collections.items():
                collection.save(self.index_path(name))
            self._saved_generation = self.generation
            self._saved_at = time.monotonic()

    def sync(self, session: Session) -> int:
        """Apply the database changes this process has not seen; return how many."""
        with self._lock:
            if not self.collections:
                self.load_or_rebuild(session)
                return 0
            last = _last_event(session)
            current = self.generation
            if last == current:
                return 0
            if last < current:  # the database was restored or reset under us
                self.rebuild(session)
                return 0
            events = session.exec(
                select(IndexEvent).where(col(IndexEvent.id) > current).order_by(col(IndexEvent.id))
            ).all()
            latest: dict[tuple[str, int], str] = {}
            for ev in events:
                latest[(ev.collection, ev.doc_id)] = ev.op
            for name, loader in ((RESIDENTS, self._resident_vectors), (NEEDS, self._need_vectors)):
                touched = {doc for (coll, doc) in latest if coll == name}
                fresh: set[int] = set()
                for doc, ids, vectors in loader(session, touched):
                    self.collections[name].upsert(doc, ids, vectors)
                    fresh.add(doc)
                for doc in touched - fresh:
                    self.collections[name].delete(doc)
                self.collections[name].generation = last
            if (last - self._saved_generation >= SAVE_EVERY_EVENTS
                    or time.monotonic() - self._saved_at >= SAVE_EVERY_SECONDS):
                self.save()
            return len(events)

    def _resident_vectors(self, session: Session, only: Iterable[int] | None
                          ) -> Iterable[tuple[int, list[int], np.ndarray]]:
        query = (
            select(SkillStatement.resident_id, SkillStatement.id, SkillStatement.vector)
            .join(SkillDeclaration, col(SkillDeclaration.id) == SkillStatement.declaration_id)
            .where(col(SkillDeclaration.is_current).is_(True), col(SkillStatement.negated).is_(False))
            .order_by(col(SkillStatement.resident_id), col(SkillStatement.position))
        )
        if only is not None:
            query = query.where(col(SkillStatement.resident_id).in_(list(only)))
        return self._grouped(session.exec(query).all())

    def _need_vectors(self, session: Session, only: Iterable[int] | None
                      ) -> Iterable[tuple[int, list[int], np.ndarray]]:
        query = select(NeedStatement.need_id, NeedStatement.id, NeedStatement.vector).order_by(
            col(NeedStatement.need_id), col(NeedStatement.position))
        if only is not None:
            query = query.where(col(NeedStatement.need_id).in_(list(only)))
        return self._grouped(session.exec(query).all())

    def _grouped(self, rows: Sequence[tuple[int, int | None, bytes]]
                 ) -> Iterable[tuple[int, list[int], np.ndarray]]:
        groups: dict[int, tuple[list[int], list[bytes]]] = {}
        for doc, sid, blob in rows:
            ids, blobs = groups.setdefault(doc, ([], []))
            ids.append(int(sid or 0))
            blobs.append(blob)
        for doc, (ids, blobs) in groups.items():
            yield doc, ids, from_blobs(blobs, self.dim)

    # ------------------------------------------------------------------ writes

    def analyze(self, text: str) -> Analysis:
        assert self.analyzer is not None, "MatchingService.configure() was not called"
        return self.analyzer.analyze(text)

    def encode(self, texts: list[str]) -> np.ndarray:
        assert self.embedder is not None, "MatchingService.configure() was not called"
        return self.embedder.encode(texts)

    def store_declaration(self, session: Session, declaration: SkillDeclaration,
                          analysis: Analysis) -> list[SkillStatement]:
        """Write the declaration's statements with their vectors (caller commits)."""
        assert self.embedder is not None
        vectors = self.encode([st.norm for st in analysis.statements])
        rows = [
            SkillStatement(
                declaration_id=declaration.id or 0,
                resident_id=declaration.resident_id,
                position=i,
                text=st.text,
                norm=st.norm,
                negated=st.negated,
                languages=list(st.languages),
                lemmas=list(st.lemmas),
                vector=to_blob(vec),
                embedder=self.embedder.name,
            )
            for i, (st, vec) in enumerate(zip(analysis.statements, vectors, strict=True))
        ]
        session.add_all(rows)
        session.add(IndexEvent(collection=RESIDENTS, doc_id=declaration.resident_id, op="upsert"))
        return rows

    def store_need(self, session: Session, need: Need) -> list[NeedStatement]:
        """(Re)write the need's statements: its title, then the sentences of its text."""
        assert self.embedder is not None and need.id is not None
        session.exec(delete(NeedStatement).where(col(NeedStatement.need_id) == need.id))
        title = need.title.strip()
        title_lemmas = [lemma for st in self.analyze(title).statements for lemma in st.lemmas]
        parts = [(title, title, True, title_lemmas)] if title else []
        parts += [(st.text, st.norm, False, list(st.lemmas))
                  for st in self.analyze(need.description).statements]
        vectors = self.encode([norm for _, norm, _, _ in parts])
        rows = [
            NeedStatement(need_id=need.id, position=i, text=text, norm=norm, is_title=is_title,
                          lemmas=lemmas, vector=to_blob(vec), embedder=self.embedder.name)
            for i, ((text, norm, is_title, lemmas), vec) in enumerate(zip(parts, vectors, strict=True))
        ]
        session.add_all(rows)
        self.mark(session, NEEDS, need.id)
        return rows

    def mark(self, session: Session, collection: str, doc_id: int, op: str = "upsert") -> None:
        """Record that `doc_id` changed, so every process's index follows."""
        session.add(IndexEvent(collection=collection, doc_id=doc_id, op=op))

    # ------------------------------------------------------------------ relevance

    def search(self, session: Session, collection: str, query_vectors: np.ndarray, depth: int,
               allowed: set[int]) -> list[Hit]:
        """Documents of `collection` most relevant to the query statements (after a sync)."""
        self.sync(session)
        with self._lock:
            return self.collections[collection].search(query_vectors, depth, allowed=allowed)


def _last_event(session: Session) -> int:
    return int(session.exec(select(func.max(IndexEvent.id))).one() or 0)
