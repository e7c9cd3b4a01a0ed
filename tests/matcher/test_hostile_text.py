"""Hostile free text never crashes the matcher (property tests with Hypothesis).

Declarations and needs are typed by people, pasted from anywhere, or sent by partner tools: markup,
SQL, emoji, right-to-left Arabic, control characters, NUL bytes, lone surrogates (JSON's "\\ud800"
escapes decode to them) and megabytes of text. The service path (spaCy analysis, then USE on each
statement) and the hybrid ranker's query analysis must take all of it and give sane output.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matcher.analysis import Analyzer, clean_text, get_analyzer
from matcher.embeddings import Embedder, get_embedder
from matcher.hybrid import (
    E5_MAX_CHARS,
    MAX_SEGMENTS,
    Document,
    E5Embedder,
    Encoders,
    HybridIndex,
    analyse_query,
    load_encoders,
    make_artefacts,
)

# Pieces people (or attackers) actually send; Hypothesis mixes them with arbitrary characters.
FRAGMENTS = [
    "<script>alert('x')</script>", "<img src=x onerror=alert(1)>", "</textarea><svg onload=alert(1)>",
    "javascript:alert(1)", "{{ 7*7 }}", "{% raw %}", "${jndi:ldap://127.0.0.1/a}",
    "'; DROP TABLE resident; --", "\" OR 1=1 --", "%s%n%x", "\\x00", "Robert'); --",
    "Je cuisine pour quarante personnes", "je sais pas conduire", "jsuis dispo le mercredi",
    "👩🏽‍🍳🧵🚲", "🇫🇷🇲🇦", "أطبخ الكسكس وأخيط الملابس", "أتكلم العربية والفرنسية", "\u202eevil\u202c",
    "\u200b\u200d\ufeff", "\x00", "\x07\x08\x1b[31m", "\r\n\r\n", "\t\v\f", "\ud800", "\udfff",
    "\ud83d", "e\u0301\u0301\u0301", "\U0010ffff", "\ufffe\uffff", "ﷺ", "Ａｂｃ", "\u2028\u2029",
]
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())  # surrogates and controls included
HOSTILE = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(ANY_CHARACTER, max_size=40)),
                   max_size=12).map("".join)
# One megabyte: a real declaration repeated, then every fragment, then one very long "word".
MEGABYTE = ("Je cuisine pour quarante personnes et je couds des robes. " * 17_000
            + "".join(FRAGMENTS) + "a" * 5_000)[:1_000_000]
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return get_analyzer()


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return get_embedder()


def printable(text: str) -> bool:
    """What is shown back to people and stored: encodable, no control or surrogate characters."""
    text.encode("utf-8")  # raises on a lone surrogate
    return all(ch in "\n\t" or unicodedata.category(ch)[0] != "C" for ch in text)


def check_analysis(analyzer: Analyzer, embedder: Embedder, text: str) -> None:
    analysis = analyzer.analyze(text)
    for statement in analysis.statements:
        assert statement.text.strip() and printable(statement.text), statement
        assert printable(statement.norm)
        assert all(printable(lemma) for lemma in statement.lemmas)
    assert set(analysis.languages) <= {code for st_ in analysis.statements for code in st_.languages}
    vectors = embedder.encode([s.norm for s in analysis.statements])
    assert vectors.shape == (len(analysis.statements), embedder.dim)
    assert np.isfinite(vectors).all()
    if len(vectors):
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


@SETTINGS
@given(text=HOSTILE)
def test_clean_text_removes_what_cannot_be_stored_or_shown(text: str) -> None:
    cleaned = clean_text(text)
    assert printable(cleaned)
    assert cleaned == cleaned.strip()


@SETTINGS
@given(text=HOSTILE)
def test_the_service_path_analyses_and_encodes_any_text(analyzer: Analyzer, embedder: Embedder,
                                                        text: str) -> None:
    check_analysis(analyzer, embedder, text)


@pytest.mark.parametrize("text", FRAGMENTS)
def test_each_fragment_alone(analyzer: Analyzer, embedder: Embedder, text: str) -> None:
    check_analysis(analyzer, embedder, text)
    analyse_query(text)


def test_a_megabyte_is_analysed_within_the_cap(analyzer: Analyzer, embedder: Embedder) -> None:
    analysis = analyzer.analyze(MEGABYTE)
    assert analysis.statements  # analysed, up to max_chars (20,000 characters)
    assert sum(len(s.text) for s in analysis.statements) <= 20_000
    assert all(printable(s.text) for s in analysis.statements)
    vectors = embedder.encode([s.norm for s in analysis.statements])
    assert vectors.shape == (len(analysis.statements), embedder.dim) and np.isfinite(vectors).all()


def test_markup_and_sql_are_kept_as_words_not_interpreted(analyzer: Analyzer) -> None:
    """Nothing is executed or stripped silently: the person's words come back as written."""
    texts = [s.text for s in analyzer.analyze(
        "Je répare les vélos <b>le mercredi</b>. Je cuisine'; DROP TABLE resident; --").statements]
    assert any("<b>le mercredi</b>" in t for t in texts)
    assert any("DROP TABLE resident" in t for t in texts)


