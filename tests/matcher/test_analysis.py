"""French analysis: statements, negation, languages, oral and SMS spelling."""

from __future__ import annotations

import pytest

from matcher.analysis import Analyzer, clean_text, fold_accents, get_analyzer, normalise_spelling


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return get_analyzer()


def texts(analyzer: Analyzer, text: str) -> list[str]:
    return [st.text for st in analyzer.analyze(text).statements]


def test_sentences_and_coordinated_clauses_become_statements(analyzer: Analyzer) -> None:
    assert texts(analyzer, "Je cuisine et je couds. Je garde les enfants le soir.") == [
        "Je cuisine", "je couds", "Je garde les enfants le soir"]


def test_clauses_joined_by_mais_are_split(analyzer: Analyzer) -> None:
    got = texts(analyzer, "jsais pas conduire mais je répare les vélos")
    assert got == ["jsais pas conduire", "je répare les vélos"]


def test_lines_and_bullets_are_statements(analyzer: Analyzer) -> None:
    got = texts(analyzer, "- couture\n- je fais du pain maison\n• jardinage au potager")
    assert got == ["couture", "je fais du pain maison", "jardinage au potager"]


def test_statements_keep_the_persons_spelling_but_models_get_standard_french(
        analyzer: Analyzer) -> None:
    (st,) = analyzer.analyze("jsuis cuisinière, g fait bcp de couscous pr les mariages").statements
    assert st.text == "jsuis cuisinière, g fait bcp de couscous pr les mariages"
    assert st.norm == "je suis cuisinière, j'ai fait beaucoup de couscous pour les mariages"
    assert "couscous" in st.lemmas and "mariage" in st.lemmas


@pytest.mark.parametrize("text", [
    "Je ne sais pas conduire",
    "jsais pas conduire",
    "je conduis jamais",
    "Je ne fais plus de couture",
    "I can't drive",
])
def test_negation_is_detected(analyzer: Analyzer, text: str) -> None:
    assert [st.negated for st in analyzer.analyze(text).statements] == [True]


@pytest.mark.parametrize("text", [
    "je fais pas mal de couture",  # "quite a lot"
    "je ne fais que du ménage",  # "only"
    "je conduis le camion de mon frère",
])
def test_affirmations_are_not_negated(analyzer: Analyzer, text: str) -> None:
    assert [st.negated for st in analyzer.analyze(text).statements] == [False]


def test_languages_spoken_are_extracted(analyzer: Analyzer) -> None:
    analysis = analyzer.analyze("Je parle arabe, tamazight et français. I also speak English.")
    assert analysis.languages == ["ar", "ber", "fr", "en"]


def test_language_names_without_a_speaking_cue_are_not_languages(analyzer: Analyzer) -> None:
    assert analyzer.analyze("Je cuisine des plats turcs et de la pâtisserie arabe").languages == []


def test_negated_languages_are_not_spoken(analyzer: Analyzer) -> None:
    assert analyzer.analyze("Je ne parle pas anglais. Je parle wolof.").languages == ["wo"]


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "…", "!!!"])
def test_empty_or_punctuation_only_text_has_no_statement(analyzer: Analyzer, text: str) -> None:
    assert analyzer.analyze(text).statements == []


def test_hostile_text_is_analysed_without_crashing(analyzer: Analyzer) -> None:
    text = "<script>alert('x')</script>\x00\x1b[31m DROP TABLE resident; -- مرحبا 😀 " * 50
    analysis = analyzer.analyze(text)
    assert analysis.statements
    assert all("\x00" not in st.text and "\x1b" not in st.text for st in analysis.statements)


def test_helpers() -> None:
    assert fold_accents("Réparer à l'atelier") == "Reparer a l'atelier"
    assert clean_text("a\u2019b \t c\x07") == "a'b c"
    assert normalise_spelling("jrépare les ordis") == "je répare les ordinateurs"
    assert normalise_spelling("après-midi") == "après-midi"
