"""The lemmatizer's compact tables give spaCy's answers, key for key and token for token."""

from __future__ import annotations

from typing import Any

import pytest

from matcher.analysis import SPACY_MODEL, get_analyzer
from matcher.lemmas import CompactLookups, HashedTable, compact_lemmatizer, compact_tables


@pytest.fixture(scope="module")
def stock() -> Any:
    spacy = pytest.importorskip("spacy")
    return spacy.load(SPACY_MODEL, disable=["ner"])


def test_every_key_of_every_table_gives_the_same_value(stock: Any) -> None:
    lookups = stock.get_pipe("lemmatizer").lookups
    compact = compact_tables(lookups)
    assert sorted(compact.tables) == sorted(lookups.tables)
    lookup, small = lookups.get_table("lemma_lookup"), compact.get_table("lemma_lookup")
    assert len(small) == len(lookup) > 200_000
    for key, value in lookup.items():
        assert small.get(key) == tuple(value)
    for pos, forms in lookups.get_table("lemma_exc").items():
        table = compact.get_table("lemma_exc").get(pos)
        assert len(table) == len(forms)
        for form, lemmas in forms.items():
            assert table.get(form) == tuple(lemmas)
    for pos, forms in lookups.get_table("lemma_index").items():
        table = compact.get_table("lemma_index").get(pos)
        assert len(table) == len(set(forms))
        assert all(form in table for form in forms)
    assert compact.get_table("lemma_rules").get("verb") == lookups.get_table("lemma_rules").get("verb")


def test_absent_keys_and_tables() -> None:
    table = HashedTable([("cousais", ["coudre"]), ("cuisinez", ["cuisiner", "cuisinier"]), ("x", None)])
    assert table.get("cuisinez") == ("cuisiner", "cuisinier")
    assert table.get("x") == ()
    assert "cousais" in table and "couds" not in table and 3.5 not in table
    assert table.get("couds", ["couds"]) == ["couds"]
    edges = HashedTable([("vide", []), ("blanc", [""]), ("deux", ["", "a"]), ("x", None), ("x", None)])
    assert [edges.get(k) for k in ("vide", "blanc", "deux", "x")] == [(), ("",), ("", "a"), ()]
    assert len(edges) == 4  # a form listed twice in an index is one entry
    with pytest.raises(ValueError):
        HashedTable([("a", ["b"]), ("a", ["c"])])
    lookups = CompactLookups({"lemma_lookup": table})
    assert "lemma_lookup" in lookups and "lemma_exc" not in lookups
    assert lookups.get_table("lemma_exc", {}) == {}
    with pytest.raises(KeyError):
        lookups.get_table("lemma_exc")


def test_the_pipeline_lemmatises_as_spacy_does(stock: Any) -> None:
    texts = [
        "Je cousais des robes pour toute la famille avant de venir en France.",
        "Elle cuisinait pour quarante personnes aux mariages, les tajines et les couscous.",
        "Nous avons réparé les vélos et les téléphones des voisins du quartier.",
        "J'accompagnerais volontiers les familles chez le médecin, je parle arabe et wolof.",
        "Les enfants jouaient dehors pendant que les mères préparaient les gâteaux.",
        "moi je coud depuis toute petite c'est ma mère qui m'a appris au pays",
        "Ils ne savaient pas conduire mais ils aimaient jardiner, bricoler et peindre.",
    ]
    expected = [[(t.text, t.pos_, t.lemma_) for t in doc] for doc in stock.pipe(texts)]
    analyzer = get_analyzer()
    assert isinstance(analyzer.nlp.get_pipe("lemmatizer").lookups, CompactLookups)
    got = [[(t.text, t.pos_, t.lemma_) for t in doc] for doc in analyzer.nlp.pipe(texts)]
    assert got == expected


def test_compacting_twice_changes_nothing(stock: Any) -> None:
    import spacy

    nlp = spacy.load(SPACY_MODEL, disable=["ner"])
    compact_lemmatizer(nlp)
    lookups = nlp.get_pipe("lemmatizer").lookups
    compact_lemmatizer(nlp)
    assert nlp.get_pipe("lemmatizer").lookups is lookups
    blank = spacy.blank("fr")
    compact_lemmatizer(blank)
    assert blank.pipe_names == []
