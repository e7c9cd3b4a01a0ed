"""Statements' skill categories: the look-up categorise agrees with the lexicon's plain reading,
categories are stored when statements are written, and migration 0011 fills in older rows."""

from __future__ import annotations

from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from models import Database, SkillStatement
from tests.conftest import World, add_resident
from web.services.categories import _WORD, CATEGORIES, OTHER, categorise, fold


def plainly(text: str, lemmas: list[str]) -> str:
    """The lexicon read entry by entry: the category with the most distinct entries found."""
    words = _WORD.findall(fold(text).replace("'", " ").replace("’", " "))
    tokens = set(words) | {fold(lemma) for lemma in lemmas}
    joined = " " + " ".join(words) + " "
    best, best_hits = OTHER, 0
    for key, _label, entries in CATEGORIES:
        hits = 0
        for entry in entries:
            if " " in entry:
                hits += f" {entry}" in joined
            elif entry.startswith("="):
                hits += entry[1:] in tokens
            else:
                hits += any(t.startswith(entry) for t in tokens)
        if hits > best_hits:
            best, best_hits = key, hits
    return best


ENTRIES = sorted({entry.lstrip("=") for _key, _label, entries in CATEGORIES for entry in entries})
WORDS = st.one_of(
    st.sampled_from(ENTRIES),  # whole entries, phrases included
    st.builds(lambda e, tail: e + tail, st.sampled_from(ENTRIES),
              st.sampled_from(["", "s", "er", "é", "-ci"])),
    st.builds(lambda e, n: e[:n], st.sampled_from(ENTRIES), st.integers(1, 6)),  # cut short
    st.text(alphabet="abcdeéèfilmnoprstuàç'’- ", max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(WORDS, max_size=12), st.lists(WORDS, max_size=4), st.booleans())
def test_categorise_reads_the_lexicon_as_written(words: list[str], lemmas: list[str], upper: bool) -> None:
    text = " ".join(words)
    text = text.upper() if upper else text
    assert categorise(text, lemmas) == plainly(text, lemmas)


def test_categories_are_stored_when_statements_are_written(session: Session, world: World) -> None:
    add_resident(session, world, "Awa", "Je fais la cuisine pour quarante. Je couds des robes. "
                 "Je suis patiente.")
    rows = session.exec(select(SkillStatement)).all()
    assert [r.category for r in rows] == ["cuisine", "couture", OTHER]
    assert all(r.category == categorise(r.text, r.lemmas) for r in rows)


def test_migration_categorises_the_statements_written_before(session: Session, world: World,
                                                              migrated: Database) -> None:
    add_resident(session, world, "Awa", "Je traduis de l'arabe. Je répare les moteurs.")
    add_resident(session, world, "Binta", "Je garde les enfants après l'école.")
    written = {r.id: r.category for r in session.exec(select(SkillStatement)).all()}
    session.close()
    assert set(written.values()) == {"langues", "bricolage", "enfance"}
    config = migrated.alembic_config()
    command.downgrade(config, "0010")  # the column goes: the rows are as before 0011
    command.upgrade(config, "head")
    with migrated.session() as again:
        assert {r.id: r.category for r in again.exec(select(SkillStatement)).all()} == written
