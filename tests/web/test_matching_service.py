"""The index follows the database: across processes, after restarts, and when files are damaged."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from sqlmodel import Session, col, select

from matcher.embeddings import RecentVectors
from matcher.hybrid import Document, DocumentArtefact
from models import (
    Database,
    HybridArtefact,
    IndexEvent,
    Need,
    NeedStatement,
    Resident,
    SkillDeclaration,
    SkillStatement,
    User,
)
from tests.conftest import World, add_resident
from web.config import Config
from web.extensions import db, matching
from web.services import profiles
from web.services.matching import (
    NEEDS,
    RESIDENTS,
    MatchingService,
    from_blobs,
    need_query,
    need_text_document,
    to_blob,
)
from web.services.needs import NeedInput, add_need, create_need
from web.services.profiles import update_declaration
from web.services.proposals import need_statements, valid_consent_residents

ROOT = Path(__file__).resolve().parents[2]

DECLARATIONS = {
    "Awa": "Je fais de la couture depuis toute petite. Je retouche les robes des voisines.",
    "Jorge": "J'ai été mécanicien trente ans, je répare les vélos et les mobylettes.",
    "Li": "Je cuisine pour cinquante personnes aux fêtes. Je fais les nems et les raviolis.",
}


def add_people(session: Session, world: World) -> dict[str, Resident]:
    people = {}
    for name, text in DECLARATIONS.items():
        people[name] = add_resident(session, world, name, text).resident
    return people


@pytest.fixture
def second_db(config: Config) -> Iterator[Database]:
    """The database as another process opens it (its own engine and connections)."""
    database = Database(config.database_url)
    yield database
    database.dispose()


def other_process(config: Config) -> MatchingService:
    """A second worker process: its own service, reading the same database and files."""
    service = MatchingService()
    service.configure_from(config)
    return service


def ranking(service: MatchingService, session: Session, need: Need) -> list[int]:
    """Residents by relevance for the need (what the policy then chooses from)."""
    vectors = from_blobs([s.vector for s in need_statements(session, need.id or 0)], service.dim)
    hits = service.search(session, RESIDENTS, vectors, 10, valid_consent_residents(session, date.today()))
    return [h.doc_id for h in hits]


def test_a_change_through_one_process_is_seen_by_another(app: object, session: Session,
                                                         world: World, config: Config,
                                                         second_db: Database) -> None:
    second = other_process(config)
    with second_db.session() as s2:
        second.load_or_rebuild(s2)
    people = add_people(session, world)  # written through the first process
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Réparer des vélos", description="Atelier de réparation de vélos le samedi."), date.today())
    with second_db.session() as s2:
        assert ranking(second, s2, need)[0] == people["Jorge"].id
        assert len(second.collections[RESIDENTS]) == 3 and len(second.collections[NEEDS]) == 1
    # An edit in the first process moves the second process's answer too.
    update_declaration(session, matching, world.worker_a, people["Awa"],
                       "Je répare les vélos des enfants, je change les chambres à air.")
    with second_db.session() as s2:
        assert set(ranking(second, s2, need)[:2]) == {people["Jorge"].id, people["Awa"].id}


def test_a_need_is_searched_without_encoding_its_text_again(app: object, session: Session, world: World,
                                                            config: Config, second_db: Database,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process proposing for a need reads the vectors of its search from the need's stored
    artefact: the USE model encodes nothing (it did ~4 ms of a proposal round at 10k)."""
    add_people(session, world)
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Réparer des vélos", description="Atelier de réparation, et prêt d'outils. Le samedi."),
        date.today())
    second = other_process(config)
    with second_db.session() as s2:
        second.load_or_rebuild(s2)
        assert second.encoders is not None
        use = second.encoders.use
        assert isinstance(use, RecentVectors)
        encoded: list[str] = []
        inner = use.inner.encode
        def counting(texts: list[str]) -> np.ndarray:
            encoded.extend(texts)
            return inner(texts)

        monkeypatch.setattr(use.inner, "encode", counting)
        again = s2.get(Need, need.id)
        assert again is not None
        second.lend_need_vectors(s2, again)
        ranked = second.rank(s2, RESIDENTS, need_query(again), 5, None)
        assert ranked and encoded == []