def test_arabic_statements_keep_their_words_and_direction(analyzer: Analyzer,
                                                          embedder: Embedder) -> None:
    text = "أطبخ الكسكس للأعراس. Je parle arabe et français."
    analysis = analyzer.analyze(text)
    assert analysis.statements[0].text == "أطبخ الكسكس للأعراس"
    assert set(analysis.languages) == {"ar", "fr"}
    check_analysis(analyzer, embedder, text)


# ---------------------------------------------------------------- the hybrid ranker

NEEDS = [Document("sew", "Atelier couture\nAnimer un atelier couture : retouches, ourlets."),
         Document("cook", "Aide en cuisine\nCuisiner le repas solidaire du vendredi."),
         Document("bike", "Réparation de vélos\nTenir l'atelier vélo le mercredi.")]
# Queries the ranker's encoders are called on are kept short: its cost grows with the query's
# length (see the report on long queries), and this module must stay fast.
SHORT_HOSTILE = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(ANY_CHARACTER, max_size=20)),
                         max_size=4).map("".join)


@pytest.fixture(scope="module")
def encoders() -> Encoders:
    return load_encoders()


@pytest.fixture(scope="module")
def hybrid(encoders: Encoders) -> HybridIndex:
    index = HybridIndex(encoders)
    for need, artefact in zip(NEEDS, make_artefacts(NEEDS, encoders), strict=True):
        index.upsert(need.doc_id, artefact)
    return index


@SETTINGS
@given(text=HOSTILE)
def test_hybrid_query_analysis_takes_any_text(text: str) -> None:
    analysis = analyse_query(text)
    assert 0.0 < analysis.language_factor <= 1.0
    assert analysis.units and all(isinstance(u, str) for u in analysis.units)


def test_hybrid_query_analysis_takes_a_megabyte() -> None:
    analysis = analyse_query(MEGABYTE)
    assert analysis.statements and analysis.retrieval_text


@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=SHORT_HOSTILE)
def test_hybrid_search_and_artefacts_take_hostile_text(encoders: Encoders, hybrid: HybridIndex,
                                                       text: str) -> None:
    ranked = hybrid.search(text, k=3)
    assert {r.doc_id for r in ranked} <= {n.doc_id for n in NEEDS}
    assert all(np.isfinite(r.score) for r in ranked)
    artefact = make_artefacts([Document("hostile", text, title=text[:50])], encoders)[0]
    assert np.isfinite(artefact.use_whole).all() and np.isfinite(artefact.e5_whole).all()
    type(artefact).from_bytes(artefact.to_bytes())


def test_hybrid_search_takes_lone_surrogates(hybrid: HybridIndex) -> None:
    assert hybrid.search("Je couds \ud800 des robes", k=3)


def test_hybrid_search_bounds_what_one_text_costs(hybrid: HybridIndex, encoders: Encoders) -> None:
    """A pasted book or a 20,000-character "word" is cut before the encoders (not timed: the
    texts the e5 encoder receives are checked)."""
    seen: list[str] = []
    e5 = encoders.e5
    assert isinstance(e5, E5Embedder)
    model = e5._model

    class Spy:
        def query(self, texts: list[str]) -> object:
            seen.extend(texts)
            return model.query(texts)

    e5._model = Spy()
    try:
        hybrid.search("Je couds des robes. " * 2_000 + "a" * 20_000, k=3)
        make_artefacts([Document("long", "b" * 20_000, title="Couture")], encoders)
    finally:
        e5._model = model
    assert seen and max(len(t) for t in seen) <= E5_MAX_CHARS
    assert len(seen) <= 2 * (MAX_SEGMENTS + 2)
