"""Personal-data rights: consent as the gate, export, erasure (database, index, rebuild)."""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlmodel import Session, select

from models import (
    AnonymousCount,
    AuditEvent,
    BackgroundJob,
    Consent,
    Direction,
    JobStatus,
    Match,
    MatchStatus,
    Need,
    Notification,
    ResidentRequest,
    SkillDeclaration,
    SkillStatement,
    User,
    ValidationStatus,
    utcnow,
)
from models import Resident as ResidentRow
from models.tables import AppendOnlyError
from tests.conftest import Auth, World, add_resident, approved_opportunity, taps
from web.config import Config
from web.extensions import matching
from web.services.audit import record
from web.services.imports import RESIDENTS_KIND
from web.services.jobs import create_job
from web.services.matching import RESIDENTS, MatchingService, from_blobs
from web.services.needs import NeedInput, create_need
from web.services.privacy import erase_and_forget, erase_resident, profile_history, resident_export
from web.services.profiles import add_months, update_declaration
from web.services.proposals import Proposal, propose_for_need, store_proposals, valid_consent_residents
from web.services.review import answer, approve, reject

AWA_TEXT = "Je fais de la couture et des retouches pour les voisines."
AWA_NEW_TEXT = "Je couds des rideaux et je fais des ourlets, je parle arabe."


@dataclass
class Story:
    world: World
    awa: int
    awa_code: str
    binta: int
    binta_code: str
    needs: list[int]


def _story(session: Session, world: World) -> Story:
    """Awa (two versions of her text, proposals rejected / approved and answered, a request) and
    Binta, both followed by centre A."""
    today = date.today()
    awa = add_resident(session, world, "Awa", AWA_TEXT, initial="K")
    binta = add_resident(session, world, "Binta", "Je couds des boubous et je fais des ourlets.",
                         initial="D")
    update_declaration(session, matching, world.worker_a, awa.resident, AWA_NEW_TEXT)
    needs = [create_need(session, matching, world.member, NeedInput(title=t, description=d), today)[0]
             for t, d in (("Atelier couture", "Animer un atelier couture le mercredi."),
                          ("Retouches", "Reprendre des ourlets pour la friperie."))]
    rid = awa.resident.id or 0
    store_proposals(session, [Proposal(n.id or 0, r, 0.5, {"pairs": [
        {"resident_text": "Je couds des rideaux", "need_text": n.title, "similarity": 0.5}]})
        for n in needs for r in (rid, binta.resident.id or 0)], Direction.NEED_TO_RESIDENT)
    first, second = session.exec(select(Match).where(Match.resident_id == rid)
                                 .order_by(Match.need_id)).all()  # type: ignore[arg-type]
    reject(session, world.worker_a, first, "schedule", "Elle garde ses petits-enfants le mercredi.")
    approve(session, world.worker_a, second)
    resident_user = session.exec(select(User).where(User.resident_id == rid)).one()
    answer(session, resident_user, second, accept=True, comment="Je peux le samedi matin.")
    session.add(ResidentRequest(resident_id=rid, kind="change", message="Ajouter le tricot."))
    session.commit()
    return Story(world, rid, awa.access_code, binta.resident.id or 0, binta.access_code,
                 [n.id or 0 for n in needs])


# ------------------------------------------------------------------------------------ consent

def test_expired_consent_removes_the_resident_from_matching(session: Session, world: World) -> None:
    today = date.today()
    old = add_resident(session, world, "Awa", AWA_TEXT, given_on=add_months(today, -13)).resident
    fresh = add_resident(session, world, "Binta", "Je couds des boubous et des retouches.").resident
    consent = session.exec(select(Consent).where(Consent.resident_id == old.id)).one()
    assert consent.expires_on is not None and consent.expires_on < today
    assert old.id in valid_consent_residents(session, consent.expires_on)  # the last day counts
    assert old.id not in valid_consent_residents(session, consent.expires_on + timedelta(days=1))
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier couture et des retouches."), today)
    propose_for_need(session, matching, need, today)
    proposed = {m.resident_id for m in session.exec(select(Match).where(Match.need_id == need.id)).all()}
    assert proposed == {fresh.id}


# ------------------------------------------------------------------------------------- export

