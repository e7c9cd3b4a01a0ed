"""CSV import and export: encodings, separators, French per-row errors, preview, all-or-nothing,
export round trip. Imports run as inline background jobs here (no REDIS_URL); the RQ path is in
test_jobs.py."""

from __future__ import annotations

import csv
import gc
import io
import re
import time
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlmodel import Session, col, delete, select, update

from models import (
    AuditEvent,
    BackgroundJob,
    Consent,
    IndexEvent,
    JobStatus,
    Need,
    NeedStatement,
    Resident,
    Role,
    SkillDeclaration,
    SkillStatement,
    User,
    ValidationStatus,
)
from tests.conftest import Auth, World, add_resident, password_hash
from web.extensions import db, matching
from web.services import imports
from web.services.imports import decode, parse, sniff_delimiter

CONSENT_DAY = (date.today() - timedelta(days=10)).strftime("%d/%m/%Y")
HEADER = ("prénom;initiale;quartier;langues;disponibilités;souhaits;ce que je sais faire;"
          "consentement date;consentement méthode")
ROWS = [
    f"Zoé;B;Les Tilleuls;arabe, français;matin, week-end;bénévolat;"
    f"Je cuisine pour quarante personnes aux mariages.;{CONSENT_DAY};papier signé",
    f"Hélène;;les tilleuls;turc;soir;formation / emploi;"
    f"Je couds des robes et je fais des retouches.;{CONSENT_DAY};oral",
    f"Mamadou;K;Le Bourg;wolof et français;après-midi;activité;"
    f"Je répare les vélos et les mobylettes du quartier.;{CONSENT_DAY};Formulaire papier signé",
]


def residents_csv(rows: list[str] | None = None, sep: str = ";") -> str:
    lines = [HEADER, *(rows if rows is not None else ROWS)]
    if sep != ";":
        lines = [_resplit(line, sep) for line in lines]
    return "\r\n".join(lines) + "\r\n"


def _resplit(line: str, sep: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=sep, lineterminator="").writerow(line.split(";"))
    return buffer.getvalue()


def upload(auth: Auth, data: bytes, entity: str = "residents", name: str = "tableau.csv") -> object:
    return auth.client.post("/accompagnement/import", data={
        "entity": entity, "file": (io.BytesIO(data), name),
        "csrf_token": auth.token("/accompagnement/import")}, content_type="multipart/form-data")


def draft_id(response: object) -> int:
    location = response.headers["Location"]  # type: ignore[attr-defined]
    found = re.search(r"/accompagnement/import/(\d+)$", location)
    assert found, location
    return int(found.group(1))


