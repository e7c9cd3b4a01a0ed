"""Bulk preparation of declarations (matcher/pipeline.py): in this process and in worker processes."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.analysis import AnalyzerUnavailable, get_analyzer
from matcher.embeddings import DEFAULT_EMBEDDER, get_embedder
from matcher.hybrid import DocumentArtefact, get_encoders
from matcher.pipeline import (
    Models,
    PreparedDeclaration,
    declaration_document,
    ingest_processes,
    prepare_ahead,
    prepare_analysed,
)

TEXTS = [
    "Je cuisine pour quarante personnes et je couds des robes.",
    "jsais pas conduire mais je répare les vélos",
    "Je ne sais pas nager.",  # nothing left to match: no artefact
    "",
    "I can fix phones. Je parle arabe et wolof.",
    "Je cuisine pour quarante personnes. Je garde les enfants le soir.",
]
MODELS = Models(DEFAULT_EMBEDDER, "use")


def batches_of(texts: list[str], size: int) -> list[list[str]]:
    return [texts[i:i + size] for i in range(0, len(texts), size)]


def expected() -> list[PreparedDeclaration]:
    """What the service's own process computes, one declaration at a time."""
    analyzer, embedder, encoders = get_analyzer(), get_embedder(DEFAULT_EMBEDDER), get_encoders("use")
    return [prepare_analysed([analyzer.analyze(t)], embedder, encoders)[0] for t in TEXTS]


def assert_same(got: list[PreparedDeclaration], want: list[PreparedDeclaration]) -> None:
    assert [g.analysis for g in got] == [w.analysis for w in want]
    for g, w in zip(got, want, strict=True):
        # USE's vectors move in the last bits with the batch they were encoded in.
        np.testing.assert_allclose(g.vectors, w.vectors, atol=1e-5)
        assert (g.artefact is None) == (w.artefact is None)
        if g.artefact is not None and w.artefact is not None:
            a, b = DocumentArtefact.from_bytes(g.artefact), DocumentArtefact.from_bytes(w.artefact)
            assert a.segments == b.segments and np.array_equal(a.stems, b.stems)
            np.testing.assert_allclose(a.use_whole, b.use_whole, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("processes", [0, 1])
def test_prepared_in_order_as_the_service_prepares_them(processes: int) -> None:
    batches = batches_of(TEXTS, 2)
    got = list(prepare_ahead(iter(batches), lambda text: text, MODELS, processes))
    assert [batch for batch, _ in got] == batches
    prepared = [p for _, ready in got for p in ready]
    assert_same(prepared, expected())
    assert prepared[2].artefact is None and prepared[2].analysis.statements[0].negated
    assert prepared[3].analysis.statements == [] and prepared[3].vectors.shape == (0, 512)


@pytest.mark.slow
def test_a_failure_in_a_worker_is_raised_in_the_caller() -> None:
    got = []
    with pytest.raises(TypeError):  # None is no text: the worker's analysis fails on it
        for batch, _ready in prepare_ahead(iter([["Je couds."], [None]]), lambda item: item, MODELS, 1):
            got.append(batch)
    assert got == [["Je couds."]]


@pytest.mark.parametrize("processes", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_a_failing_text_of_stops_the_stream_after_the_batches_before_it(processes: int) -> None:
    def text_of(item: int) -> str:
        if item == 3:
            raise ValueError("bad row")
        return f"Je répare les vélos {item}"

    seen: list[int] = []
    with pytest.raises(ValueError, match="bad row"):
        for batch, _ready in prepare_ahead(iter([[0, 1], [2, 3], [4]]), text_of, MODELS, processes):
            seen.extend(batch)
    assert seen == [0, 1]


@pytest.mark.slow
def test_a_model_a_worker_cannot_load_is_named_to_the_caller() -> None:
    missing = Models(DEFAULT_EMBEDDER, "use", spacy_model="xx_no_such_model")
    with pytest.raises(AnalyzerUnavailable, match="xx_no_such_model"):
        list(prepare_ahead(iter([["Je couds."]]), lambda text: text, missing, 1))


def test_a_declaration_document_leaves_negated_statements_out() -> None:
    document = declaration_document(7, [("Je couds", False), ("je sais pas conduire", False),
                                        ("Je nage", True)])
    assert document is not None and document.doc_id == 7 and document.segments == ("Je couds",)
    assert declaration_document(7, [("Je nage", True)]) is None
    # The ranker's pattern sees "je fais pas", the analysis "pas mal" (a lot): kept.
    kept = declaration_document(7, [("je fais pas mal de couture", False), ("je sais pas conduire", False)])
    assert kept is not None and kept.segments == ("je fais pas mal de couture",)


def test_ingest_processes_reads_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ingest_processes("3") == 3 and ingest_processes("0") == 0 and ingest_processes("-2") == 0
    monkeypatch.setenv("RELAIS_INGEST_PROCESSES", "1")
    assert ingest_processes() == 1
    monkeypatch.delenv("RELAIS_INGEST_PROCESSES")
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0})
    assert ingest_processes() == 0  # one core: no worker would run beside the writer
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1})
    assert ingest_processes() == 2
