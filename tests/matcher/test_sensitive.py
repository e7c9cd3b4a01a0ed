"""Sensitive personal data in free text is pointed at before saving."""

from __future__ import annotations

import pytest

from matcher.sensitive import find_sensitive


@pytest.mark.parametrize(("text", "category", "word"), [
    ("Elle est diabétique mais elle cuisine très bien", "health", "diabétique"),
    ("Il sort de prison et cherche à bricoler", "justice", "prison"),
    ("Elle cuisine pour l'Aïd et les mariages", "religion", "Aïd"),
    ("Il a un titre de séjour depuis 2020", "origin", "titre de séjour"),
    ("Il est homosexuel et anime des ateliers", "sexuality", "homosexuel"),
])
def test_sensitive_words_are_found(text: str, category: str, word: str) -> None:
    findings = {f.category: f.words for f in find_sensitive(text)}
    assert word in findings[category]


@pytest.mark.parametrize("text", [
    "Je fais de l'aide aux devoirs",  # "aide" is not "Aïd"
    "Je fais du transport avec ma camionnette",  # "transport" is not "trans"
    "Je cuisine, je couds, je répare les vélos des enfants du quartier",
    "",
])
def test_ordinary_skills_are_not_flagged(text: str) -> None:
    assert find_sensitive(text) == []