def wait_for(job_id: int, timeout_s: float = 120.0) -> BackgroundJob:
    """The job's row once it has ended (inline jobs run in a thread of the test process)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with db.session() as s:
            job = s.get(BackgroundJob, job_id)
            assert job is not None
            if job.status in (JobStatus.FINISHED, JobStatus.FAILED):
                return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end in {timeout_s} s")


def import_file(auth: Auth, data: bytes, entity: str = "residents") -> BackgroundJob:
    """Upload, confirm the preview, and wait for the job."""
    return confirm_and_wait(auth, draft_id(upload(auth, data, entity)))


def confirm_and_wait(auth: Auth, job_id: int) -> BackgroundJob:
    response = auth.client.post(f"/accompagnement/import/{job_id}/valider",
                                data={"csrf_token": auth.token(f"/accompagnement/import/{job_id}")})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/accompagnement/taches/{job_id}")
    return wait_for(job_id)


def count(session: Session, table: type) -> int:
    return int(session.exec(select(func.count()).select_from(table)).one())


def test_a_forgotten_file_says_so_where_it_can_be_sent_again(auth: Auth, session: Session,
                                                             world: World) -> None:
    """An unconfirmed file is forgotten after 24 hours, or when a person of the centre is erased:
    its preview, « Importer » and « Annuler » answered a bare 404 to the colleague who had it open."""
    auth.login(world.worker_a.email or "")
    drafts = [draft_id(upload(auth, residents_csv().encode("utf-8"))) for _ in range(3)]
    session.exec(delete(BackgroundJob).where(col(BackgroundJob.id).in_(drafts)))  # type: ignore[call-overload]
    session.commit()
    form = {"csrf_token": auth.token("/accompagnement/import")}
    for ask in (lambda: auth.client.get(f"/accompagnement/import/{drafts[0]}"),
                lambda: auth.client.post(f"/accompagnement/import/{drafts[1]}/valider", data=form),
                lambda: auth.client.post(f"/accompagnement/import/{drafts[2]}/annuler", data=form)):
        response = ask()
        assert response.status_code == 302 and response.headers["Location"].endswith("/accompagnement/import")
        page = auth.client.get("/accompagnement/import").get_data(as_text=True)
        assert page.count("Ce fichier n&#39;est plus là") == 1 and "Déposez le fichier à nouveau" in page
    # Another centre's file that is there is still refused, as before.
    kept = draft_id(upload(auth, residents_csv().encode("utf-8")))
    auth.logout()
    auth.login(world.worker_b.email or "")
    assert auth.client.get(f"/accompagnement/import/{kept}").status_code == 403


# ---------------------------------------------------------------------- reading files

@pytest.mark.parametrize(("encoding", "label"), [
    ("utf-8", "UTF-8"), ("utf-8-sig", "UTF-8 (BOM)"), ("latin-1", "Windows-1252 (Latin-1)"),
    ("cp1252", "Windows-1252 (Latin-1)"),
])
def test_encodings_are_detected(app: Flask, session: Session, world: World, encoding: str,
                                label: str) -> None:
    data = residents_csv().encode(encoding)
    with app.test_request_context():
        parsed = parse(session, data, "residents", date.today())
    assert parsed.encoding == label
    assert parsed.ok, parsed.errors + parsed.row_errors
    assert [row.shown["first_name"] for row in parsed.rows] == ["Zoé", "Hélène", "Mamadou"]
    assert parsed.rows[0].shown["declaration"].startswith("Je cuisine")


def test_latin1_keeps_curly_apostrophes_and_oe() -> None:
    text, label = decode("Cœur d’artichaut".encode("cp1252"))
    assert (text, label) == ("Cœur d’artichaut", "Windows-1252 (Latin-1)")


@pytest.mark.parametrize("sep", [";", ",", "\t"])
def test_separators_are_sniffed(app: Flask, session: Session, world: World, sep: str) -> None:
    text = residents_csv(sep=sep)
    assert sniff_delimiter(text) == sep
    with app.test_request_context():
        parsed = parse(session, text.encode(), "residents", date.today())
    assert parsed.ok, parsed.errors + parsed.row_errors
    zoe, helene, mamadou = (row.data for row in parsed.rows)
    assert zoe.languages == ["ar", "fr"]  # type: ignore[union-attr]
    assert zoe.availability == ["weekday_morning", "weekend"]  # type: ignore[union-attr]
    assert helene.wants == ["training", "job"]  # type: ignore[union-attr]
    assert helene.territory_id == world.tilleuls.id  # type: ignore[union-attr]
    assert mamadou.territory_id == world.bourg.id  # type: ignore[union-attr]
    assert mamadou.consent_method == "paper_signed"  # type: ignore[union-attr]


def test_bad_rows_get_french_errors_with_line_numbers(client: FlaskClient, auth: Auth,
                                                      world: World) -> None:
    future = (date.today() + timedelta(days=3)).strftime("%d/%m/%Y")
    long_ago = (date.today() - timedelta(days=800)).strftime("%d/%m/%Y")
    rows = [
        ROWS[0],
        f";X;Les Tilleuls;;;;Je fais le ménage.;{CONSENT_DAY};oral",  # line 3: no first name
        f"Ali;;Les Peupliers;klingon;la nuit;;Je conduis.;{CONSENT_DAY};oral",  # line 4
        "Léa;;Les Tilleuls;;;;Je garde des enfants.;31/02/2026;par pigeon",  # line 5
        f"Inès;;Les Tilleuls;;;;;{future};oral",  # line 6: no declaration, consent in the future
        f"Rose;;Les Tilleuls;;;;Je tricote.;{long_ago};oral",  # line 7: consent expired since
    ]
    auth.login(world.worker_a.email or "")
    response = upload(auth, residents_csv(rows).encode())
    page = client.get(response.headers["Location"]).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Ligne 3 : Indiquez un prénom (ou un pseudonyme)." in page
    assert "Ligne 4 : Quartier inconnu : « Les Peupliers »" in page
    assert "Ligne 4 : Langue inconnue : « klingon »." in page
    assert "Ligne 4 : Disponibilité inconnue : « la nuit »" in page
    assert "Ligne 5 : Date du consentement illisible : « 31/02/2026 »" in page
    assert "Ligne 5 : Méthode de consentement inconnue : « par pigeon »" in page
    # Each unreadable cell is said once, not again as a consent missing.
    for missing in ("Le consentement de la personne est obligatoire", "Indiquez la date du consentement",
                    "Indiquez comment le consentement"):
        assert f"Ligne 5 : {missing}" not in page
    assert "Ligne 6 : Écrivez ce que la personne sait faire, avec ses mots." in page
    assert "Ligne 6 : Indiquez la date du consentement (aujourd&#39;hui ou avant)." in page
    assert "Ligne 7 : Ce consentement date de plus de 12 mois : il n&#39;est plus valable." in page
    assert "Ligne 2 :" not in page
    assert "/valider" not in page  # no way to import a file with errors
    job_id = draft_id(response)
    refused = client.post(f"/accompagnement/import/{job_id}/valider",
                          data={"csrf_token": auth.token()})
    assert refused.status_code == 302
    with db.session() as s:
        assert count(s, Resident) == 0
        assert s.get(BackgroundJob, job_id).status == JobStatus.DRAFT  # type: ignore[union-attr]


def test_missing_columns_and_empty_files_are_explained(app: Flask, session: Session,
                                                       world: World) -> None:
    with app.test_request_context():
        parsed = parse(session, "nom;âge\nDupont;42\n".encode(), "residents", date.today())
        assert not parsed.ok
        assert parsed.errors[0].startswith("Colonnes obligatoires absentes : prénom, quartier, "
                                           "ce que je sais faire, consentement date, consentement méthode")
        assert parse(session, b"  \n", "residents", date.today()).errors == ["Le fichier est vide."]
        only_header = parse(session, HEADER.encode(), "residents", date.today())
        assert only_header.errors == ["Le fichier n'a aucune ligne sous l'en-tête."]


def test_preview_shows_rows_as_understood_and_writes_nothing(client: FlaskClient, auth: Auth,
                                                             world: World) -> None:
    auth.login(world.worker_a.email or "")
    data = ("\ufeff" + residents_csv() .replace(HEADER, HEADER + ";remarque")).encode()
    response = upload(auth, data)
    assert response.status_code == 302  # type: ignore[attr-defined]
    page = client.get(response.headers["Location"]).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Encodage reconnu : UTF-8 (BOM)" in page and "séparateur : « ; »" in page
    assert "Colonnes ignorées : remarque." in page
    assert "arabe, français" in page and "matin, week-end" in page and "papier signé" in page
    assert "Importer les 3 ligne(s)" in page
    assert "<script>" not in page  # CSP: no inline script
    with db.session() as s:
        assert count(s, Resident) == 0 and count(s, IndexEvent) == 0


def test_a_bad_row_in_the_middle_writes_nothing(client: FlaskClient, auth: Auth, world: World) -> None:
    """Line 3's text has no statement at all: the preview cannot know (only the analysis does),
    so the job finds it and nothing of lines 2 and 4 is written either, index events included."""
    rows = [ROWS[0], f"Paco;;Les Tilleuls;;;;...;{CONSENT_DAY};oral", ROWS[2]]
    auth.login(world.worker_a.email or "")
    with db.session() as s:
        before = {table: count(s, table) for table in (IndexEvent, User)}
    job = import_file(auth, residents_csv(rows).encode())
    assert job.status == JobStatus.FAILED
    assert job.error == "Ligne 3 : Écrivez ce que la personne sait faire, avec ses mots."
    assert job.payload is None  # the file is not kept after the job
    with db.session() as s:
        for table in (Resident, Consent, SkillDeclaration, SkillStatement):
            assert count(s, table) == 0, table
        assert {table: count(s, table) for table in before} == before
        # Only the confirmation is in the journal: no profile, consent or import event.
        assert [e.action for e in s.exec(select(AuditEvent)).all()] == ["login", "import.confirm"]
    page = client.get(f"/accompagnement/taches/{job.id}").get_data(as_text=True)
    assert "Rien n'a été enregistré" in page and "Ligne 3 : Écrivez" in page


@pytest.mark.parametrize("processes", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_import_goes_through_the_profile_service(client: FlaskClient, auth: Auth, world: World,
                                                 processes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inline, and with the declarations prepared in a worker process (as a file of thousands)."""
    import web.services.imports as imports

    monkeypatch.setattr(imports, "PARALLEL_ROWS", 1 if processes else 10**9)
    monkeypatch.setenv("RELAIS_INGEST_PROCESSES", str(processes))
    auth.login(world.worker_a.email or "")
    job = import_file(auth, residents_csv().encode("cp1252"))
    assert job.status == JobStatus.FINISHED, job.error
    assert job.result["created"] == 3 and job.progress == job.total == 9
    with db.session() as s:
        residents = s.exec(select(Resident).order_by(col(Resident.id))).all()
        assert [r.public_name for r in residents] == ["Zoé B.", "Hélène", "Mamadou K."]
        assert {r.organisation_id for r in residents} == {world.centre_a.id}
        assert residents[0].languages[:2] == ["ar", "fr"]
        consents = s.exec(select(Consent)).all()
        assert {c.method for c in consents} == {"paper_signed", "oral_in_person"}
        assert len(s.exec(select(User).where(col(User.resident_id).is_not(None))).all()) == 3
        actions = [e.action for e in s.exec(select(AuditEvent)).all()]
        assert actions.count("resident.create") == 3 and "residents.import" in actions
        indexed = {e.doc_id for e in s.exec(select(IndexEvent).where(IndexEvent.collection == "residents"))}
        assert indexed == {r.id for r in residents}
        # The matcher sees them: a search for a cook finds Zoé first.
        vectors = matching.encode(["cuisiner pour une grande fête"])
        hits = matching.search(s, "residents", vectors, 3, {r.id or 0 for r in residents})
        assert hits[0].doc_id == residents[0].id


