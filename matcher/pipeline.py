"""Bulk preparation of declarations: spaCy analysis, statement vectors and hybrid artefacts.

A bulk import or a benchmark ingest spends nearly all its CPU here (spaCy's parser, USE on every
statement and on each declaration's whole text), and none of it needs the database. In one process
the two models share one interpreter: spaCy in a thread beside USE left a 2-core machine half idle
(measured: 2,000 declarations, 23 s of wall time for 23 s of CPU). `prepare_ahead` runs the work in
worker processes instead, each with its own models, while the caller writes the previous batches.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from itertools import islice
from multiprocessing import get_context
from typing import TypeVar

import numpy as np

from matcher.analysis import SPACY_MODEL, Analysis, Analyzer, analyse_ahead, get_analyzer
from matcher.embeddings import Embedder, RecentVectors, get_embedder
from matcher.hybrid import Document, Encoders, get_encoders, make_artefacts, negated_clause
from matcher.normalise import normalise

T = TypeVar("T")


@dataclass(frozen=True)
class Models:
    """What a process loads to prepare declarations (the specs of the service's configuration)."""

    embedder: str
    encoders: str
    spacy_model: str = SPACY_MODEL

    def load(self) -> tuple[Analyzer, Embedder, Encoders]:
        return get_analyzer(self.spacy_model), get_embedder(self.embedder), get_encoders(self.encoders)


@dataclass
class PreparedDeclaration:
    """A declaration ready to be written: its statements, their vectors, its hybrid artefact."""

    analysis: Analysis
    vectors: np.ndarray  # one row per statement: the embedder's vector of its normalised text
    artefact: bytes | None  # DocumentArtefact.to_bytes(); None: nothing left to match (all negated)


def declaration_document(doc_id: int, statements: Sequence[tuple[str, bool]]) -> Document | None:
    """The hybrid ranker's document of a declaration: its statements (text as written, negated
    flag), without the negated ones (spaCy's flag or the ranker's own negation rule); None when
    nothing is left to match."""
    kept = tuple(text for text, negated in statements if not negated and not negated_clause(text))
    return Document(doc_id, "", None, kept) if kept else None


def statement_vectors(embedder: Embedder, norms: Sequence[str]) -> np.ndarray:
    """Statement vectors: the texts as the hybrid ranker normalises its segments (lower case,
    standard spelling), so that a declaration's statements and its artefact's segments are one
    string each, encoded once (the process's embedder remembers its recent texts)."""
    return embedder.encode([normalise(t) for t in norms])


def prepare_analysed(analyses: Sequence[Analysis], embedder: Embedder, encoders: Encoders
                     ) -> list[PreparedDeclaration]:
    """Vectors and artefacts of declarations already analysed."""
    vectors = statement_vectors(embedder, [st.norm for a in analyses for st in a.statements])
    documents = [declaration_document(0, [(st.text, st.negated) for st in a.statements]) for a in analyses]
    present = [d for d in documents if d is not None]
    built = iter(make_artefacts(present, encoders)) if present else iter(())
    out, offset = [], 0
    for analysis, document in zip(analyses, documents, strict=True):
        end = offset + len(analysis.statements)
        artefact = next(built).to_bytes() if document is not None else None
        out.append(PreparedDeclaration(analysis, vectors[offset:end], artefact))
        offset = end
    return out


# ------------------------------------------------------------------------- worker processes
# Distinct texts a worker's embedder remembers (2 KB each): a bulk load meets the same statements
# ("je parle arabe", "je suis disponible le week-end") far apart, beyond a web process's 8,192.
WORKER_RECENT_TEXTS = 65_536

_models: Models | None = None


def _remember(models: Models) -> None:
    global _models
    _models = models


def _prepare_texts(texts: list[str]) -> list[PreparedDeclaration]:
    """A worker's task. Its models load at its first batch, not in the pool's initializer: a
    failure there (a missing model) then reaches the caller as itself, not as a broken pool."""
    assert _models is not None, "worker started without its models"
    analyzer, embedder, encoders = _models.load()  # once per process (the loaders remember)
    for model in (embedder, encoders.use):
        if isinstance(model, RecentVectors):
            model.size = max(model.size, WORKER_RECENT_TEXTS)
    return prepare_analysed(analyzer.analyze_many(texts), embedder, encoders)


def ingest_processes(value: str | None = None) -> int:
    """Worker processes for bulk preparation: `value`, else RELAIS_INGEST_PROCESSES, else one per
    core from two cores up (0: everything in the calling process)."""
    raw = (value if value is not None else os.environ.get("RELAIS_INGEST_PROCESSES", "")).strip()
    if raw:
        return max(0, int(raw))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores if cores >= 2 else 0


def prepare_ahead(batches: Iterable[Sequence[T]], text_of: Callable[[T], str], models: Models,
                  processes: int) -> Generator[tuple[Sequence[T], list[PreparedDeclaration]], None, None]:
    """Each batch with its items' prepared declarations, in order.

    With `processes` >= 1, batches are prepared by that many worker processes (started with
    "spawn": each loads its own models, ~5 s, and forks nothing of the caller's threads), at most
    one batch per worker ahead of the caller, so memory stays bounded on any input size. With 0,
    in this process: the next batch analysed in a thread while this one is encoded.
    """
    if processes <= 0:
        analyzer, embedder, encoders = models.load()
        for batch, analyses in analyse_ahead(analyzer, batches, text_of):
            yield batch, prepare_analysed(analyses, embedder, encoders)
        return
    pool = ProcessPoolExecutor(processes, mp_context=get_context("spawn"), initializer=_remember,
                               initargs=(models,))
    pending: deque[tuple[Sequence[T], Future[list[PreparedDeclaration]]]] = deque()
    source = iter(batches)
    failure: BaseException | None = None
    try:
        while True:
            try:
                for batch in islice(source, 0 if failure else processes + 1 - len(pending)):
                    pending.append((batch, pool.submit(_prepare_texts, [text_of(item) for item in batch])))
            except Exception as exc:  # noqa: BLE001 - raised after the batches before it are yielded
                failure = exc
            if not pending:
                if failure is not None:
                    raise failure
                return
            batch, future = pending.popleft()
            yield batch, future.result()
    finally:
        # The caller stopped, failed or is done: drop what has not started, do not wait for the rest.
        pool.shutdown(wait=False, cancel_futures=True)