def test_the_worker_exports_everything_held_about_a_resident(client: FlaskClient, auth: Auth,
                                                            session: Session, world: World) -> None:
    story = _story(session, world)
    auth.login(world.worker_a.email or "")
    response = client.get(f"/accompagnement/residents/{story.awa}/export.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    data = json.loads(response.get_data(as_text=True))
    assert data["resident"]["first_name"] == "Awa" and data["resident"]["territory"]["name"] == "Les Tilleuls"
    assert [d["text"] for d in data["declarations"]] == [AWA_TEXT, AWA_NEW_TEXT]
    assert [d["is_current"] for d in data["declarations"]] == [False, True]
    assert all(d["statements"] for d in data["declarations"])
    assert {c["method"] for c in data["consents"]} == {"paper_signed"}
    by_need = {p["need"]["title"]: p for p in data["proposals"]}
    assert by_need["Atelier couture"]["rejection_code"] == "schedule"
    assert by_need["Atelier couture"]["rejection_note"] == "Elle garde ses petits-enfants le mercredi."
    assert by_need["Retouches"]["status"] == MatchStatus.ACCEPTED
    assert by_need["Retouches"]["resident_comment"] == "Je peux le samedi matin."
    pairs = by_need["Retouches"]["explanation"]["pairs"]  # the explanation shown at review
    assert pairs and {"resident_text", "need_text", "similarity"} <= set(pairs[0])
    assert data["requests"][0]["message"] == "Ajouter le tricot."
    actions = {e["action"] for e in data["audit"]}
    assert {"resident.create", "declaration.update", "match.reject", "match.approve",
            "match.accept"} <= actions
    text = json.dumps(data)
    assert "Binta" not in text  # nobody else's data
    assert '"vector"' not in text and "digest" not in text and "password" not in text

    page = client.get(f"/accompagnement/residents/{story.awa}/export")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert AWA_TEXT in html and "Elle garde ses petits-enfants" in html and "data-print" in html
    exports = session.exec(select(AuditEvent).where(AuditEvent.action == "resident.export")).all()
    assert [(e.object_id, e.actor_id, e.details["format"]) for e in exports] == [
        (story.awa, world.worker_a.id, "json"), (story.awa, world.worker_a.id, "page")]


def test_a_resident_reads_and_downloads_their_own_data_only(client: FlaskClient, auth: Auth,
                                                            session: Session, world: World) -> None:
    """A page to read or print (a JSON file is no answer to someone who reads little), and the
    file for another service."""
    story = _story(session, world)
    auth.code_login(story.awa_code)
    page = client.get("/moi/donnees").get_data(as_text=True)
    assert 'href="/moi/donnees/copie"' in page and 'href="/moi/donnees/export.json"' in page
    copy = client.get("/moi/donnees/copie")
    html = copy.get_data(as_text=True)
    assert copy.status_code == 200 and copy.headers["Cache-Control"] == "no-store"
    assert "Tout ce que Relais garde sur vous" in html and "Ce que vous savez faire" in html
    assert AWA_TEXT in html and AWA_NEW_TEXT in html and "Ajouter le tricot." in html
    assert "Je peux le samedi matin." in html and "data-print" in html
    assert "Télécharger le fichier<" in html and "JSON" not in html  # a word she need not know
    assert "Binta" not in html and "/accompagnement/" not in html  # no staff page linked
    # The journal in sentences (it showed « profile.view (resident 1) » and JSON), and no empty
    # heading naming a table (« api_token », « background_job »).
    journal_at = html.index("Journal : qui a fait quoi")
    journal = html[journal_at:]
    assert "a créé votre fiche" in journal and "a validé une proposition pour vous" in journal
    assert "resident.create" not in journal and "match.approve" not in journal and "<code>" not in journal
    assert "<h3>api_token</h3>" not in html and "<h3>background_job</h3>" not in html
    # Her notices in sentences: they showed as rows of fields (« user_id : 6 · message_values : … »).
    notices = html[html.index("Les messages que Relais vous a montrés"):journal_at]
    assert "Nouvelle proposition pour vous : « " in notices and "lu" in notices
    assert "user_id" not in html and "message_values" not in html and "<h3>notification</h3>" not in html
    auth.logout()
    auth.code_login(story.binta_code)
    assert "Binta D." in client.get("/moi/donnees").get_data(as_text=True)
    data = json.loads(client.get("/moi/donnees/export.json").get_data(as_text=True))
    assert data["resident"]["id"] == story.binta and "Awa" not in json.dumps(data)
    logins = {u.resident_id: u.id for u in session.exec(select(User).where(User.resident_id.in_(  # type: ignore[union-attr]
        [story.awa, story.binta]))).all()}
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "resident.export")
                          .order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
    assert [(e.object_id, e.actor_id, e.details["format"]) for e in events] == [
        (story.awa, logins[story.awa], "page"), (story.binta, logins[story.binta], "json")]


# ------------------------------------------------------------------------------------ erasure

def _search(service: MatchingService, session: Session, vectors: np.ndarray, ids: set[int]) -> set[int]:
    return {h.doc_id for h in service.search(session, RESIDENTS, vectors, 10, ids)}


def _closest_in_file(path: Path, vectors: np.ndarray) -> float:
    """The highest cosine between `vectors` and any vector a saved FAISS file stores (tombstones
    included)."""
    import faiss

    raw = faiss.read_index(str(path))
    held = faiss.downcast_index(raw.index).reconstruct_n(0, raw.ntotal) if raw.ntotal else np.zeros((0, 1))
    return float((vectors @ held.T).max()) if raw.ntotal else 0.0