def test_needs_import_latin1_commas(client: FlaskClient, auth: Auth, session: Session,
                                   world: World) -> None:
    add_resident(session, world, "Nora", "Je cuisine des couscous pour cinquante personnes.")
    text = ("Titre,Description,Quand,Où,Langues,Créneaux,Type,Nombre de personnes\r\n"
            "Repas de quartier,\"Cuisiner un couscous pour la fête, samedi midi.\",samedi,"
            "Maison des projets,arabe,week-end,savoir-faire,3\r\n"
            "Prêt d'une camionnette,Transporter des tables pour la brocante.,dimanche,"
            "Gymnase,,,ressource,\r\n")
    auth.login(world.worker_a.email or "")
    job = import_file(auth, text.encode("latin-1"), entity="needs")
    assert job.status == JobStatus.FINISHED, job.error
    with db.session() as s:
        needs = s.exec(select(Need).order_by(col(Need.id))).all()
        assert [(n.title, n.kind, n.organisation_id) for n in needs] == [
            ("Repas de quartier", "skill", world.centre_a.id),
            ("Prêt d'une camionnette", "resource", world.centre_a.id)]
        assert needs[0].languages == ["ar"] and needs[0].availability == ["weekend"]
        assert needs[0].people_wanted == 3 and needs[0].where_text == "Maison des projets"
        assert count(s, NeedStatement) >= 4  # titles and sentences, embedded


