"""What a helper's review of the social worker's and habitant-relais's pages found, each case
reproduced first: two decisions on one submission, a resubmission without a trace, an initial
that became two letters, spreadsheets that broke the import preview, forms failing in silence."""

from __future__ import annotations

import codecs
import re
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import (
    AuditEvent,
    Direction,
    Match,
    MatchStatus,
    Need,
    Resident,
    SkillDeclaration,
    ValidationStatus,
)
from tests.conftest import Auth, World, add_resident, need_form, sent_back
from tests.web.test_habitant_relais import COUTURE, NEW_NEED, only_resident, submit_person
from tests.web.test_imports import import_file, residents_csv
from web.extensions import db, matching
from web.services import ServiceError
from web.services.imports import decode, parse
from web.services.needs import NeedInput, create_need
from web.services.proposals import Proposal, store_proposals
from web.services.validation import send_back, validate_resident


@pytest.fixture(autouse=True)
def _use_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAIS_ENCODERS", "use")


def test_of_two_decisions_read_at_once_on_a_submission_the_first_counts(
        auth: Auth, world: World, session: Session) -> None:
    """A worker validates while a colleague, from the same list read before, sends it back: the
    second is refused, so a profile is never both validated (login, indexed) and sent back."""
    auth.login(world.relais.email or "")
    submit_person(auth, world)
    sira = only_resident(session, "Sira")
    with db.session() as other:
        stale = other.get(Resident, sira.id)
        assert stale is not None and stale.validation_status == ValidationStatus.PENDING
        validate_resident(session, matching, world.worker_a, sira, date.today())
        with pytest.raises(ServiceError, match="déjà été examinée"):
            send_back(other, world.worker_a, stale, "Qu'est-ce qu'elle fait ?")
    session.expire_all()
    assert only_resident(session, "Sira").validation_status == ValidationStatus.VALIDATED
    actions = session.exec(select(AuditEvent.action).where(AuditEvent.object_type == "resident",
                                                           AuditEvent.object_id == sira.id)).all()
    assert "resident.validate" in actions and "resident.send_back" not in actions