@pytest.mark.skipif(os.environ.get("RELAIS_TEST_DB") != "postgres",
                    reason="SQLite has one writer at a time: ids follow commits there")
def test_an_edit_committed_after_a_later_change_is_still_followed(
        app: object, session: Session, world: World, config: Config, second_db: Database,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An edit's transaction drew its event id, then another writer committed a later id and a
    second process synced past it: on PostgreSQL the edit's event, committed afterwards, was never
    read there, and that process kept ranking the person on their old words."""
    people = add_people(session, world)
    second = other_process(config)
    with second_db.session() as s2:
        second.load_or_rebuild(s2)
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Accordéons", description="Réparer les accordéons de la fanfare."), date.today())
    inside, release = threading.Event(), threading.Event()
    journal = profiles.record

    def paused(s: Session, *args: object, **kwargs: object) -> None:  # the edit, flushed, not committed
        journal(s, *args, **kwargs)  # type: ignore[arg-type]
        s.flush()
        inside.set()
        assert release.wait(30)

    def edit() -> None:
        with db.session() as s:
            profiles.update_declaration(s, matching, s.get(User, world.worker_a.id), s.get(Resident, awa),
                                        "Je répare des accordéons et des harmoniums depuis vingt ans.")

    awa = people["Awa"].id
    monkeypatch.setattr(profiles, "record", paused)
    with ThreadPoolExecutor(1) as pool:
        done = pool.submit(edit)
        assert inside.wait(30)
        monkeypatch.setattr(profiles, "record", journal)
        # (by another centre's worker: worker A's row is held by the edit's foreign keys)
        add_resident(session, world, "Bea", "Je cuisine pour quarante personnes aux mariages.",
                     recorded_by=world.worker_b)
        with second_db.session() as s2:
            second.sync(s2)  # past the later change
        release.set()
        done.result(timeout=60)
    with second_db.session() as s2:
        second.sync(s2)
        current = s2.exec(select(SkillStatement.id).join(SkillDeclaration).where(
            SkillStatement.resident_id == awa, col(SkillDeclaration.is_current).is_(True))).all()
        assert sorted(second.collections[RESIDENTS].statements(awa)) == sorted(current)


@pytest.mark.parametrize("damage", ["deleted", "truncated", "stale"])
def test_damaged_or_stale_index_files_are_rebuilt_with_the_same_results(
        app: object, session: Session, world: World, config: Config, damage: str,
        second_db: Database) -> None:
    people = add_people(session, world)
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Cuisine solidaire", description="Cuisiner pour le repas partagé du quartier."), date.today())
    before = ranking(matching, session, need)
    assert before[0] == people["Li"].id
    matching.save()
    path = matching.index_path(RESIDENTS)
    if damage == "deleted":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])
    else:  # the files are older than the database: new rows arrived while we were down
        update_declaration(session, matching, world.worker_a, people["Awa"],
                           "Je cuisine le couscous pour les mariages.")
        before = ranking(matching, session, need)
    restarted = other_process(config)
    with second_db.session() as s2:
        state = restarted.load_or_rebuild(s2)
        assert state == ("loaded" if damage == "stale" else "rebuilt")
        assert ranking(restarted, s2, need) == before


def test_index_files_ahead_of_the_database_are_rebuilt(app: object, session: Session,
                                                       world: World, config: Config,
                                                       second_db: Database) -> None:
    """A database restored from an older backup: the index must not keep newer rows."""
    add_people(session, world)
    matching.save()
    for event in session.exec(select(IndexEvent)).all():
        session.delete(event)
    session.commit()
    restarted = other_process(config)
    with second_db.session() as s2:
        assert restarted.load_or_rebuild(s2) == "rebuilt"


def test_index_files_of_another_database_are_rebuilt(app: object, session: Session, world: World,
                                                     config: Config, second_db: Database) -> None:
    """Index files copied from another site (or another database of this one) whose generation
    this database has also reached were loaded and served: the other site's statements quoted for
    this site's residents. The files now carry the event their generation stands for; here the
    database's event of that number is another one (as another database's would be)."""
    add_people(session, world)
    matching.save()
    with second_db.session() as s2:
        assert other_process(config).load_or_rebuild(s2) == "loaded"  # the same database: kept
    last = session.exec(select(IndexEvent).order_by(col(IndexEvent.id).desc())).first()
    assert last is not None
    last.doc_id += 1000  # another database's event number `last.id`
    session.add(last)
    session.commit()
    with second_db.session() as s2:
        assert other_process(config).load_or_rebuild(s2) == "rebuilt"


def test_rebuild_equals_incremental(app: object, session: Session, world: World,
                                    config: Config) -> None:
    people = add_people(session, world)
    update_declaration(session, matching, world.worker_a, people["Jorge"],
                       "Je fais du jardinage et je taille les haies.")
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Jardin partagé", description="Entretenir le potager du jardin partagé."), date.today())
    incremental = ranking(matching, session, need)
    before = {n: [a.tolist() for a in c.pairs()] for n, c in matching.collections.items()}
    matching.rebuild(session)
    assert {n: [a.tolist() for a in c.pairs()] for n, c in matching.collections.items()} == before
    assert ranking(matching, session, need) == incremental
    assert incremental[0] == people["Jorge"].id


def test_a_change_of_model_re_encodes_the_stored_statements(app: object, session: Session,
                                                            world: World, config: Config,
                                                            second_db: Database) -> None:
    """Vectors of two models never mix: statements stored by another model are re-encoded."""
    from models import SkillStatement

    people = add_people(session, world)
    for row in session.exec(select(SkillStatement)).all():
        row.embedder, row.vector = "another-model", b"\0" * len(row.vector)
        session.add(row)
    session.commit()
    restarted = other_process(config)
    with second_db.session() as s2:
        assert restarted.load_or_rebuild(s2) == "re-encoded"
        need = Need(organisation_id=world.association.id or 0, title="Vélos",
                    description="Réparer des vélos", created_by_id=world.member.id or 0)
        s2.add(need)
        s2.flush()
        restarted.store_need(s2, need)
        s2.commit()
        assert ranking(restarted, s2, need)[0] == people["Jorge"].id
    session.expire_all()
    assert {r.embedder for r in session.exec(select(SkillStatement)).all()} == {
        restarted.embedder.name}  # type: ignore[union-attr]


def hybrid_ranking(service: MatchingService, session: Session, need: Need) -> list[int]:
    """Residents as proposals rank them (the hybrid ranker)."""
    from web.services.matching import need_query

    return [int(r.doc_id) for r in service.rank(session, RESIDENTS, need_query(need), 10,
                                                valid_consent_residents(session, date.today()))]


def test_hybrid_artefacts_follow_the_database_in_every_process(app: object, session: Session,
                                                               world: World, config: Config,
                                                               second_db: Database) -> None:
    from models import HybridArtefact

    second = other_process(config)
    with second_db.session() as s2:
        second.load_or_rebuild(s2)
    people = add_people(session, world)
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Réparer des vélos", description="Atelier de réparation de vélos le samedi."), date.today())
    assert len(session.exec(select(HybridArtefact)).all()) == 4  # three declarations, one need
    with second_db.session() as s2:
        assert hybrid_ranking(second, s2, need)[0] == people["Jorge"].id
    update_declaration(session, matching, world.worker_a, people["Jorge"], "Je fais du jardinage.")
    update_declaration(session, matching, world.worker_a, people["Awa"],
                       "Je répare les vélos des enfants, je change les chambres à air.")
    with second_db.session() as s2:
        assert hybrid_ranking(second, s2, need)[0] == people["Awa"].id
    # An erased person leaves the hybrid index with their artefact.
    matching.mark(session, RESIDENTS, people["Awa"].id or 0, op="delete")
    session.commit()
    with second_db.session() as s2:
        assert people["Awa"].id not in hybrid_ranking(second, s2, need)
    assert (RESIDENTS, people["Awa"].id) not in {(a.collection, a.doc_id)
                                                 for a in session.exec(select(HybridArtefact)).all()}


def test_negated_statements_are_never_indexed_for_the_hybrid_ranker(app: object, session: Session,
                                                                    world: World) -> None:
    driver = add_resident(session, world, "Sam",
                          "Je ne sais pas conduire. Je cuisine pour les fêtes.").resident
    nobody = add_resident(session, world, "Zoé", "Je ne sais pas conduire.").resident
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Chauffeur", description="Conduire le minibus pour emmener les anciens au marché."),
        date.today())
    matching.sync(session)
    segments = " ".join(matching.hybrid[RESIDENTS].segments(driver.id or 0))
    assert "conduire" not in segments and "cuisine" in segments
    assert nobody.id not in matching.hybrid[RESIDENTS]
    assert nobody.id not in hybrid_ranking(matching, session, need)
    # Nothing to match is not a missing artefact: a start-up does not build it again, every time.
    events = len(session.exec(select(IndexEvent)).all())
    assert matching.build_missing_artefacts(session) == 0
    assert len(session.exec(select(IndexEvent)).all()) == events


def test_statements_are_analysed_again_from_the_stored_texts(app: object, session: Session, world: World,
                                                              config: Config) -> None:
    """Statements are derived from the texts: after a change of the analysis, the statements an
    older one stored (here, the whole text one negated statement, no language found) are
    written again by `scripts/reindex.py --statements`, and matching follows."""
    awa = add_resident(session, world, "Awa", "Elle parle arabe et wolof. Je cuisine mais pas le week-end.",
                       languages=["fr"]).resident
    declaration = session.exec(select(SkillDeclaration).where(SkillDeclaration.resident_id == awa.id)).one()
    old = session.exec(select(SkillStatement).where(SkillStatement.declaration_id == declaration.id)).all()
    for row in old:
        row.negated, row.languages = True, []
        session.add(row)
    awa.languages = ["fr"]
    session.add(awa)
    session.commit()
    env = {**os.environ, "RELAIS_INSTANCE_DIR": str(config.instance_dir), "DATABASE_URL": config.database_url}
    done = subprocess.run([sys.executable, "scripts/reindex.py", "--statements"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Analysed again: 1 texts of residents" in done.stdout
    session.expire_all()
    rows = session.exec(select(SkillStatement).where(SkillStatement.declaration_id == declaration.id)
                        .order_by(col(SkillStatement.position))).all()
    assert [(r.text, r.negated) for r in rows] == [
        ("Elle parle arabe et wolof", False), ("Je cuisine", False), ("pas le week-end", True)]
    person = session.get(Resident, awa.id)
    assert person is not None and person.languages == ["fr", "ar", "wo"]
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Repas solidaire", description="Cuisiner le repas de la fête du quartier."), date.today())
    matching.sync(session)
    assert awa.id in hybrid_ranking(matching, session, need)


def test_missing_artefacts_are_built_from_the_stored_texts(app: object, session: Session, world: World,
                                                           config: Config, second_db: Database) -> None:
    """A database from before migration 0009 (or another RELAIS_ENCODERS): built at start-up."""
    from models import HybridArtefact

    people = add_people(session, world)
    for row in session.exec(select(HybridArtefact)).all():
        session.delete(row)
    session.commit()
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Cuisine solidaire", description="Cuisiner pour le repas partagé du quartier."), date.today())
    restarted = other_process(config)
    with second_db.session() as s2:
        restarted.load_or_rebuild(s2)
        assert len(restarted.hybrid[RESIDENTS]) == 3
        assert hybrid_ranking(restarted, s2, need)[0] == people["Li"].id


def test_prebuilt_artefacts_spare_encoding_inside_the_write(app: object, session: Session, world: World,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A bulk import encodes before its transaction: writes inside `prebuilt` encode nothing, and
    store the same artefact as an ordinary write would."""
    import web.services.matching as service

    data = NeedInput(title="Atelier couture", description="Animer un atelier couture le mercredi.")
    encoded: list[int] = []
    real = service.make_artefacts

    def counting(documents: list[Document], encoders: object) -> list[DocumentArtefact]:
        encoded.append(len(documents))
        return real(documents, encoders)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "make_artefacts", counting)
    with matching.prebuilt([need_text_document(0, data.title, data.description)]):
        assert encoded == [1]
        inside = add_need(session, matching, world.member, data)
        session.commit()
    assert encoded == [1]  # nothing encoded by the write itself
    outside = add_need(session, matching, world.member, data)
    session.commit()
    assert encoded == [1, 1]
    stored = {row.doc_id: row.artefact for row in session.exec(select(HybridArtefact).where(
        HybridArtefact.collection == NEEDS)).all()}
    assert stored[inside.id] == stored[outside.id]
    assert not matching._prebuilt  # forgotten when the block ends