# ---------------------------------------------------------------------- export

def test_export_round_trip_to_another_centre(client: FlaskClient, auth: Auth, session: Session,
                                             world: World) -> None:
    add_resident(session, world, "Samia", "=Je fais des gâteaux pour les fêtes.", initial="R",
                 languages=["ar", "ber"], availability=["weekend"], wants=["job"])
    add_resident(session, world, "Yusuf", "Je peins les appartements.", initial="T",
                 consent_method="oral_in_person", languages=["fr", "crp", "prs"])
    auth.login(world.worker_a.email or "")
    response = client.get("/accompagnement/export/residents.csv")
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/csv; charset=utf-8"
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())
    text = raw.decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0].startswith("prénom;initiale;quartier;langues")
    assert "'=Je fais des gâteaux" in text  # never a formula in a spreadsheet
    assert "Samia;R;Les Tilleuls;arabe, tamazight;week-end;emploi;" in text
    assert "Yusuf;T;Les Tilleuls;français, créole, dari;" in text  # no box offers them: named, not « crp »
    assert "-" not in lines[1].split(";")[0] and "@" not in text  # no code, no email

    # worker B (another centre) exports nothing of centre A's, then imports A's file.
    auth.logout()
    auth.login(world.worker_b.email or "")
    assert client.get("/accompagnement/export/residents.csv").get_data().decode(
        "utf-8-sig").count("\r\n") == 1
    job = import_file(auth, raw)
    assert job.status == JobStatus.FINISHED, job.error
    with db.session() as s:
        copies = s.exec(select(Resident).where(Resident.organisation_id == world.centre_b.id)
                        .order_by(col(Resident.id))).all()
        originals = s.exec(select(Resident).where(Resident.organisation_id == world.centre_a.id)
                           .order_by(col(Resident.id))).all()
        fields = ("first_name", "last_initial", "territory_id", "languages", "availability", "wants")
        assert [[getattr(r, f) for f in fields] for r in copies] == \
            [[getattr(r, f) for f in fields] for r in originals]
        texts = [s.exec(select(SkillDeclaration.text).where(SkillDeclaration.resident_id == r.id)).one()
                 for r in copies]
        assert texts == ["=Je fais des gâteaux pour les fêtes.", "Je peins les appartements."]
        methods = [s.exec(select(Consent.method).where(Consent.resident_id == r.id)).one() for r in copies]
        assert methods == ["paper_signed", "oral_in_person"]
        assert "residents.export" in [e.action for e in s.exec(select(AuditEvent)).all()]