def test_erasure_removes_rows_vectors_index_entries_and_stays_erased_after_rebuild(
        client: FlaskClient, auth: Auth, session: Session, world: World, config: Config) -> None:
    story = _story(session, world)
    statements = session.exec(select(SkillStatement).where(SkillStatement.resident_id == story.awa)).all()
    vectors = from_blobs([s.vector for s in statements], matching.dim)
    both = {story.awa, story.binta}
    assert _search(matching, session, vectors, both) == both
    # Another process that loaded the index before the erasure follows it through the events.
    matching.save()
    other = MatchingService()
    other.configure_from(config)
    other.load_or_rebuild(session)
    assert _search(other, session, vectors, both) == both
    proposals_before = len(session.exec(select(Match).where(Match.resident_id == story.awa)).all())
    # Her "yes" told the association and her worker, by first name.
    assert session.exec(select(Notification).where(
        Notification.text.contains("Awa"))).all()  # type: ignore[attr-defined]

    auth.login(world.worker_a.email or "")
    refused = client.post(f"/accompagnement/residents/{story.awa}/effacer",
                          data={"csrf_token": auth.token()})
    assert refused.status_code == 302
    assert session.get(ResidentRow, story.awa) is not None  # no confirmation, nothing erased
    done = client.post(f"/accompagnement/residents/{story.awa}/effacer",
                       data={"csrf_token": auth.token(), "confirm": "y"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/accompagnement/")
    session.expire_all()

    # The database: no row of the person is left; the login is a nameless, inactive tombstone.
    assert session.get(ResidentRow, story.awa) is None
    for table in (Consent, SkillDeclaration, SkillStatement, Match, ResidentRequest):
        assert session.exec(select(table).where(table.resident_id == story.awa)).all() == []
    for needle in ("Awa", "couture et des retouches", "rideaux", "petits-enfants", "samedi matin",
                   "tricot"):
        assert not session.exec(select(SkillDeclaration).where(
            SkillDeclaration.text.contains(needle))).all()  # type: ignore[attr-defined]
        assert not session.exec(select(User).where(
            User.display_name.contains(needle))).all()  # type: ignore[attr-defined]
        assert not session.exec(select(Notification).where(
            Notification.text.contains(needle))).all()  # type: ignore[attr-defined]
    tombstone = session.exec(select(User).where(User.role == "resident",
                                                User.resident_id.is_(None))).one()  # type: ignore[union-attr]
    assert (tombstone.is_active, tombstone.access_code_digest, tombstone.display_name) == (False, None, "—")
    assert session.exec(select(Match).where(Match.resident_id == story.binta)).all()  # others stay
    # Statistics keep counts, not the person.
    counts = session.exec(select(AnonymousCount)).all()
    assert [(c.metric, c.status, c.count) for c in counts if c.metric == "resident"] == [
        ("resident", "worker", 1)]
    assert sum(c.count for c in counts if c.metric == "proposal") == proposals_before
    assert {c.need_id for c in counts if c.metric == "proposal"} == set(story.needs)
    erase = session.exec(select(AuditEvent).where(AuditEvent.action == "resident.erase")).one()
    assert erase.object_id == story.awa and erase.actor_id == world.worker_a.id
    assert erase.details["reason"] == "worker"
    assert erase.details["removed"]["skillstatement"] == len(statements)
    assert "Awa" not in json.dumps(erase.details)

    # The index: gone here, in the other process, after a rebuild, and from the files on disk.
    assert _search(matching, session, vectors, both) == {story.binta}
    assert _search(other, session, vectors, both) == {story.binta}
    matching.rebuild(session)
    assert _search(matching, session, vectors, both) == {story.binta}
    reloaded = MatchingService()
    reloaded.configure_from(config)
    assert reloaded.load_or_rebuild(session) == "loaded"
    assert _search(reloaded, session, vectors, both) == {story.binta}

    # The access code no longer opens anything.
    auth.logout()
    response = client.post("/code", data={"code": story.awa_code, "csrf_token": auth.token("/code")})
    assert response.status_code == 200 and "ne marche pas" in response.get_data(as_text=True)


def test_an_erased_persons_vectors_leave_every_processs_index_file(session: Session, world: World,
                                                                   config: Config) -> None:
    """A deleted vector stays in a FAISS index as a tombstone until a compaction (when they pass
    20 % of it): each process's saved copy kept her sentences' vectors, from which the nearest
    texts read them back. Erased, they are zeros in every copy at once."""
    awa = add_resident(session, world, "Awa", "Je couds des rideaux pour les voisines. Je garde des enfants.")
    for i, text in enumerate(["Je répare les vélos.", "Je cuisine pour quarante personnes.",
                              "Je fais du jardinage.", "Je conduis un minibus.", "Je peins des murs.",
                              "Je fais de la plomberie.", "Je tricote des pulls.", "Je joue de la guitare.",
                              "Je répare les ordinateurs.", "Je fais la coiffure.", "Je lis des contes.",
                              "Je fais le ménage.", "Je bricole des meubles."]):
        add_resident(session, world, f"P{i}", text)
    vectors = from_blobs([s.vector for s in session.exec(select(SkillStatement).where(
        SkillStatement.resident_id == awa.resident.id)).all()], matching.dim)
    matching.save()
    other = MatchingService()  # another gunicorn worker, loaded before the erasure
    other.configure_from(config)
    assert other.load_or_rebuild(session) == "loaded"
    erase_and_forget(session, matching, world.worker_a, session.get(ResidentRow, awa.resident.id), "worker")
    other.sync(session)
    for process in (matching, other):
        process.save()
        assert process.collections[RESIDENTS].index.tombstones == len(vectors)  # not compacted
        assert _closest_in_file(process.index_path(RESIDENTS), vectors) < 0.95


def test_partner_tools_learn_of_erasures_through_the_api(client: FlaskClient, session: Session,
                                                          world: World) -> None:
    """A tool that keeps copies of GET /residents never learnt that someone was erased: they just
    stopped appearing. GET /residents/erased lists them since an instant, for their centre."""
    from web.api.tokens import create_token

    story = _story(session, world)
    since = utcnow()
    erase_and_forget(session, matching, world.worker_a, session.get(ResidentRow, story.awa), "worker")
    bea = add_resident(session, world, "Béa", "Je tricote.", recorded_by=world.worker_b).resident
    erase_and_forget(session, matching, world.worker_b, bea, "worker")

    def erased(user: User, since: str) -> list[int]:
        secret = create_token(session, user, f"tableur {user.id}", False, 1).secret
        response = client.get(f"/api/v1/residents/erased?since={since}",
                              headers={"Authorization": f"Bearer {secret}"})
        assert response.status_code == 200, response.get_data(as_text=True)
        items = response.get_json()["items"]
        assert all(item["erased_at"] for item in items)
        return [item["id"] for item in items]

    stamp = since.isoformat().replace("+00:00", "Z")
    assert erased(world.worker_a, stamp) == [story.awa]  # their centre's, not centre B's
    assert erased(world.worker_b, stamp) == [bea.id]
    assert erased(world.admin, stamp) == [story.awa, bea.id]
    assert erased(world.admin, "2999-01-01T00:00:00Z") == []


@pytest.mark.skipif(os.environ.get("RELAIS_TEST_DB") == "postgres", reason="SQLite's files")
def test_an_erased_persons_words_leave_the_write_ahead_log(session: Session, world: World,
                                                           config: Config) -> None:
    """secure_delete overwrites her cells in the database file, but the write-ahead log beside it
    kept the pages as they were before, her text in them, for any copy of the folder to carry."""
    story = _story(session, world)
    files = [Path(config.database_url.removeprefix("sqlite:///"))]
    files.append(files[0].with_name(files[0].name + "-wal"))
    assert any(b"rideaux" in f.read_bytes() for f in files if f.exists())
    erase_and_forget(session, matching, world.worker_a, session.get(ResidentRow, story.awa), "worker")
    for needle in (b"rideaux", b"couture et des retouches", b"petits-enfants", b"samedi matin", b"tricot"):
        assert not any(needle in f.read_bytes() for f in files if f.exists()), needle
    assert session.get(ResidentRow, story.binta) is not None


@pytest.mark.skipif(os.environ.get("RELAIS_TEST_DB") == "postgres", reason="SQLite's files")
def test_a_log_a_reader_kept_is_said_and_emptied_by_the_next_retention_run(
        session: Session, world: World, config: Config, caplog: pytest.LogCaptureFixture) -> None:
    """Another process in the middle of a read keeps the write-ahead log: the erasure waited 30 s
    (the connections' busy timeout), then left her words in it without a word. It now waits a few
    seconds, says so in the log, and the daily retention run empties it."""
    import sqlite3

    from web.services.privacy import run_retention

    story = _story(session, world)
    database = Path(config.database_url.removeprefix("sqlite:///"))
    wal = database.with_name(database.name + "-wal")
    reader = sqlite3.connect(database, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM resident").fetchall()  # another worker's long read
    try:
        erase_and_forget(session, matching, world.worker_a, session.get(ResidentRow, story.awa), "worker")
    finally:
        reader.execute("COMMIT")
        reader.close()
    assert "the write-ahead log could not be emptied" in caplog.text
    assert b"rideaux" in wal.read_bytes()
    run_retention(session, matching, date.today(), 24, 30)
    assert not wal.exists() or b"rideaux" not in wal.read_bytes()
    assert b"rideaux" not in database.read_bytes()


def test_taps_sent_at_once_ask_for_erasure_once(client: FlaskClient, auth: Auth, session: Session,
                                                world: World) -> None:
    """Three taps on « Demander l'effacement » on a slow phone reach the server together: one
    request open, one journal entry, one notice to the worker."""
    story = _story(session, world)
    auth.code_login(story.awa_code)
    sent = {"message": "Je déménage.", "confirm": "y", "csrf_token": auth.token("/moi/donnees")}
    assert [tap.status_code for tap in taps(client, "/moi/donnees/effacement", sent, 3)] == [302] * 3
    assert len(session.exec(select(ResidentRequest).where(ResidentRequest.kind == "erasure")).all()) == 1
    assert len(session.exec(select(AuditEvent).where(AuditEvent.action == "request.create")).all()) == 1


def test_a_message_sent_twice_asks_once(client: FlaskClient, auth: Auth, session: Session,
                                        world: World) -> None:
    """Two taps on « Envoyer mon message » (« Ce que je sais faire ») stored two requests, shown
    twice to the resident and sent twice to the worker. Another message is another request."""
    story = _story(session, world)
    auth.code_login(story.awa_code)
    sent = {"message": "Ajouter que je fais du crochet.", "csrf_token": auth.token("/moi/savoir-faire")}
    assert [tap.status_code for tap in taps(client, "/moi/savoir-faire", sent, 2)] == [302] * 2
    client.post("/moi/savoir-faire", data=sent)  # and a reload
    client.post("/moi/savoir-faire", data={**sent, "message": "Et du tricot aussi."})
    asked = session.exec(select(ResidentRequest.message).where(
        ResidentRequest.resident_id == story.awa, ResidentRequest.kind == "change")).all()
    assert sorted(asked) == ["Ajouter le tricot.", "Ajouter que je fais du crochet.", "Et du tricot aussi."]


def test_a_resident_asks_for_erasure_and_the_worker_carries_it_out(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    story = _story(session, world)
    auth.code_login(story.awa_code)
    # The button asks first: the request stops every proposal at once, for good. The question is
    # a page of its own, not the answer to a POST: Back to it after « Non, garder mes données »
    # shows it again, not the browser's « Confirm Form Resubmission » (the page is no-store).
    assert 'href="/moi/donnees/effacement"' in client.get("/moi/donnees").get_data(as_text=True)
    asked = client.get("/moi/donnees/effacement").get_data(as_text=True)
    assert "Tout effacer ?" in asked and '<textarea id="message" name="message"' in asked
    assert 'name="confirm" value="y"' in asked
    assert 'href="/moi/donnees">Non, garder mes données' in asked
    old_page = auth.post("/moi/donnees/effacement", {"message": "Je déménage."},  # no « Oui »
                         token_from="/moi/donnees")
    assert old_page.headers["Location"] == "/moi/donnees/effacement"  # type: ignore[attr-defined]
    session.expire_all()
    assert not session.exec(select(ResidentRequest).where(ResidentRequest.kind == "erasure")).all()
    assert story.awa in valid_consent_residents(session, date.today())
    auth.post("/moi/donnees/effacement", {"message": "Je déménage.", "confirm": "y"},
              token_from="/moi/donnees")
    auth.post("/moi/donnees/effacement", {"confirm": "y"}, token_from="/moi/donnees")  # twice: one request
    page = client.get("/moi/donnees").get_data(as_text=True)
    assert "Vous avez demandé l'effacement" in page and 'href="/moi/donnees/effacement"' not in page
    assert client.get("/moi/donnees/effacement").headers["Location"] == "/moi/donnees"  # asked already
    assert len(session.exec(select(ResidentRequest).where(ResidentRequest.kind == "erasure")).all()) == 1
    # Out of matching at once, before the worker carries it out: the consent is withdrawn.
    session.expire_all()
    assert story.awa not in valid_consent_residents(session, date.today())
    assert len(session.exec(select(AuditEvent).where(AuditEvent.action == "consent.withdraw")).all()) == 1
    auth.logout()

    auth.login(world.worker_a.email or "")
    dashboard = client.get("/accompagnement/").get_data(as_text=True)
    assert "demande l'effacement de ses données" in dashboard
    profile = client.get(f"/accompagnement/residents/{story.awa}").get_data(as_text=True)
    assert "Je déménage." in profile and "Effacer définitivement" in profile
    auth.post(f"/accompagnement/residents/{story.awa}/effacer", {"confirm": "y"})
    session.expire_all()
    assert session.get(ResidentRow, story.awa) is None
    erase = session.exec(select(AuditEvent).where(AuditEvent.action == "resident.erase")).one()
    assert erase.details["reason"] == "request"
    assert client.get(f"/accompagnement/residents/{story.awa}").status_code == 404
    assert session.exec(select(func.count()).select_from(ResidentRow)).one() == 1


def test_an_erasure_request_is_carried_out_or_kept_on_purpose(client: FlaskClient, auth: Auth,
                                                              session: Session, world: World) -> None:
    """« Marquer comme traitée » beside an erasure request closed it with one tap, nothing erased
    (the erase form sat collapsed at the bottom of the page), and a consent renewed meanwhile put
    the person back into matching. The banner now erases, or says the person changed their mind;
    no consent is recorded while the request is open."""
    import re
    from datetime import datetime, timedelta

    from web.services.privacy import run_retention

    story = _story(session, world)
    auth.code_login(story.awa_code)
    auth.post("/moi/donnees/effacement", {"confirm": "y"}, token_from="/moi/donnees")
    auth.logout()
    request = session.exec(select(ResidentRequest).where(ResidentRequest.kind == "erasure")).one()
    auth.login(world.worker_a.email or "")
    profile = f"/accompagnement/residents/{story.awa}"
    page = client.get(profile).get_data(as_text=True).replace("&#39;", "'")
    banner = page[page.index(f'data-testid="request-{request.id}"'):]
    banner = banner[:banner.index("</div>")]
    said = re.search(r"Relais les effacera de lui-même le (\d\d/\d\d/\d{4})", banner)
    assert said
    day = datetime.strptime(said.group(1), "%d/%m/%Y").date()  # the retention run's day indeed:
    assert run_retention(session, matching, day - timedelta(days=1), 24, 30, dry_run=True).requested == []
    assert run_retention(session, matching, day, 24, 30, dry_run=True).requested == [story.awa]
    assert f'action="/accompagnement/residents/{story.awa}/effacer"' in banner
    assert "Effacer définitivement" in banner and "La personne a changé d'avis : ne pas effacer" in banner
    assert "Marquer comme traitée" not in banner

    renewed = auth.post(f"{profile}/consentement", {"method": "oral_in_person"}, token_from=profile,
                        follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "La personne a demandé l&#39;effacement de ses données" in renewed
    session.expire_all()
    assert story.awa not in valid_consent_residents(session, date.today())

    kept = auth.post(f"{profile}/demandes/{request.id}/traitee", {}, token_from=profile,
                     follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "rien n&#39;est effacé" in kept and "Effacer définitivement" in kept  # at the bottom still
    auth.post(f"{profile}/consentement", {"method": "oral_in_person"}, token_from=profile)
    session.expire_all()
    assert session.get(ResidentRow, story.awa) is not None
    assert story.awa in valid_consent_residents(session, date.today())


def test_a_resident_asks_a_change_of_their_text(client: FlaskClient, auth: Auth, session: Session,
                                                world: World) -> None:
    story = _story(session, world)
    auth.code_login(story.binta_code)
    page = client.get("/moi/savoir-faire").get_data(as_text=True)
    assert "Je couds des boubous" in page and "Envoyer mon message" in page
    auth.post("/moi/savoir-faire", {"message": ""}, token_from="/moi/savoir-faire")  # refused
    auth.post("/moi/savoir-faire", {"message": "Je sais aussi faire du crochet."},
              token_from="/moi/savoir-faire")
    request = session.exec(select(ResidentRequest).where(ResidentRequest.resident_id == story.binta)).one()
    assert request.kind == "change" and request.message == "Je sais aussi faire du crochet."
    assert "Message envoyé le" in client.get("/moi/savoir-faire").get_data(as_text=True)
    auth.logout()

    auth.login(world.worker_a.email or "")
    assert "demande un changement de son texte" in client.get("/accompagnement/").get_data(as_text=True)
    profile = client.get(f"/accompagnement/residents/{story.binta}").get_data(as_text=True)
    assert "Je sais aussi faire du crochet." in profile
    done = f"/accompagnement/residents/{story.binta}/demandes/{request.id}/traitee"
    sent = {"csrf_token": auth.token(f"/accompagnement/residents/{story.binta}")}
    assert [r.status_code for r in taps(client, done, sent, 3)] == [302] * 3  # taps: one entry
    handled = session.exec(select(AuditEvent).where(AuditEvent.action == "request.handle")).all()
    assert len(handled) == 1
    session.expire_all()
    assert session.get(ResidentRequest, request.id).handled_by_id == world.worker_a.id  # type: ignore[union-attr]
    assert "crochet" not in client.get(f"/accompagnement/residents/{story.binta}").get_data(as_text=True)


def test_a_request_reaches_the_persons_workers_even_after_a_withdrawal(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """Requests only showed in the dashboard's list: nobody was told. An erasure asked after the
    person had already withdrawn consent, or a change of text, sent no notice at all."""
    story = _story(session, world)

    def notices(kind: str) -> list[Notification]:
        session.expire_all()
        return list(session.exec(select(Notification).where(Notification.kind == kind)).all())

    auth.code_login(story.binta_code)
    auth.post("/moi/savoir-faire", {"message": "Je sais aussi faire du crochet."},
              token_from="/moi/savoir-faire")
    auth.post("/moi/donnees/accord/retrait", {"confirm": "y"}, token_from="/moi/donnees")
    assert [n.text for n in notices("request")] == ["Binta D. demande un changement de son texte."]
    auth.post("/moi/donnees/effacement", {"confirm": "y"}, token_from="/moi/donnees")  # consent gone already
    auth.post("/moi/donnees/effacement", {"confirm": "y"}, token_from="/moi/donnees")  # twice: told once
    told = notices("request")
    assert [n.text for n in told][1:] == ["Binta D. demande l'effacement de ses données."]
    assert {n.user_id for n in told} == {world.worker_a.id}  # the person's centre only
    assert told[1].link == f"/accompagnement/residents/{story.binta}"
    auth.logout()

    auth.login(world.worker_a.email or "")
    client.post("/langue", data={"lang": "en", "csrf_token": auth.token("/accompagnement/")})
    page = client.get("/notifications/").get_data(as_text=True)
    assert "Binta D. asks for their data to be erased." in page
    auth.post(f"/accompagnement/residents/{story.binta}/effacer", {"confirm": "y"})
    assert notices("request") == []  # they named the person


def test_an_erasure_scrubs_the_persons_languages_and_wishes_from_the_journal(
        session: Session, world: World) -> None:
    """The journal keeps who changed which field of the profile and when; the values (languages
    tell an origin) leave with the person. Other people's events keep theirs."""
    story = _story(session, world)
    binta = session.get(ResidentRow, story.binta)
    assert binta is not None
    update_declaration(session, matching, world.worker_a, binta, "Je couds et je parle wolof.")

    def about(rid: int) -> list[AuditEvent]:
        return list(session.exec(select(AuditEvent).where(
            AuditEvent.object_type == "resident", AuditEvent.object_id == rid)).all())

    edit = next(e for e in about(story.awa) if e.action == "declaration.update")
    assert edit.details["changes"]["languages"]["after"] == ["ar"]
    awa = session.get(ResidentRow, story.awa)
    assert awa is not None
    erasure = erase_resident(session, matching, world.worker_a, awa, "request")
    session.expire_all()

    events = about(story.awa)
    assert '"ar"' not in json.dumps([e.details for e in events])
    edit = next(e for e in events if e.action == "declaration.update")
    assert "changes" not in edit.details and "languages" in edit.details["changed"]
    created = next(e for e in events if e.action == "resident.create")
    assert {"languages", "availability", "wants"} & set(created.details["changed"])
    assert erasure.scrubbed == 2
    erase = next(e for e in events if e.action == "resident.erase")
    assert erase.details["scrubbed"] == 2
    kept = next(e for e in about(story.binta) if e.action == "declaration.update")
    assert kept.details["changes"]["languages"]["after"] == ["wo"]
    with pytest.raises(AppendOnlyError):  # the ORM still refuses to change an event
        kept.details = {}
        session.add(kept)
        session.commit()
    session.rollback()


def test_erasing_twice_says_it_is_done_rather_than_not_found(client: FlaskClient, auth: Auth,
                                                             session: Session, world: World) -> None:
    """A double click on « Effacer » showed « page introuvable » after the erasure: the worker
    could not tell whether the irreversible thing had happened. Someone else is still refused."""
    gone = add_resident(session, world, "Zora", "Je fais des tresses.", initial="Q").resident
    auth.login(world.worker_a.email or "")
    path = f"/accompagnement/residents/{gone.id}/effacer"
    token = auth.token(f"/accompagnement/residents/{gone.id}")
    first = client.post(path, data={"csrf_token": token, "confirm": "y"})
    again = client.post(path, data={"csrf_token": token, "confirm": "y"}, follow_redirects=True)
    assert first.status_code == 302 and again.status_code == 200
    assert "Les données de la personne sont effacées" in again.get_data(as_text=True)
    auth.logout()
    auth.login(world.worker_b.email or "")
    refused = client.post(path, data={"csrf_token": auth.token("/accompagnement/"), "confirm": "y"})
    assert refused.status_code == 404


def test_an_erasure_drops_the_centres_unconfirmed_files_that_may_name_the_person(
        session: Session, world: World) -> None:
    """A file uploaded but never confirmed (refused for an error in another row, or sent again
    after the import) kept the person's row, her name, text and consent date, for 24 hours after
    her erasure, and in every backup taken meanwhile. Her centre's drafts go with her; another
    centre's stay, and so do confirmed jobs (whose file was dropped when they ran)."""
    zora = add_resident(session, world, "Zora", "Je fais des tresses.", initial="Q").resident
    row = "prénom;initiale;quartier;ce que je sais faire\nZora;Q;Les Tilleuls;Je fais des tresses.\n"
    mine = create_job(session, world.worker_a, RESIDENTS_KIND, payload=row.encode(), status=JobStatus.DRAFT)
    other = create_job(session, world.worker_b, RESIDENTS_KIND, payload=row.encode(), status=JobStatus.DRAFT)
    session.commit()
    mine_id, other_id = mine.id, other.id
    erasure = erase_resident(session, matching, world.worker_a, zora, "worker")
    assert erasure.removed["background_job"] == 1
    session.expire_all()
    assert session.get(BackgroundJob, mine_id) is None and session.get(BackgroundJob, other_id) is not None


def test_an_erased_persons_id_is_never_given_to_another(session: Session, world: World) -> None:
    """A link kept from the erased person's page, or the journal's entries about them, must not
    lead to the next person recorded (SQLite gave the newest deleted id to the next row)."""
    gone = add_resident(session, world, "Zora", "Je fais des tresses.", initial="Q").resident
    gone_id = gone.id
    erase_resident(session, matching, world.worker_a, gone, "worker")
    new = add_resident(session, world, "Awa", "Je fais de la couture.", initial="K").resident
    assert new.id is not None and gone_id is not None and new.id > gone_id


def test_a_new_profile_never_inherits_the_journal_of_an_erased_one(session: Session, world: World) -> None:
    """SQLite gives a deleted row's id to the next row: erase the newest profile and the next one
    gets its id, while the journal keeps the events about the erased person (who looked at them,
    the erasure). The new person's export and history hold only what happened since they exist."""
    gone = add_resident(session, world, "Zora", "Je fais des tresses.", initial="Q").resident
    record(session, world.member, "profile.view", "resident", gone.id, need_id=1)
    session.commit()
    erase_resident(session, matching, world.worker_a, gone, "worker")
    new = add_resident(session, world, "Awa", "Je fais de la couture.", initial="K").resident
    login = session.exec(select(User).where(User.resident_id == new.id)).one()
    # Whatever the engine's ids: events about the new person's id, their login, a proposal's id,
    # and done with their login's id, from before each existed (as a previous holder left them).
    before = new.created_at - timedelta(days=3)
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier de couture."), date.today())
    store_proposals(session, [Proposal(need.id or 0, new.id or 0, 0.5, {})], Direction.NEED_TO_RESIDENT)
    match = session.exec(select(Match).where(Match.resident_id == new.id)).one()
    inherited = (("resident", new.id, world.member), ("match", match.id, world.worker_a),
                 ("user", login.id, world.worker_a), ("need", need.id, login))
    for object_type, object_id, actor in inherited:
        session.add(AuditEvent(at=before, actor_id=actor.id, action="old.event", object_type=object_type,
                               object_id=object_id, details={}))
    session.commit()
    exported = resident_export(session, new)
    assert exported["audit"] and "old.event" not in {e["action"] for e in exported["audit"]}
    assert "resident.erase" not in {e["action"] for e in exported["audit"]}
    assert "profile.view" not in {e["action"] for e in exported["audit"]}
    history = profile_history(session, new)
    assert history and {h.action for h in history}.isdisjoint({"old.event", "resident.erase", "profile.view"})


def test_pages_shown_to_someone_logged_in_are_kept_by_no_cache(client: FlaskClient, auth: Auth,
                                                               session: Session, world: World) -> None:
    """A profile, its printable export or a resident's own data stay out of caches and of the
    browser's history of a shared phone or computer; public pages and static files may be kept."""
    story = _story(session, world)
    assert "Cache-Control" not in client.get("/connexion").headers
    auth.login(world.worker_a.email or "")
    for path in (f"/accompagnement/residents/{story.awa}", f"/accompagnement/residents/{story.awa}/export",
                 "/accompagnement/"):
        response = client.get(path)
        assert (response.status_code, response.headers.get("Cache-Control")) == (200, "no-store"), path
    style = client.get("/static/relais.css")
    style.close()
    assert style.status_code == 200 and "no-store" not in style.headers.get("Cache-Control", "")
    auth.logout()
    auth.code_login(story.awa_code)
    mine = client.get("/moi/donnees")
    assert (mine.status_code, mine.headers.get("Cache-Control")) == (200, "no-store")


def test_an_admins_other_readings_of_another_centres_person_are_journaled_too(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """The profile's edit form, the person's contact page and the list of profiles to validate
    showed another centre's person to an administrator without a trace."""
    bob = add_resident(session, world, "Bob", "Je répare les vélos.", recorded_by=world.worker_b).resident
    sira = add_resident(session, world, "Sira", "Je couds.", recorded_by=world.worker_b).resident
    sira.validation_status = ValidationStatus.PENDING  # as a habitant-relais of centre B sends it
    session.add(sira)
    session.commit()
    auth.login(world.worker_b.email or "")  # a centre's own workers: no trace
    for path in (f"/accompagnement/residents/{bob.id}/profil", f"/accompagnement/residents/{bob.id}/contact"):
        assert client.get(path).status_code == 200
    auth.logout()
    auth.login(world.admin.email or "")
    for path in (f"/accompagnement/residents/{bob.id}/profil", f"/accompagnement/residents/{bob.id}/contact",
                 "/accompagnement/a-valider"):
        assert client.get(path).status_code == 200
    views = session.exec(select(AuditEvent).where(AuditEvent.action == "profile.view")).all()
    assert sorted((e.object_id, e.actor_id, e.details["via"]) for e in views) == sorted([
        (bob.id, world.admin.id, "page"), (bob.id, world.admin.id, "contact"),
        (sira.id, world.admin.id, "submissions")])


def test_an_admin_opening_another_centres_profile_is_in_the_persons_history(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """An administrator reaches every profile: opening one another centre follows is journaled and
    shown to the person; the centre's own workers open theirs without a trace each time."""
    bob = add_resident(session, world, "Bob", "Je répare les vélos.", recorded_by=world.worker_b).resident
    auth.login(world.worker_b.email or "")
    assert client.get(f"/accompagnement/residents/{bob.id}").status_code == 200
    auth.logout()
    auth.login(world.admin.email or "")
    assert client.get(f"/accompagnement/residents/{bob.id}").status_code == 200
    views = session.exec(select(AuditEvent).where(AuditEvent.action == "profile.view",
                                                  AuditEvent.object_id == bob.id)).all()
    assert [(e.actor_id, e.details) for e in views] == [(world.admin.id, {"via": "page"})]
    assert [e["action"] for e in resident_export(session, bob)["audit"]].count("profile.view") == 1
    page = client.get(f"/accompagnement/residents/{bob.id}").get_data(as_text=True)
    assert "Profil consulté hors du centre qui accompagne" in page


def test_an_admin_reading_the_closest_people_to_a_need_is_journaled(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """The need page's « Les plus proches » is a search over every centre for an administrator:
    reading another centre's people there (their own words) is journaled, as the API's search is."""
    bob = add_resident(session, world, "Bob", "Je répare les vélos et les mobylettes.",
                       recorded_by=world.worker_b).resident
    need = Need(organisation_id=world.association.id or 0, title="Atelier vélo",
                created_by_id=world.member.id or 0, description="Réparer les vélos des enfants du quartier.")
    session.add(need)
    session.commit()
    matching.store_need(session, need)
    session.commit()
    auth.login(world.admin.email or "")
    page = client.get(f"/accompagnement/besoins/{need.id}").get_data(as_text=True)
    assert "Bob" in page
    views = session.exec(select(AuditEvent).where(AuditEvent.action == "profile.view",
                                                  AuditEvent.object_id == bob.id)).all()
    assert [(e.actor_id, e.details) for e in views] == [(world.admin.id, {"via": "need"})]


def test_the_export_includes_what_staff_were_told_about_the_person(client: FlaskClient, auth: Auth,
                                                                   session: Session, world: World) -> None:
    """Notifications sent to staff name the person (« Awa K. a dit oui … »): they are data about
    her, in her export (with whom they went to), and not in anyone else's."""
    story = _story(session, world)
    awa, binta = session.get(ResidentRow, story.awa), session.get(ResidentRow, story.binta)
    assert awa is not None and binta is not None
    about_awa = [n for n in session.exec(select(Notification)).all() if "Awa" in n.text]
    assert about_awa, "the story notifies staff of Awa's answer"
    exported = resident_export(session, awa)["notifications_to_staff"]
    assert sorted(n["text"] for n in exported) == sorted(n.text for n in about_awa)
    assert {n["to"]["role"] for n in exported} <= {"association_member", "social_worker", "admin"}
    assert all("Awa" not in n["text"] for n in resident_export(session, binta)["notifications_to_staff"])
    auth.login(world.worker_a.email or "")
    page = client.get(f"/accompagnement/residents/{story.awa}/export").get_data(as_text=True)
    assert "Messages envoyés à l'équipe à son sujet" in page and exported[0]["text"] in page


def test_the_printed_export_says_decisions_in_words(client: FlaskClient, auth: Auth, session: Session,
                                                    world: World) -> None:
    """The page printed for the person: reasons, outcomes, requests and the consent's purpose in
    French words, never the codes the database keeps."""
    story = _story(session, world)
    auth.login(world.worker_a.email or "")
    page = client.get(f"/accompagnement/residents/{story.awa}/export").get_data(as_text=True)
    printed = page[page.index("Consentements"):page.index("Journal : qui a fait quoi")]
    for code in ("not_now", "busy", "schedule", "did_not_happen", "happened", "· erasure", "· change :",
                 ">matching<"):
        assert code not in printed, code
    assert "recevoir des propositions" in printed


def test_a_message_as_long_as_the_phone_allows_is_sent_with_its_line_breaks(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """maxlength=1000 counts a line break as one character; the browser sends two (CRLF): a
    message at the limit, written in lines, used to be refused as too long, and lost."""
    story = _story(session, world)
    typed = "\n".join(["Merci de tout effacer, je déménage chez ma fille à Lyon."] * 17)
    typed += "\n" + "x" * (1000 - len(typed) - 1)
    assert len(typed) == 1000
    auth.code_login(story.binta_code)
    page = auth.post("/moi/donnees/effacement", {"message": typed.replace("\n", "\r\n"), "confirm": "y"},
                     token_from="/moi/donnees", follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "trop long" not in page
    sent = session.exec(select(ResidentRequest).where(ResidentRequest.resident_id == story.binta)).one()
    assert sent.message == typed


def test_her_copy_of_her_data_speaks_to_her_in_plain_words(client: FlaskClient, auth: Auth,
                                                          session: Session, world: World) -> None:
    """« Voir mes données » was the workers' page: « ressemblance 39 % », « Mots en commun »,
    « Fiche faite par le compte n° 2 », « Prénom, pour la recherche », « Comment la joindre »
    about herself, dates as 2026-12-06, and proposals « à examiner » with no word on why she had
    never seen them. Her copy says it in sentences; the workers' copy keeps its detail; the file
    keeps everything."""
    awa = approved_opportunity(session, world, "Animer un atelier de couture.")
    match = session.exec(select(Match)).one()
    match.explanation = {"pairs": [{"resident_text": "Je fais de la couture.",
                                    "need_text": "Animer un atelier de couture.", "similarity": 0.39}],
                         "shared_terms": ["couture"], "reasons": ["dormant"]}
    session.add(match)
    session.commit()
    auth.code_login(awa.access_code)
    page = html.unescape(client.get("/moi/donnees/copie").get_data(as_text=True))
    for jargon in ("ressemblance", "Mots en commun", "compte n°", "Prénom, pour la recherche",
                   "Comment la joindre", "Consentements", date.today().isoformat()):
        assert jargon not in page, jargon
    assert "Pourquoi : vous avez dit « Je fais de la couture. », et la structure cherche « Animer un " \
           "atelier de couture. »." in page
    assert "vous voyez dans « Mes propositions » seulement celles qu'elle a gardées" in page
    assert "Vos accords" in page and date.today().strftime("%d/%m/%Y") in page
    assert "les numéros des comptes qui ont fait ou examiné votre fiche" in page
    file = client.get("/moi/donnees/export.json").get_json()
    assert file["resident"]["created_by_id"] == world.worker_a.id and file["resident"]["name_key"]
    auth.logout()
    auth.login(world.worker_a.email or "")
    staff = html.unescape(client.get(f"/accompagnement/residents/{awa.resident.id}/export")
                          .get_data(as_text=True))
    assert "ressemblance 39 %" in staff and "Fiche faite par le compte n°" in staff
    assert date.today().strftime("%d/%m/%Y") in staff