def test_a_resubmission_is_journaled_even_when_nothing_else_changed(
        client: FlaskClient, auth: Auth, world: World, session: Session) -> None:
    auth.login(world.relais.email or "")
    auth.post(NEW_NEED, need_form("Atelier couture", "Le collectif cherche quelqu'un pour la couture.",
                                  territory_id=world.tilleuls.id), token_from=NEW_NEED)
    need = session.exec(select(Need)).one()
    sent_back(auth, world, "besoins", need.id, "Quand ?")
    fix = f"/relais/besoins/{need.id}/corriger"
    auth.post(fix, {"title": need.title, "description": need.description}, token_from=fix)
    session.expire_all()
    assert session.get(Need, need.id).validation_status == ValidationStatus.PENDING  # type: ignore[union-attr]
    actions = session.exec(select(AuditEvent.action).where(AuditEvent.object_type == "need")
                           .order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
    assert actions == ["need.create", "need.send_back", "need.resubmit"]


@pytest.mark.parametrize("initial", ["ß", "ﬀ", "ŉ"])
def test_an_initial_is_one_letter_whatever_its_capital(session: Session, world: World, initial: str) -> None:
    """"ß".upper() is "SS": stored so, it broke PostgreSQL's one-character column (a 500)."""
    resident = add_resident(session, world, "Zora", COUTURE, initial=initial).resident
    session.expire_all()
    stored = session.get(Resident, resident.id)
    assert stored is not None and len(stored.last_initial) == 1


def test_a_spreadsheet_with_a_byte_order_mark_it_does_not_follow_is_still_read(
        app: Flask, session: Session, world: World) -> None:
    """Latin-1 bytes after a UTF-8 byte-order mark (a 500 on the preview), a NUL in a cell (the
    import then failed on PostgreSQL with an unexplained error)."""
    latin1 = codecs.BOM_UTF8 + residents_csv().encode("latin-1")
    text, label = decode(latin1)
    assert "Zoé" in text and label == "Windows-1252 (Latin-1)"
    with_nul = residents_csv().replace("Zoé", "Zo\x00é").encode("utf-8")
    with app.test_request_context():
        parsed = parse(session, with_nul, "residents", date.today())
    assert parsed.ok and parsed.rows[0].shown["first_name"] == "Zoé"
    odd = codecs.BOM_UTF16_LE + b"\x00\xd8" + residents_csv().encode("utf-8")  # a lone surrogate
    with app.test_request_context():
        assert parse(session, odd, "residents", date.today()) is not None  # read, or refused in French


def test_forms_of_the_resident_page_say_why_they_did_nothing(client: FlaskClient, auth: Auth,
                                                             world: World, session: Session) -> None:
    resident = add_resident(session, world, "Awa", COUTURE).resident
    page = f"/accompagnement/residents/{resident.id}"
    auth.login(world.worker_a.email or "")
    long_text = auth.post(f"{page}/declaration", {"declaration": "je cuisine " * 1000},
                          token_from=page, follow_redirects=True)
    shown = long_text.get_data(as_text=True)  # type: ignore[attr-defined]
    # Said beside the field, which keeps what was typed, and read with it by a screen reader.
    assert 'id="declaration-error"><p>Le champ ne peut pas contenir plus de 10000 caractères.' in shown
    assert re.search(r'<textarea[^>]*aria-describedby="declaration-error"[^>]*aria-invalid="true"', shown)
    assert "je cuisine je cuisine" in shown and "<details open>" in shown
    assert session.exec(select(SkillDeclaration.text).where(
        SkillDeclaration.resident_id == resident.id)).all() == [COUTURE]
    nothing = auth.post(f"{page}/declaration", {"declaration": "?!…"}, token_from=page)
    assert 'id="declaration-error"><p>Écrivez ce que la personne sait faire' in nothing.get_data(  # type: ignore[attr-defined]
        as_text=True)
    no_method = auth.post(f"{page}/consentement", {}, token_from=page, follow_redirects=True)
    assert "Indiquez comment le consentement a été recueilli." in no_method.get_data(  # type: ignore[attr-defined]
        as_text=True)


def test_a_rejection_note_gets_the_services_limit_and_its_message(client: FlaskClient, auth: Auth,
                                                                   world: World, session: Session) -> None:
    """The form stopped at 900 characters and then said "Indiquez la raison du refus." though a
    reason was given; the service allows 1,000 and says when a note is longer."""
    awa = add_resident(session, world, "Awa", COUTURE).resident
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier de couture."), date.today())
    for m in session.exec(select(Match)).all():
        session.delete(m)
    session.commit()
    store_proposals(session, [Proposal(need.id or 0, awa.id or 0, 0.5, {})], Direction.NEED_TO_RESIDENT)
    match = session.exec(select(Match)).one()
    auth.login(world.worker_a.email or "")
    desk = "/accompagnement/propositions"
    refused = auth.post(f"{desk}/{match.id}/refuser", {"reason_code": "other", "reason_text": "x" * 1001},
                        token_from=desk, follow_redirects=True)
    assert "La raison est trop longue (1 000 caractères au plus)." in refused.get_data(  # type: ignore[attr-defined]
        as_text=True)
    auth.post(f"{desk}/{match.id}/refuser", {"reason_code": "other", "reason_text": "x" * 950},
              token_from=desk)
    session.expire_all()
    assert session.get(Match, match.id).status == MatchStatus.REJECTED  # type: ignore[union-attr]


def test_the_history_and_the_printed_export_read_in_words(client: FlaskClient, auth: Auth, world: World,
                                                          session: Session) -> None:
    """A validated submission's history said "resident.validate"; the page printed for the person
    listed "validation_status : validated", "name_key", and slots and wishes as codes."""
    auth.login(world.relais.email or "")
    submit_person(auth, world)
    sira = only_resident(session, "Sira")
    auth.logout()
    auth.login(world.worker_a.email or "")
    auth.post(f"/accompagnement/a-valider/personnes/{sira.id}/valider", {},
              token_from="/accompagnement/a-valider")
    page = client.get(f"/accompagnement/residents/{sira.id}").get_data(as_text=True)
    assert "<strong>Fiche validée</strong>" in page and "<strong>resident.validate</strong>" not in page
    printed = client.get(f"/accompagnement/residents/{sira.id}/export").get_data(as_text=True)
    printed = printed[printed.index("<section><h2>Profil"):]
    printed = printed[:printed.index("</section>")]  # the journal below keeps its codes, as stored
    for raw in ("validation_status", "name_key", "contact_channel", "weekday_afternoon", "volunteering"):
        assert raw not in printed, raw
    assert "en semaine, l&#39;après-midi" in printed and "faire du bénévolat" in printed
    assert "Comment la joindre après un oui" in printed


def test_cancelling_an_import_already_run_says_so(auth: Auth, world: World) -> None:
    auth.login(world.worker_a.email or "")
    job = import_file(auth, residents_csv().encode("utf-8"))
    page = auth.post(f"/accompagnement/import/{job.id}/annuler", {}, token_from="/accompagnement/import",
                     follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "déjà lancé" in page and "Import annulé" not in page