def test_a_profile_not_validated_yet_is_exported_so_and_imported_waiting(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """A habitant-relais's profile waiting for validation keeps waiting through a file: imported
    by another centre, it is out of matching until one of its social workers validates it."""
    add_resident(session, world, "Sira", "Je fais des tresses et je garde des enfants.",
                 recorded_by=world.relais)
    add_resident(session, world, "Yusuf", "Je peins les appartements.")
    auth.login(world.worker_a.email or "")
    raw = client.get("/accompagnement/export/residents.csv").get_data()
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0].endswith(";fiche")
    assert [line.split(";")[-1] for line in lines[1:]] == ["à valider", "validée"]
    auth.logout()
    auth.login(world.worker_b.email or "")
    preview = client.get(f"/accompagnement/import/{draft_id(upload(auth, raw))}").get_data(as_text=True)
    assert "<td>à valider</td>" in preview and "<td>validée</td>" in preview
    job = import_file(auth, raw)
    assert job.status == JobStatus.FINISHED, job.error
    with db.session() as s:
        copies = {r.first_name: r for r in s.exec(select(Resident).where(
            Resident.organisation_id == world.centre_b.id)).all()}
        assert copies["Sira"].validation_status == ValidationStatus.PENDING
        assert copies["Yusuf"].validation_status == ValidationStatus.VALIDATED
        sira = copies["Sira"].id
        assert s.exec(select(SkillStatement).where(SkillStatement.resident_id == sira)).all() == []
        assert s.exec(select(User).where(User.resident_id == copies["Sira"].id)).all() == []  # no code yet
    waiting = client.get("/accompagnement/a-valider").get_data(as_text=True)
    assert "Je fais des tresses" in waiting and "Je peins" not in waiting
    odd = residents_csv([ROWS[0]]).replace("consentement méthode", "consentement méthode;fiche")
    odd = odd.replace("papier signé\r\n", "papier signé;peut-être\r\n")
    refused = client.get(f"/accompagnement/import/{draft_id(upload(auth, odd.encode()))}").get_data(
        as_text=True)
    assert "Fiche : « peut-être » n&#39;est pas reconnu (validée, à valider ou à corriger)." in refused