def test_above_the_exact_size_candidates_come_from_the_statement_index(
        app: object, session: Session, world: World, config: Config, second_db: Database) -> None:
    """A process whose hybrid ranker takes candidates first (as above 20,000 declarations) finds
    them in its FAISS statement collection (no second copy of the vectors), honours the consent
    filter, and follows writes made through another process (small part, dead rows)."""
    people = add_people(session, world)
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Réparer des vélos", description="Atelier de réparation de vélos le samedi."), date.today())
    staged = other_process(config)
    staged.hybrid_exact_docs = 1
    with second_db.session() as s2:
        staged.load_or_rebuild(s2)
        assert hybrid_ranking(staged, s2, need)[0] == people["Jorge"].id
        assert hybrid_ranking(staged, s2, need) == hybrid_ranking(matching, session, need)
        assert staged.hybrid[RESIDENTS]._vectors is None  # the collection served the neighbours
        only = {people["Awa"].id or 0, people["Li"].id or 0}
        ranked = staged.rank(s2, RESIDENTS, "je répare les vélos", 10, only)
        assert {int(r.doc_id) for r in ranked} <= only
    update_declaration(session, matching, world.worker_a, people["Jorge"], "Je fais du jardinage.")
    update_declaration(session, matching, world.worker_a, people["Awa"],
                       "Je répare les vélos des enfants, je change les chambres à air.")
    with second_db.session() as s2:
        assert hybrid_ranking(staged, s2, need)[0] == people["Awa"].id
        assert staged.hybrid[RESIDENTS].segments(people["Jorge"].id or 0)[1:] == ["je fais du jardinage"]