def test_withdrawn_consent_is_exported_and_never_imported_back(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    from web.services.profiles import withdraw_consent

    created = add_resident(session, world, "Karim", "Je fais de la plomberie.")
    withdraw_consent(session, world.worker_a, created.resident)
    auth.login(world.worker_a.email or "")
    raw = client.get("/accompagnement/export/residents.csv").get_data()
    assert date.today().strftime("%d/%m/%Y") in raw.decode("utf-8-sig").splitlines()[1]
    page = client.get(f"/accompagnement/import/{draft_id(upload(auth, raw))}").get_data(as_text=True)
    assert "Ligne 2 : Cette personne a retiré son consentement" in page


def test_needs_export_round_trip(client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    from web.services.needs import NeedInput, create_need

    create_need(session, matching, world.worker_a, NeedInput(
        title="Atelier vélo", description="Réparer des vélos avec les jeunes, le mercredi.",
        territory_id=world.tilleuls.id, languages=["fr"], availability=["weekday_afternoon"],
        people_wanted=2), date.today())
    create_need(session, matching, world.member, NeedInput(
        title="Pas à nous", description="Un besoin d'une autre structure."), date.today())
    auth.login(world.worker_a.email or "")
    raw = client.get("/accompagnement/export/besoins.csv").get_data()
    text = raw.decode("utf-8-sig")
    assert "Atelier vélo" in text and "Pas à nous" not in text
    # Back into the same centre, the file would double every need (each matched again): refused.
    page = client.get(f"/accompagnement/import/{draft_id(upload(auth, raw, 'needs'))}").get_data(
        as_text=True)
    assert "Ligne 2 : Ce besoin existe déjà dans votre structure (même titre, texte et quartier)" in page
    auth.logout()
    auth.login(world.worker_b.email or "")
    job = import_file(auth, raw, entity="needs")
    assert job.status == JobStatus.FINISHED, job.error
    with db.session() as s:
        copies = s.exec(select(Need).where(Need.title == "Atelier vélo").order_by(col(Need.id))).all()
        assert [c.organisation_id for c in copies] == [world.centre_a.id, world.centre_b.id]
        fields = ("description", "territory_id", "languages", "availability", "people_wanted", "kind")
        assert [getattr(copies[0], f) for f in fields] == [getattr(copies[1], f) for f in fields]
    twice = "titre;description\r\nCuisine;Cuisiner le jeudi.\r\ncuisine ; Cuisiner  le jeudi.\r\n"
    page = client.get(f"/accompagnement/import/{draft_id(upload(auth, twice.encode(), 'needs'))}").get_data(
        as_text=True)
    assert "Ligne 3 : Cette ligne répète une ligne plus haut (même titre, texte et quartier)." in page


def test_a_need_not_validated_yet_is_exported_so_and_imported_waiting(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """A need a habitant-relais noted (« Mme D., 3e étage… ») waits for a social worker of the
    centre. Exported without its state and imported by another centre, it came back validated
    and open: matched, and read by every structure, nobody having checked it."""
    from web.services.needs import NeedInput, create_need

    create_need(session, matching, world.relais, NeedInput(
        title="Courses de Mme D.", description="Une voisine âgée du 3e étage a besoin d'aide pour ses "
        "courses."), date.today())
    create_need(session, matching, world.worker_a, NeedInput(
        title="Atelier vélo", description="Réparer des vélos avec les jeunes, le mercredi."), date.today())
    auth.login(world.worker_a.email or "")
    lines = client.get("/accompagnement/export/besoins.csv").get_data().decode("utf-8-sig").splitlines()
    assert lines[0].endswith(";fiche")
    assert [line.split(";")[-1] for line in lines[1:]] == ["à valider", "validée"]
    auth.logout()
    auth.login(world.worker_b.email or "")
    job = import_file(auth, "\r\n".join(lines).encode(), entity="needs")
    assert job.status == JobStatus.FINISHED, job.error
    with db.session() as s:
        copies = {n.title: n for n in s.exec(select(Need).where(
            Need.organisation_id == world.centre_b.id)).all()}
        assert copies["Courses de Mme D."].validation_status == ValidationStatus.PENDING
        assert copies["Atelier vélo"].validation_status == ValidationStatus.VALIDATED
        assert s.exec(select(NeedStatement).where(
            NeedStatement.need_id == copies["Courses de Mme D."].id)).all() == []  # out of matching
    waiting = client.get("/accompagnement/a-valider").get_data(as_text=True)
    assert "Courses de Mme D." in waiting and "Atelier vélo" not in waiting


def test_an_export_read_in_english_imports_back_and_its_preview_agrees_with_the_job(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """Languages were written in the reader's language (« Persian »): the English preview accepted
    the file, and its job, which runs in French, failed on « Langue inconnue ». The file's words
    are French now, and a cell in English is read as the preview reads it."""
    add_resident(session, world, "Shirin", "Je fais de la couture.", languages=["fa", "fsl"])
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en-GB,en;q=0.9"
    auth.login(world.worker_a.email or "")
    raw = client.get("/accompagnement/export/residents.csv").get_data()
    assert "persan, langue des signes" in raw.decode("utf-8-sig")
    auth.logout()
    auth.login(world.worker_b.email or "")
    # The same file with a cell in English (another person: the first is in centre B by then).
    english = raw.decode("utf-8-sig").replace("persan, langue des signes", "Persian") \
        .replace("Shirin", "Leila").encode()
    for data in (raw, english):
        preview = client.get(f"/accompagnement/import/{draft_id(upload(auth, data))}").get_data(as_text=True)
        assert "Unknown language" not in preview and "Langue inconnue" not in preview
        job = import_file(auth, data)
        assert job.status == JobStatus.FINISHED, job.error
    with db.session() as s:
        copies = {r.first_name: r.languages for r in s.exec(select(Resident).where(
            Resident.organisation_id == world.centre_b.id)).all()}
    assert copies == {"Shirin": ["fa", "fsl"], "Leila": ["fa"]}


def test_an_administrator_without_a_structure_is_told_why_they_cannot_import(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """The first administrator (scripts/create_admin.py) has no structure: the import said « Seul·e
    un·e travailleur·se social·e peut importer un fichier », though administrators import."""
    admin = User(email="premiere@relais.example", display_name="Première", role=Role.ADMIN,
                 password_hash=password_hash())
    session.add(admin)
    session.commit()
    auth.login(admin.email or "")
    page = auth.client.post("/accompagnement/import", data={
        "entity": "residents", "file": (io.BytesIO(residents_csv().encode()), "tableau.csv"),
        "csrf_token": auth.token("/accompagnement/import")}, content_type="multipart/form-data",
        follow_redirects=True).get_data(as_text=True)
    assert "votre compte n&#39;en a pas" in page and "travailleur·se social·e peut importer" not in page
    assert not session.exec(select(BackgroundJob)).all()


def test_rows_analysed_in_several_batches_keep_their_own_statements(
        client: FlaskClient, auth: Auth, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches are analysed ahead in a thread: each row still gets its own declaration's statements."""
    monkeypatch.setattr(imports, "ANALYSE_BATCH", 2)
    rows = [*ROWS, f"Ines;;Les Tilleuls;;;;Je garde les enfants le soir.;{CONSENT_DAY};oral",
            f"Omar;;Les Tilleuls;;;;Je fais du jardinage.;{CONSENT_DAY};oral"]
    auth.login(world.worker_a.email or "")
    job = import_file(auth, residents_csv(rows).encode())
    assert job.status == JobStatus.FINISHED, job.error
    with db.session() as s:
        statements = {r.first_name: [st.text for st in s.exec(select(SkillStatement).where(
            SkillStatement.resident_id == r.id).order_by(col(SkillStatement.id))).all()]
            for r in s.exec(select(Resident)).all()}
    assert statements == {
        "Zoé": ["Je cuisine pour quarante personnes aux mariages"],
        "Hélène": ["Je couds des robes", "je fais des retouches"],
        "Mamadou": ["Je répare les vélos et les mobylettes du quartier"],
        "Ines": ["Je garde les enfants le soir"], "Omar": ["Je fais du jardinage"]}


def test_a_bad_row_in_a_later_batch_writes_nothing(client: FlaskClient, auth: Auth, world: World,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "ANALYSE_BATCH", 2)
    rows = [*ROWS, ROWS[0].replace("Zoé", "Lina"), f"Paco;;Les Tilleuls;;;;...;{CONSENT_DAY};oral"]
    auth.login(world.worker_a.email or "")
    job = import_file(auth, residents_csv(rows).encode())
    assert job.status == JobStatus.FAILED
    assert job.error == "Ligne 6 : Écrivez ce que la personne sait faire, avec ses mots."
    with db.session() as s:
        for table in (Resident, Consent, SkillDeclaration, SkillStatement):
            assert count(s, table) == 0, table


def test_the_same_people_are_never_imported_twice(client: FlaskClient, auth: Auth, session: Session,
                                                  world: World) -> None:
    """A file imported twice (or an export brought back into the same centre) would give every
    person a second profile, login and proposals: the preview names the rows already held, and
    the file is refused until they are removed; two identical rows in one file too. Another centre
    may import the same people (their own profiles)."""
    auth.login(world.worker_a.email or "")
    data = residents_csv().encode("utf-8")
    assert import_file(auth, data).status == JobStatus.FINISHED
    assert count(session, Resident) == 3
    page = client.get(f"/accompagnement/import/{draft_id(upload(auth, data))}").get_data(as_text=True)
    assert "a déjà une fiche dans votre structure" in page
    twice = residents_csv([ROWS[0].replace("Zoé", "Inès"), ROWS[0].replace("Zoé", "Inès ")]).encode("utf-8")
    with client.application.app_context():
        again = parse(session, data, "residents", date.today(), world.centre_a.id)
        assert not again.ok and all("a déjà une fiche" in row.errors[0] for row in again.rows)
        parsed = parse(session, twice, "residents", date.today(), world.centre_a.id)
        assert parsed.rows[0].errors == []
        assert "répète une ligne plus haut" in parsed.rows[1].errors[0]
        assert parse(session, data, "residents", date.today(), world.centre_b.id).ok


def test_the_same_file_confirmed_twice_at_once_is_written_once(client: FlaskClient, auth: Auth,
                                                                session: Session, world: World) -> None:
    """Two drafts of one file (two tabs, two colleagues) were each checked for duplicates before
    the other had written: confirmed together, every person got two profiles and two logins.
    The second confirmation waits for the first; a job checks again as it writes."""
    from web.services.jobs import JobFailed, Progress

    auth.login(world.worker_a.email or "")
    data = residents_csv().encode("utf-8")
    first, second = draft_id(upload(auth, data)), draft_id(upload(auth, data))
    session.exec(update(BackgroundJob).where(col(BackgroundJob.id) == first)  # still working
                 .values(status=JobStatus.RUNNING))
    session.commit()
    preview = f"/accompagnement/import/{second}"
    page = auth.post(f"{preview}/valider", {}, token_from=preview,
                     follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Un autre import du même type est en cours pour votre structure" in page
    assert session.get(BackgroundJob, second).status == JobStatus.DRAFT  # type: ignore[union-attr]
    # Had both been queued, the second job, writing after the first, stops on the rows it holds.
    session.exec(update(BackgroundJob).where(col(BackgroundJob.id) == first).values(status=JobStatus.DRAFT))
    session.commit()
    assert confirm_and_wait(auth, first).status == JobStatus.FINISHED
    late = session.get(BackgroundJob, second)
    assert late is not None
    with client.application.app_context(), pytest.raises(JobFailed) as stopped:
        imports.run_import(late, Progress(second))
    assert "a déjà une fiche dans votre structure" in str(stopped.value)
    assert count(session, Resident) == 3


# The test client spools a body this large to a temporary file, which it leaves to the garbage
# collector when the application refuses the body unread: collected here, not in the next test.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_file_over_the_size_limit_gets_the_form_again_with_why(client: FlaskClient, auth: Auth,
                                                                  world: World) -> None:
    """A 5,000-row file over 2 MB came back « Le texte envoyé est trop long. » on an error page,
    the form gone."""
    auth.login(world.worker_a.email or "")
    row = ROWS[0].replace("Zoé", "Z{i}")
    data = residents_csv([row.format(i=i) + " " * 500 for i in range(5000)]).encode("utf-8")
    assert len(data) > 2 * 1024 * 1024
    response = upload(auth, data)
    assert response.status_code == 302  # type: ignore[attr-defined]
    page = client.get(response.headers["Location"]).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Le fichier dépasse 2 Mo : coupez-le en plusieurs fichiers" in page and 'type="file"' in page
    del response
    gc.collect()


def test_rows_are_numbered_as_the_spreadsheet_shows_them(client: FlaskClient, session: Session,
                                                         world: World) -> None:
    """A cell written on several lines (Alt+Entrée in Excel) moved every later row's number: the
    fourth row was « Ligne 7 ». And an unknown neighbourhood was said twice, once in the form's
    words (« Choisissez le quartier de la personne »)."""
    rows = [f'Zoé;B;Les Tilleuls;;;;"Je cuisine.\nJe couds.\nJe repasse.";{CONSENT_DAY};oral',
            f'Ali;;Les Tilleuls;;;;"Je répare\ndes vélos.";{CONSENT_DAY};oral',
            f"Paco;;Quartier Inconnu;;;;Je peins.;{CONSENT_DAY};oral"]
    with client.application.test_request_context():
        parsed = parse(session, residents_csv(rows).encode("utf-8"), "residents", date.today(),
                       world.centre_a.id)
    assert [row.line for row in parsed.rows] == [2, 3, 4]
    [unknown] = parsed.rows[2].errors
    assert unknown.startswith("Quartier inconnu")


def test_a_needs_export_brought_back_does_not_reopen_closed_needs(client: FlaskClient, auth: Auth,
                                                                   session: Session, world: World) -> None:
    """Only needs not closed counted as duplicates: the centre's export imported back gave every
    closed need a second, open copy, indexed and proposed to residents again."""
    from web.services.needs import NeedInput, create_need

    need, _ = create_need(session, matching, world.worker_a, NeedInput(
        title="Atelier vélo", description="Réparer des vélos avec les jeunes, le mercredi.",
        territory_id=world.tilleuls.id), date.today())
    need.status = "closed"
    session.add(need)
    session.commit()
    auth.login(world.worker_a.email or "")
    exported = client.get("/accompagnement/export/besoins.csv").get_data()
    draft = draft_id(upload(auth, exported, "needs"))
    page = client.get(f"/accompagnement/import/{draft}").get_data(as_text=True)
    assert "Ce besoin existe déjà dans votre structure, clôturé" in page
    assert count(session, Need) == 1


def test_a_surname_in_the_initial_column_is_known_again(client: FlaskClient, auth: Auth, session: Session,
                                                        world: World) -> None:
    """The initial column may hold the whole surname ("Benali"): the profile keeps "B", and the
    same file imported again is still recognised (it compared "benali" with "b")."""
    auth.login(world.worker_a.email or "")
    data = residents_csv([ROWS[0].replace("Zoé;B;", "Zoé; benali ;")]).encode("utf-8")
    assert import_file(auth, data).status == JobStatus.FINISHED
    assert session.exec(select(Resident.last_initial)).all() == ["B"]
    with client.application.app_context():
        again = parse(session, data, "residents", date.today(), world.centre_a.id)
    assert not again.ok and "a déjà une fiche" in again.rows[0].errors[0]


def test_sensitive_words_in_a_file_are_refused_as_on_the_form(client: FlaskClient, auth: Auth,
                                                               session: Session, world: World) -> None:
    """The form holds back a text naming health or religion until the worker confirms it with the
    person; a file cannot confirm, so the row is refused with the words found."""
    auth.login(world.worker_a.email or "")
    text = "Je suis séropositive, je fais la cuisine pour la mosquée."
    data = residents_csv([ROWS[0].replace("Je cuisine pour quarante personnes aux mariages.", text)])
    with client.application.app_context():
        parsed = parse(session, data.encode("utf-8"), "residents", date.today(), world.centre_a.id)
    assert not parsed.ok
    assert any("informations sensibles (santé : séropositive ; religion ou convictions : mosquée)" in error
               for error in parsed.rows[0].errors), parsed.rows[0].errors
    page = client.get(f"/accompagnement/import/{draft_id(upload(auth, data.encode('utf-8')))}")
    assert "informations sensibles" in page.get_data(as_text=True)
    assert count(session, Resident) == 0


def test_exports_read_each_table_once_whatever_their_length(session: Session, world: World) -> None:
    """The needs' export asked the territory table once per need: 505 queries for 500 needs (a
    review helper's 10k-resident copy); the residents' once per neighbourhood."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from web.services.needs import NeedInput, create_need

    engine = session.get_bind()
    assert isinstance(engine, Engine)

    def queries_of(export: Callable[[], object]) -> int:
        seen: list[str] = []

        def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            export()
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return sum(1 for s in seen if s.lstrip().upper().startswith("SELECT"))

    def export_both() -> tuple[int, int]:
        return (queries_of(lambda: imports.export_needs(session, world.admin)),
                queries_of(lambda: imports.export_residents(session, world.admin)))

    for i in range(2):
        create_need(session, matching, world.worker_a, NeedInput(
            title=f"Atelier {i}", description="Réparer des vélos.", territory_id=world.bourg.id),
            date.today())
        add_resident(session, world, f"Awa{i}", "Je couds.", territory_id=world.bourg.id)
    few = export_both()
    for i in range(6):
        create_need(session, matching, world.worker_a, NeedInput(
            title=f"Cours {i}", description="Cours de cuisine.", territory_id=world.tilleuls.id),
            date.today())
        add_resident(session, world, f"Binta{i}", "Je cuisine.", languages=["ar", "wo"])
    assert export_both() == few