def test_an_eligibility_filter_ranks_as_the_full_list_and_asks_only_about_the_first(
        app: object, session: Session, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Consent asked of the database for the residents ranked first: the same order as with every
    eligible id listed, nobody outside the filter, and the full list asked for only when the first
    ones are not enough."""
    import web.services.matching as service
    from web.services.matching import Eligibility

    people = add_people(session, world)
    extra = [add_resident(session, world, f"P{i}", f"Je jardine, je garde des enfants {i}.").resident
             for i in range(4)]
    everyone = {r.id or 0 for r in [*people.values(), *extra]}
    text = "Atelier de réparation de vélos le samedi."
    asked: list[list[int]] = []
    listed: list[int] = []

    def among(ids: list[int], keep: set[int]) -> set[int]:
        asked.append(list(ids))
        return set(ids) & keep

    def every(keep: set[int]) -> set[int]:
        listed.append(1)
        return set(keep)

    for keep in (everyone - {people["Jorge"].id or 0}, everyone):
        filtered = matching.rank(session, RESIDENTS, text, 3,
                                 Eligibility(lambda ids, k=keep: among(ids, k), lambda k=keep: every(k)))
        listed_first = matching.rank(session, RESIDENTS, text, 3, keep)
        assert [r.doc_id for r in filtered] == [r.doc_id for r in listed_first]
        assert {int(r.doc_id) for r in filtered} <= keep
    assert not listed  # seven residents, all ranked at once: the first ask was enough
    assert asked and all(len(ids) == len(everyone) for ids in asked)

    # A filter few of the first pass (depth 1: the two best are asked about): the ranking is redone
    # within the full list.
    monkeypatch.setattr(service, "OVERFETCH_MIN", 0)
    few = {people["Li"].id or 0}
    asked.clear()
    depth_one = matching.rank(session, RESIDENTS, text, 1,
                              Eligibility(lambda ids: among(ids, few), lambda: every(few)))
    assert len(asked[0]) == 2 and people["Li"].id not in asked[0]
    assert [int(r.doc_id) for r in depth_one] == [people["Li"].id] and listed == [1]


def test_index_files_are_saved_when_they_lag_but_saving_never_takes_most_of_the_time(
        app: object, session: Session, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    import web.services.matching as service

    saved: list[int] = []
    real = matching.save

    def counting() -> None:
        saved.append(matching.generation)
        real()

    monkeypatch.setattr(matching, "save", counting)
    monkeypatch.setattr(service, "SAVE_EVERY_EVENTS", 2)
    matching.sync(session)
    matching.save()
    saved.clear()
    matching._save_seconds = 60.0  # as if that save had taken a minute: not again so soon
    add_people(session, world)  # three declarations: three events
    matching.sync(session)
    assert saved == [] and matching.generation - matching._saved_generation >= 3
    matching._save_seconds = 0.0
    add_resident(session, world, "Mo", "Je fais du pain.")
    matching.sync(session)
    assert saved == [matching.generation]


def test_above_the_exact_size_a_short_filtered_ranking_asks_for_the_full_list(
        app: object, session: Session, world: World, config: Config, second_db: Database) -> None:
    """Above the exact size only a query's candidates are ranked: fewer results than asked for do
    not mean that no other document passes, so the full list is asked for (up to it, they do)."""
    from web.services.matching import Eligibility

    people = add_people(session, world)
    keep = {people["Li"].id or 0, people["Awa"].id or 0}
    listed: list[str] = []

    def eligibility(who: str) -> Eligibility:
        return Eligibility(among=lambda ids: set(ids) & keep, every=lambda: listed.append(who) or set(keep))

    exact = matching.rank(session, RESIDENTS, "je répare les vélos", 3, eligibility("exact"))
    staged = other_process(config)
    staged.hybrid_exact_docs = 1
    with second_db.session() as s2:
        staged.load_or_rebuild(s2)
        candidates = staged.rank(s2, RESIDENTS, "je répare les vélos", 3, eligibility("candidates"))
    assert listed == ["candidates"]
    assert {int(r.doc_id) for r in exact} == {int(r.doc_id) for r in candidates} == keep


def test_copies_of_a_statement_encoded_in_other_batches_are_one_vector_after_a_rebuild(
        app: object, session: Session, world: World) -> None:
    """USE's vector of a text moves in the last bits with the batch it was encoded in: stored copies
    of one sentence still make one vector of the FAISS index (no near-duplicate cliques)."""
    first = add_resident(session, world, "Ana", "Je parle français. Je fais le ménage.").resident
    second = add_resident(session, world, "Bea", "Je parle français. Je fais le ménage.").resident
    rows = session.exec(select(SkillStatement).where(SkillStatement.resident_id == second.id)).all()
    for row in rows:  # as if encoded in another batch
        vector = from_blobs([row.vector], matching.dim)[0].copy()
        vector[0] += 1e-7
        row.vector = vector.tobytes()
        session.add(row)
    session.commit()
    matching.rebuild(session)
    index = matching.collections[RESIDENTS].index
    assert len(index) == 4 and index.vectors == 2
    assert {h.doc_id for h in matching.search(session, RESIDENTS, from_blobs([rows[0].vector], matching.dim),
                                              5, {first.id or 0, second.id or 0})} == {first.id, second.id}


@pytest.mark.parametrize(("before", "text", "kept"), [
    # Before 0013, "personne" made a statement negated even in "une personne âgée", and so did
    # "pas de souci".
    ("0012", "Je garde une personne âgée le week-end. Pas de souci pour faire les courses. "
             "Je ne connais personne qui coud. Je ne sais pas conduire.", ("personne âgée", "courses")),
    # Before 0014, a bother or a stop denied did ("ça ne me dérange pas de", "je n'ai jamais arrêté de").
    ("0013", "Ça ne me dérange pas de garder des enfants. Je n'ai jamais arrêté de coudre. "
             "Je ne connais personne qui coud. Je ne sais pas conduire.", ("enfants", "coudre")),
    # Before 0014 too, the ranker's own pattern left out of the artefact statements the analysis
    # kept ("je fais pas"): no flag to clear, the artefact is rebuilt.
    ("0013", "Je fais pas mal de couture. J'ai pas de souci pour porter des cartons. "
             "Je ne connais personne qui coud. Je ne sais pas conduire.", ("couture", "cartons")),
])
def test_the_migration_brings_back_statements_wrongly_negated(session: Session, world: World,
                                                              migrated: Database, before: str, text: str,
                                                              kept: tuple[str, str]) -> None:
    """The migration clears the flags of statements an earlier analysis took for negations (not
    the true negations), and the service then indexes the statements."""
    awa = add_resident(session, world, "Awa", text).resident
    rows = session.exec(select(SkillStatement).where(SkillStatement.resident_id == awa.id)
                        .order_by(SkillStatement.position)).all()
    assert [r.negated for r in rows] == [False, False, True, True]  # the analysis as it is now
    for row in rows[:2]:  # as the analysis stored them before
        row.negated = "pas mal" not in text
        session.add(row)
    session.commit()
    session.close()
    config = migrated.alembic_config()
    command.downgrade(config, before)
    command.upgrade(config, "head")
    with migrated.session() as again:
        flags = [r.negated for r in again.exec(select(SkillStatement).where(
            SkillStatement.resident_id == awa.id).order_by(SkillStatement.position)).all()]
        assert flags == [False, False, True, True]
        assert again.exec(select(HybridArtefact).where(HybridArtefact.collection == RESIDENTS,
                                                       HybridArtefact.doc_id == awa.id)).first() is None
        matching.load_or_rebuild(again)  # a start of the service: the artefact is built again
        assert again.exec(select(HybridArtefact).where(HybridArtefact.collection == RESIDENTS,
                                                       HybridArtefact.doc_id == awa.id)).first() is not None
        segments = matching.hybrid[RESIDENTS].segments(awa.id or 0)
        assert all(any(words in s for s in segments) for words in kept), segments
        assert not any("conduire" in s for s in segments)


def test_the_migration_deletes_the_statements_that_only_say_when(session: Session, world: World,
                                                                  migrated: Database) -> None:
    """Statements an earlier analysis kept, « disponible le samedi matin », « il me faut un
    salaire », go (the resident's skill and a time with a language stay); the artefacts built with
    them are rebuilt without, and the statement index forgets their vectors."""
    awa = add_resident(session, world, "Awa", "Je fais du jardinage. Je parle arabe le samedi.").resident
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Potager", description="Semer et arroser le potager. Le mercredi après-midi."), date.today())
    template = session.exec(select(SkillStatement).where(SkillStatement.resident_id == awa.id)).first()
    assert template is not None
    vector = matching.encode(["disponible le samedi matin"])[0]
    for position, words in enumerate(["disponible le samedi matin", "il me faut un salaire"], start=5):
        session.add(SkillStatement(declaration_id=template.declaration_id, resident_id=awa.id or 0,
                                   position=position, text=words, norm=words, vector=to_blob(vector),
                                   embedder=template.embedder, category=template.category))
    session.add(NeedStatement(need_id=need.id or 0, position=9, text="Le mercredi après-midi",
                              norm="Le mercredi après-midi", vector=to_blob(vector),
                              embedder=template.embedder))
    # Bea said only when she comes; a need's clause was cut inside a longer sentence.
    bea = add_resident(session, world, "Bea", "Je fais le ménage.").resident
    only = session.exec(select(SkillStatement).where(SkillStatement.resident_id == bea.id)).one()
    only.text = only.norm = "Je suis disponible le samedi matin"
    only.vector = to_blob(vector)
    session.add(only)
    inside = session.exec(select(NeedStatement).where(NeedStatement.need_id == need.id,
                                                      NeedStatement.position == 1)).one()
    inside.text = inside.norm = "Nous cherchons des bénévoles disponibles le samedi matin"
    inside.vector = to_blob(vector)
    session.add(inside)
    for collection, doc in ((RESIDENTS, awa.id), (RESIDENTS, bea.id), (NEEDS, need.id)):
        matching.mark(session, collection, doc or 0)  # indexed, as they were
    stored = session.exec(select(HybridArtefact).where(HybridArtefact.collection == NEEDS,
                                                       HybridArtefact.doc_id == need.id)).one()
    old = DocumentArtefact.from_bytes(stored.artefact)  # as made when the segment was kept
    old.segments.append("le mercredi après-midi")
    old.use_segments = np.vstack([old.use_segments, old.use_segments[-1:]])
    old.e5_segments = np.vstack([old.e5_segments, old.e5_segments[-1:]]) if old.e5_segments.size else \
        np.zeros((len(old.segments), 0), np.float32)
    stored.artefact = old.to_bytes()
    session.add(stored)
    session.commit()
    hits = matching.search(session, RESIDENTS, vector[None, :], 5, {awa.id or 0, bea.id or 0})
    assert len(hits) == 2 and all(h.best.similarity > 0.99 for h in hits)
    [hit] = matching.search(session, NEEDS, vector[None, :], 5, {need.id or 0})
    assert hit.best.similarity > 0.99
    matching.save()  # the index files a restart opens
    session.close()
    config = migrated.alembic_config()
    command.downgrade(config, "0022")
    command.upgrade(config, "head")
    with migrated.session() as again:
        assert [r.text for r in again.exec(select(SkillStatement).where(SkillStatement.resident_id == awa.id)
                                           .order_by(SkillStatement.position)).all()] == [
            "Je fais du jardinage", "Je parle arabe le samedi"]
        assert [r.text for r in again.exec(select(NeedStatement).where(NeedStatement.need_id == need.id)
                                           .order_by(NeedStatement.position)).all()] == [
            "Potager"]
        assert again.exec(select(SkillStatement).where(SkillStatement.resident_id == bea.id)).first() is None
        for collection, doc in ((RESIDENTS, awa.id), (NEEDS, need.id)):
            assert again.exec(select(HybridArtefact).where(HybridArtefact.collection == collection,
                                                           HybridArtefact.doc_id == doc)).first() is None
        # A start of the service: the artefacts are built again, the index files opened and brought
        # up to the migration's events.
        assert matching.load_or_rebuild(again) == "loaded"
        segments = matching.hybrid[RESIDENTS].segments(awa.id or 0)
        assert not any("samedi matin" in s or "salaire" in s for s in segments), segments
        assert not any("mercredi" in s for s in matching.hybrid[NEEDS].segments(need.id or 0))
        [hit] = matching.search(again, RESIDENTS, vector[None, :], 5, {awa.id or 0, bea.id or 0})
        assert hit.doc_id == awa.id and hit.best.similarity < 0.9
        assert all(h.best.similarity < 0.9 for h in matching.search(again, NEEDS, vector[None, :], 5,
                                                                     {need.id or 0}))


def test_the_migration_leaves_alone_who_has_no_licence(session: Session, world: World,
                                                       migrated: Database) -> None:
    """"sans permis" stays a refusal for the ranker: migration 0014 has nothing to rebuild there."""
    awa = add_resident(session, world, "Awa", "Je suis sans permis. Je fais la cuisine.").resident
    assert not any("permis" in s for s in matching.hybrid[RESIDENTS].segments(awa.id or 0))
    session.close()
    config = migrated.alembic_config()
    command.downgrade(config, "0013")
    command.upgrade(config, "head")
    with migrated.session() as again:
        assert again.exec(select(HybridArtefact).where(HybridArtefact.collection == RESIDENTS,
                                                       HybridArtefact.doc_id == awa.id)).first() is not None
