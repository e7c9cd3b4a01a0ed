"""Habitants-relais record profiles and needs on a phone; nothing enters matching until a social
worker of the same centre validates it; a habitant-relais only ever sees their own submissions."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, func, select, update

from models import (
    AuditEvent,
    Database,
    IndexEvent,
    Match,
    Need,
    NeedStatement,
    NeedStatus,
    Resident,
    Role,
    SkillDeclaration,
    SkillStatement,
    User,
    ValidationStatus,
    utcnow,
)
from tests.conftest import (
    Auth,
    World,
    add_resident,
    need_form,
    password_hash,
    resident_form,
    sent_back,
    taps,
)
from web.api.tokens import create_token
from web.extensions import db, matching
from web.services import AlreadyDone, ChangedMeanwhile
from web.services.matching import NEEDS, RESIDENTS
from web.services.needs import NeedInput, create_need
from web.services.profiles import update_declaration
from web.services.proposals import propose_for_need, propose_for_resident, valid_consent_residents
from web.services.validation import pending_for, submitted_by, validate_resident

COUTURE = "Je fais de la couture et des retouches pour les voisines, à la machine et à la main."
NEW_PERSON = "/relais/personnes/nouvelle"
NEW_NEED = "/relais/besoins/nouveau"


def in_index(session: Session, collection: str, doc_id: int) -> bool:
    """Whether the FAISS collection holds the document (after applying every index event)."""
    matching.sync(session)
    return doc_id in matching.collections[collection]


def submit_person(auth: Auth, world: World, name: str = "Sira", text: str = COUTURE) -> None:
    response = auth.post(NEW_PERSON, resident_form(text, world.tilleuls, first_name=name),
                         token_from=NEW_PERSON)
    assert response.status_code == 302, response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert response.headers["Location"].endswith("/relais/")  # type: ignore[attr-defined]


def only_resident(session: Session, name: str) -> Resident:
    return session.exec(select(Resident).where(Resident.first_name == name)).one()


def correction(person: Resident, declaration: str, **changed: object) -> dict[str, object]:
    """The correction page sent as shown (the person's fields as they are), with its new text."""
    return {"first_name": person.first_name, "last_initial": person.last_initial,
            "territory_id": person.territory_id, "languages": person.languages,
            "availability": person.availability, "wants": person.wants, "declaration": declaration,
            **changed}


def test_validating_twice_leads_to_the_profile_not_to_an_error(client: FlaskClient, auth: Auth,
                                                                world: World, session: Session) -> None:
    """A double click on « Valider »: the first showed the code, the second answered « déjà
    validée » on the list, and the code was lost. The second leads to the profile, whose page
    gives a new code; another worker is still told it was validated."""
    auth.login(world.relais.email or "")
    submit_person(auth, world)
    sira = only_resident(session, "Sira")
    auth.logout()
    auth.login(world.worker_a.email or "")
    path = f"/accompagnement/a-valider/personnes/{sira.id}/valider"
    token = auth.token("/accompagnement/a-valider")
    first = client.post(path, data={"csrf_token": token})
    second = client.post(path, data={"csrf_token": token})
    assert first.headers["Location"].endswith(f"/residents/{sira.id}/code")
    assert second.headers["Location"].endswith(f"/accompagnement/residents/{sira.id}")
    page = client.get(second.headers["Location"]).get_data(as_text=True)
    assert "vient d&#39;être validé" in page or "vient d'être validé" in page
    assert len(session.exec(select(AuditEvent).where(AuditEvent.action == "resident.validate")).all()) == 1
    auth.logout()
    other = User(email="colleague@example.org", display_name="Colleague", role=Role.SOCIAL_WORKER,
                 organisation_id=world.worker_a.organisation_id, password_hash=password_hash())
    session.add(other)
    session.commit()
    auth.login("colleague@example.org")
    late = auth.post(path, {}, token_from="/accompagnement/a-valider", follow_redirects=True)
    assert "Cette fiche a déjà été validée." in late.get_data(as_text=True)  # type: ignore[attr-defined]


def test_the_losing_tap_of_two_on_valider_is_already_done(client: FlaskClient, auth: Auth, world: World,
                                                          session: Session, migrated: Database) -> None:
    """Two taps at once both found the profile waiting; the one that lost the race answered
    « déjà examinée » on the list, and the login code the other showed was lost with its page."""
    auth.login(world.relais.email or "")
    submit_person(auth, world)
    sira = only_resident(session, "Sira")
    assert sira.validation_status == ValidationStatus.PENDING  # as the second tap read it
    with migrated.session() as other:  # the first tap, committed first
        first = other.get(Resident, sira.id)
        assert first is not None and validate_resident(other, matching, world.worker_a, first, date.today())
    with pytest.raises(AlreadyDone):
        validate_resident(session, matching, world.worker_a, sira, date.today())
    session.rollback()
    assert len(session.exec(select(AuditEvent).where(AuditEvent.action == "resident.validate")).all()) == 1


def test_a_submitted_profile_waits_out_of_matching_until_validated(
        client: FlaskClient, auth: Auth, world: World, session: Session) -> None:
    need, proposed = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier couture et retouches le mercredi."),
        date.today())
    auth.login(world.relais.email or "")
    submit_person(auth, world)
    sira = only_resident(session, "Sira")
    assert sira.validation_status == ValidationStatus.PENDING
    assert sira.organisation_id == world.centre_a.id and sira.created_by_id == world.relais.id
    # The text and the consent are kept; nothing the matcher reads exists yet.
    assert session.exec(select(SkillDeclaration).where(
        SkillDeclaration.resident_id == sira.id)).one().text == COUTURE
    assert session.exec(select(SkillStatement).where(SkillStatement.resident_id == sira.id)).all() == []
    assert session.exec(select(IndexEvent).where(IndexEvent.collection == RESIDENTS,
                                                 IndexEvent.doc_id == sira.id)).all() == []
    assert not in_index(session, RESIDENTS, sira.id or 0)
    assert sira.id not in valid_consent_residents(session, date.today())
    assert session.exec(select(User).where(User.resident_id == sira.id)).first() is None  # no code
    assert propose_for_need(session, matching, need, date.today()) == 0
    assert session.exec(select(Match).where(Match.resident_id == sira.id)).all() == []
    assert "en attente du centre social" in client.get("/relais/").get_data(as_text=True)

    auth.logout()
    auth.login(world.worker_a.email or "")
    assert "Sira" in client.get("/accompagnement/").get_data(as_text=True)  # "à valider"
    response = auth.post(f"/accompagnement/a-valider/personnes/{sira.id}/valider", {},
                         token_from="/accompagnement/a-valider")
    assert response.headers["Location"].endswith(f"/residents/{sira.id}/code")  # type: ignore[attr-defined]
    code_page = client.get(f"/accompagnement/residents/{sira.id}/code").get_data(as_text=True)
    assert "access-code" in code_page  # the resident's code, shown once

    session.expire_all()
    sira = only_resident(session, "Sira")
    assert sira.validation_status == ValidationStatus.VALIDATED
    assert sira.validated_by_id == world.worker_a.id and sira.validated_at is not None
    assert in_index(session, RESIDENTS, sira.id or 0)
    proposals = session.exec(select(Match).where(Match.resident_id == sira.id)).all()
    assert [m.need_id for m in proposals] == [need.id]  # matched with the need, for review
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "resident.validate",
                                                 AuditEvent.object_id == sira.id)).one()

    # The habitant-relais learns it was validated, and nothing more: no proposal, no profile page.
    auth.logout()
    auth.login(world.relais.email or "")
    home = client.get("/relais/").get_data(as_text=True)
    assert "validée" in home and "Atelier couture" not in home
    assert client.get(f"/accompagnement/residents/{sira.id}").status_code == 403
    assert client.get("/accompagnement/propositions").status_code == 403
    assert client.get("/moi/").status_code == 403


def test_a_need_seen_in_the_neighbourhood_waits_too(client: FlaskClient, auth: Auth, world: World,
                                                    session: Session) -> None:
    awa = add_resident(session, world, "Awa", COUTURE).resident
    auth.login(world.relais.email or "")
    response = auth.post(NEW_NEED, need_form("Atelier couture",
                                             "Le collectif cherche quelqu'un pour la couture.",
                                             territory_id=world.tilleuls.id),
                         token_from=NEW_NEED)
    assert response.status_code == 302  # type: ignore[attr-defined]
    need = session.exec(select(Need).where(Need.title == "Atelier couture")).one()
    assert need.validation_status == ValidationStatus.PENDING
    assert need.organisation_id == world.centre_a.id
    assert session.exec(select(NeedStatement).where(NeedStatement.need_id == need.id)).all() == []
    assert not in_index(session, NEEDS, need.id or 0)
    assert propose_for_resident(session, matching, awa, date.today()) == 0
    assert propose_for_need(session, matching, need, date.today()) == 0
    # The social worker's page of needs without candidates does not count it yet.
    assert need.title not in [n.title for n in pending_for(session, world.worker_b).needs]
    assert [n.id for n in pending_for(session, world.worker_a).needs] == [need.id]

    auth.logout()
    auth.login(world.worker_a.email or "")
    page = client.get("/accompagnement/a-valider").get_data(as_text=True)
    assert "Le collectif cherche quelqu&#39;un pour la couture." in page
    auth.post(f"/accompagnement/a-valider/besoins/{need.id}/valider", {},
              token_from="/accompagnement/a-valider")
    session.expire_all()
    need = session.get(Need, need.id)  # type: ignore[assignment]
    assert need.validation_status == ValidationStatus.VALIDATED
    assert in_index(session, NEEDS, need.id or 0)
    assert [m.resident_id for m in session.exec(select(Match).where(Match.need_id == need.id))] \
        == [awa.id]
    auth.logout()
    auth.login(world.relais.email or "")  # a need (un besoin) is « validé », not « validée »
    mine = client.get("/relais/").get_data(as_text=True)
    noted = mine[mine.index(f'data-testid="submission-need-{need.id}"'):]
    assert re.search(r'status-approved">validé<', noted[:noted.index("</li>")])


def test_a_need_noted_by_a_habitant_relais_can_ask_for_a_language(client: FlaskClient, auth: Auth,
                                                                  world: World, session: Session) -> None:
    """« La crèche cherche quelqu'un qui parle tamoul » is the form's own example, and the form had
    no languages: the need went into matching asking none (a journey reviewer's finding)."""
    auth.login(world.relais.email or "")
    form = client.get(NEW_NEED).get_data(as_text=True)
    assert "Langues demandées (facultatif)" in form and 'name="languages" type="checkbox" value="ta"' in form
    auth.post(NEW_NEED, need_form("Crèche", "La crèche cherche quelqu'un qui parle tamoul.",
                                  territory_id=world.tilleuls.id, languages=["ta"]), token_from=NEW_NEED)
    need = session.exec(select(Need).where(Need.title == "Crèche")).one()
    assert need.languages == ["ta"] and need.validation_status == ValidationStatus.PENDING
    # A box ticked by mistake is corrected when the centre sends the need back.
    sent_back(auth, world, "besoins", need.id, "C'est du tamazight qu'il faut.")
    fix = f"/relais/besoins/{need.id}/corriger"
    page = client.get(fix).get_data(as_text=True)
    assert re.search(r'<input checked id="languages-\d+" name="languages" type="checkbox" value="ta">', page)
    auth.post(fix, {"title": "Crèche", "description": "La crèche cherche quelqu'un qui parle tamazight.",
                    "languages": ["ber"]}, token_from=fix)
    session.expire_all()
    need = session.exec(select(Need).where(Need.title == "Crèche")).one()
    assert need.languages == ["ber"] and need.validation_status == ValidationStatus.PENDING
    auth.logout()
    auth.login(world.worker_a.email or "")
    page = client.get("/accompagnement/a-valider").get_data(as_text=True)
    assert "Langues :</strong> tamazight" in page


def test_a_need_waiting_for_validation_is_not_read_by_the_centres_member_accounts(
        client: FlaskClient, auth: Auth, world: World, session: Session) -> None:
    """An administrator may give a centre an association member's account (its own needs); a need
    its habitant-relais noted ("Mme D., 3e étage…") is read by the centre's social workers first,
    as by nobody else: not listed, not opened, not closed, not in the API."""
    member = User(email="accueil@centre-a.example", display_name="Accueil", role=Role.ASSOCIATION_MEMBER,
                  organisation_id=world.centre_a.id, password_hash=password_hash())
    session.add(member)
    session.commit()
    need, _ = create_need(session, matching, world.relais, NeedInput(
        title="Courses de Mme D.",
        description="Une voisine âgée du 3e étage a besoin d'aide pour ses courses."), date.today())
    assert need.validation_status == ValidationStatus.PENDING
    auth.login(member.email or "")
    assert "Courses de Mme D." not in client.get("/structure/").get_data(as_text=True)
    page = f"/structure/besoins/{need.id}"
    assert client.get(page).status_code == 403
    closing = client.post(f"{page}/statut",
                          data={"status": "closed", "csrf_token": auth.token("/structure/")})
    assert closing.status_code == 403
    token = create_token(session, member, "outil", False, 1).secret
    listed = client.get("/api/v1/needs", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert need.id not in [n["id"] for n in listed["items"]]
    session.expire_all()
    assert session.get(Need, need.id).status == NeedStatus.OPEN  # type: ignore[union-attr]
    # Once a social worker validated it, it is the centre's need like any other.
    auth.logout()
    auth.login(world.worker_a.email or "")
    auth.post(f"/accompagnement/a-valider/besoins/{need.id}/valider", {},
              token_from="/accompagnement/a-valider")
    auth.logout()
    auth.login(member.email or "")
    assert client.get(page).status_code == 200


def test_a_profile_nobody_can_correct_is_not_sent_back_and_a_returned_one_can_be_validated(
        client: FlaskClient, auth: Auth, world: World, session: Session) -> None:
    """A profile imported « à valider » has no habitant-relais to correct it: sent back, it waited
    for nobody, out of Relais for good (not validated, not resubmitted). It is refused now; and a
    profile sent back (its habitant-relais gone since) can be validated by the worker."""
    imported = add_resident(session, world, "Sira", "Je fais des tresses.", initial="B",
                            awaiting_validation=True).resident
    assert imported.validation_status == ValidationStatus.PENDING
    auth.login(world.worker_a.email or "")
    page = client.get(f"/accompagnement/residents/{imported.id}").get_data(as_text=True)
    assert "Fiche importée « à valider »" in page and "Renvoyer avec ce mot" not in page
    assert "Renvoyer avec ce mot" not in client.get("/accompagnement/a-valider").get_data(as_text=True)
    refused = auth.post(f"/accompagnement/a-valider/personnes/{imported.id}/renvoyer", {"note": "À revoir"},
                        token_from="/accompagnement/a-valider", follow_redirects=True)
    assert "Aucun·e habitant·e-relais ne peut corriger cette fiche" in refused.get_data(as_text=True)  # type: ignore[attr-defined]
    session.expire_all()
    assert session.get(Resident, imported.id).validation_status == ValidationStatus.PENDING  # type: ignore[union-attr]

    returned = add_resident(session, world, "Awa", "Je couds des robes.", initial="K",
                            recorded_by=world.relais).resident
    assert "Renvoyer avec ce mot" in client.get("/accompagnement/a-valider").get_data(as_text=True)
    long = auth.post(f"/accompagnement/a-valider/personnes/{returned.id}/renvoyer", {"note": "x" * 501},
                     token_from="/accompagnement/a-valider", follow_redirects=True)
    assert "Le mot est trop long" in long.get_data(as_text=True)  # type: ignore[attr-defined]
    auth.post(f"/accompagnement/a-valider/personnes/{returned.id}/renvoyer", {"note": "Précisez."},
              token_from="/accompagnement/a-valider")
    session.expire_all()
    assert session.get(Resident, returned.id).validation_status == ValidationStatus.RETURNED  # type: ignore[union-attr]
    page = f"/accompagnement/residents/{returned.id}"
    assert "La valider sans attendre sa correction" in client.get(page).get_data(as_text=True)
    auth.post(f"/accompagnement/a-valider/personnes/{returned.id}/valider", {}, token_from=page)
    session.expire_all()
    assert session.get(Resident, returned.id).validation_status == ValidationStatus.VALIDATED  # type: ignore[union-attr]
    assert session.exec(select(User).where(User.resident_id == returned.id)).first() is not None


def test_a_person_sent_twice_is_recorded_once(client: FlaskClient, auth: Auth, world: World,
                                             session: Session) -> None:
    """A reload while the text is analysed, or two taps at once: one profile (a second would be
    a second login and the person proposed twice), by the habitant-relais as by the worker."""
    auth.login(world.relais.email or "")
    form = {**resident_form(COUTURE, world.tilleuls, first_name="Sira"), "csrf_token": auth.token(NEW_PERSON)}
    assert [sent.headers["Location"] for sent in taps(client, NEW_PERSON, form)] == ["/relais/"] * 2
    assert len(session.exec(select(Resident).where(Resident.first_name == "Sira")).all()) == 1
    again = client.post(NEW_PERSON, data=form, follow_redirects=True)  # a reload: thanked as the first
    assert "Merci ! La fiche est envoyée au centre social" in again.get_data(as_text=True)
    assert len(session.exec(select(Resident).where(Resident.first_name == "Sira")).all()) == 1
    auth.logout()
    auth.login(world.worker_a.email or "")
    path = "/accompagnement/residents/nouveau"
    sent = {**resident_form(COUTURE, world.tilleuls, first_name="Awa"), "csrf_token": auth.token(path)}
    first, second = client.post(path, data=sent), client.post(path, data=sent)
    awa = only_resident(session, "Awa")
    assert first.headers["Location"].endswith(f"/residents/{awa.id}/code")
    assert second.headers["Location"].endswith(f"/residents/{awa.id}")
    assert "vient d&#39;être enregistrée" in client.get(second.headers["Location"]).get_data(as_text=True)


def test_a_text_edited_while_the_profile_is_validated_is_the_one_in_the_index(
        app: Flask, world: World, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """A colleague changes a pending profile's text while a worker validates it: either way round,
    the profile ends validated with its current text indexed, never the old one. Here the edit
    lands while the validation analyses the text (refused, nothing written); then the edit comes
    from a page read before the validation (the text is indexed, as the profile now is)."""
    rid = add_resident(session, world, "Sira", COUTURE, recorded_by=world.relais).resident.id
    real_analyze = matching.analyze
    edited: list[bool] = []

    def analyze_while_edited(text: str) -> Any:
        if not edited:
            edited.append(True)
            with db.session() as other:
                person, worker = other.get(Resident, rid), other.get(User, world.worker_b.id)
                assert person is not None and worker is not None
                update_declaration(other, matching, worker, person, "Je répare les vélos du quartier.")
        return real_analyze(text)

    with app.test_request_context():
        monkeypatch.setattr(matching, "analyze", analyze_while_edited)
        with pytest.raises(ChangedMeanwhile):
            validate_resident(session, matching, world.worker_a, session.get(Resident, rid), date.today())  # type: ignore[arg-type]
        monkeypatch.setattr(matching, "analyze", real_analyze)
        session.expire_all()
        assert session.get(Resident, rid).validation_status == ValidationStatus.PENDING  # type: ignore[union-attr]
        with db.session() as other:
            read_before = other.get(Resident, rid)  # a colleague's page, still « à valider »
            validate_resident(session, matching, world.worker_a, session.get(Resident, rid), date.today())  # type: ignore[arg-type]
            assert read_before is not None and read_before.validation_status == ValidationStatus.PENDING
            update_declaration(other, matching, other.get(User, world.worker_a.id), read_before,  # type: ignore[arg-type]
                               "Je garde des enfants le mercredi.")
    session.expire_all()
    [current] = session.exec(select(SkillDeclaration).where(SkillDeclaration.resident_id == rid,
                                                            col(SkillDeclaration.is_current).is_(True))).all()
    assert current.text == "Je garde des enfants le mercredi."
    assert session.exec(select(SkillStatement).where(SkillStatement.declaration_id == current.id)).first()
    assert in_index(session, RESIDENTS, rid or 0)


def test_send_back_with_a_word_then_correct_and_resubmit(client: FlaskClient, auth: Auth,
                                                         world: World, session: Session) -> None:
    auth.login(world.relais.email or "")
    submit_person(auth, world, text="Elle fait des choses.")
    sira = only_resident(session, "Sira")
    auth.logout()
    auth.login(world.worker_a.email or "")
    back = f"/accompagnement/a-valider/personnes/{sira.id}/renvoyer"
    page = auth.post(back, {"note": "  "}, token_from="/accompagnement/a-valider",
                     follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Écrivez un mot" in page
    session.expire_all()
    assert only_resident(session, "Sira").validation_status == ValidationStatus.PENDING
    auth.post(back, {"note": "Qu'est-ce qu'elle fait, avec ses mots ?"},
              token_from="/accompagnement/a-valider")
    session.expire_all()
    sira = only_resident(session, "Sira")
    assert sira.validation_status == ValidationStatus.RETURNED
    # Sent back twice? It is not waiting any more (validating it is the worker's choice: below).
    again = auth.post(back, {"note": "Encore ?"}, token_from="/accompagnement/a-valider",
                      follow_redirects=True)
    assert "déjà été examinée" in again.get_data(as_text=True)  # type: ignore[attr-defined]

    auth.logout()
    auth.login(world.relais.email or "")
    home = client.get("/relais/").get_data(as_text=True)
    assert "à corriger" in home and "avec ses mots ?" in home
    fix = f"/relais/personnes/{sira.id}/corriger"
    too_long = auth.post(fix, correction(sira, "elle coud " * 1100), token_from=fix)
    page = too_long.get_data(as_text=True)  # type: ignore[attr-defined]
    assert 'aria-describedby="declaration-error"' in page and 'aria-invalid="true"' in page
    assert 'id="declaration-error"><p>Le champ ne peut pas contenir plus de 10000 caractères.' in page
    response = auth.post(fix, correction(sira, COUTURE), token_from=fix)
    assert response.status_code == 302  # type: ignore[attr-defined]
    session.expire_all()
    sira = only_resident(session, "Sira")
    assert sira.validation_status == ValidationStatus.PENDING
    texts = session.exec(select(SkillDeclaration.text).where(SkillDeclaration.resident_id == sira.id)
                         .order_by(col(SkillDeclaration.id))).all()
    assert list(texts) == ["Elle fait des choses.", COUTURE]
    assert session.exec(select(SkillStatement).where(SkillStatement.resident_id == sira.id)).all() == []
    assert client.get(fix).status_code == 302  # waiting again: nothing to correct


def test_a_correction_says_what_stopped_it_and_changes_what_the_note_asked(
        client: FlaskClient, auth: Auth, world: World, session: Session) -> None:
    """The habitant-relais corrects a profile sent back: a text with nothing to read is refused
    beside the text (it was a line at the top of the page); the person's wishes, languages and
    other fields can be corrected too (the page offered the text alone, and a note asking « veut-elle
    travailler ? » waited in vain); the language boxes decide, whatever the old text named."""
    auth.login(world.relais.email or "")
    form = resident_form("Je parle arabe. Je fais de la couture.", world.tilleuls, first_name="Sira",
                         languages=["fr"], wants=["volunteering"])
    response = auth.post(NEW_PERSON, form, token_from=NEW_PERSON)
    assert response.status_code == 302  # type: ignore[attr-defined]
    sira = only_resident(session, "Sira")
    assert sira.languages == ["fr", "ar"]
    sent_back(auth, world, "personnes", sira.id, "Veut-elle travailler ? Parle-t-elle vraiment arabe ?")
    fix = f"/relais/personnes/{sira.id}/corriger"
    shown = client.get(fix).get_data(as_text=True)
    assert re.search(r'<input[^>]*checked[^>]*value="ar"|<input[^>]*value="ar"[^>]*checked', shown)
    empty = auth.post(fix, correction(sira, "..."), token_from=fix).get_data(as_text=True)  # type: ignore[attr-defined]
    assert 'id="declaration-error"><p>Écrivez ce que la personne sait faire, avec ses mots.' in empty
    session.expire_all()
    assert only_resident(session, "Sira").validation_status == ValidationStatus.RETURNED
    done = auth.post(fix, correction(sira, "Je fais de la couture depuis vingt ans.", languages=["fr"],
                                     wants=["volunteering", "job"]), token_from=fix)
    assert done.status_code == 302  # type: ignore[attr-defined]
    session.expire_all()
    sira = only_resident(session, "Sira")
    assert (sira.validation_status, sira.languages, sira.wants) == (
        ValidationStatus.PENDING, ["fr"], ["job", "volunteering"])


@pytest.mark.parametrize("kind", ["personnes", "besoins"])
def test_a_correction_sent_twice_goes_once_and_one_too_late_keeps_its_words(
        client: FlaskClient, auth: Auth, world: World, session: Session, kind: str) -> None:
    """Two taps on « Renvoyer » at once: one was thanked, the other said « Cette fiche attend déjà
    la validation » under the text, though it had gone. And a correction sent after the centre
    validated the profile was dropped without a word (a redirect home, the text lost)."""
    auth.login(world.relais.email or "")
    if kind == "personnes":
        submit_person(auth, world, text="Elle fait des choses.")
        row_id = only_resident(session, "Sira").id
        corrected = correction(only_resident(session, "Sira"), COUTURE)
    else:
        auth.post(NEW_NEED, need_form("Courses", "Aider.", territory_id=world.tilleuls.id),
                  token_from=NEW_NEED)
        row_id = session.exec(select(Need.id)).one()
        corrected = {"title": "Courses", "description": "Aider."}  # sent again as it was
    sent_back(auth, world, kind, row_id, "Avec plus de mots ?")
    table = Resident if kind == "personnes" else Need  # noted days ago
    session.exec(update(table).where(col(table.id) == row_id).values(updated_at=utcnow() - timedelta(days=2)))
    session.commit()
    fix = f"/relais/{kind}/{row_id}/corriger"
    answers = taps(client, fix, {**corrected, "csrf_token": auth.token(fix)})
    # Both thanked (a refusal shows the form again, with its message).
    assert [(a.status_code, a.headers["Location"]) for a in answers] == [(302, "/relais/")] * 2
    if kind == "personnes":
        assert session.exec(select(func.count()).select_from(SkillDeclaration).where(
            SkillDeclaration.resident_id == row_id)).one() == 2  # the first text, and one correction
    # Another correction while the first waits: not « the centre took it back ».
    other = {**corrected, **({"declaration": "Elle coud des robes."} if kind == "personnes"
                             else {"description": "Aider pour les courses."})}
    page = auth.post(fix, other, token_from="/relais/").get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Votre correction d&#39;avant attend déjà le centre social : celle-ci n&#39;est pas" in page
    # The centre validates it, then a correction typed on a page opened before comes in.
    auth.logout()
    auth.login(world.worker_a.email or "")
    auth.post(f"/accompagnement/a-valider/{kind}/{row_id}/valider", {},
              token_from="/accompagnement/a-valider")
    auth.logout()
    auth.login(world.relais.email or "")
    late = {**corrected, **({"declaration": "Elle coud et elle brode."} if kind == "personnes"
                            else {"description": "Porter ses courses le dimanche."})}
    page = auth.post(fix, late, token_from="/relais/").get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Le centre social a déjà repris cette fiche : votre correction n&#39;est pas enregistrée." in page
    assert ("Elle coud et elle brode." if kind == "personnes" else "Porter ses courses le dimanche.") in page


def test_a_social_worker_editing_a_pending_profile_keeps_it_out_of_matching(
        client: FlaskClient, auth: Auth, world: World, session: Session) -> None:
    auth.login(world.relais.email or "")
    submit_person(auth, world, text="Elle coud.")
    sira = only_resident(session, "Sira")
    auth.logout()
    auth.login(world.worker_a.email or "")
    page = client.get(f"/accompagnement/residents/{sira.id}").get_data(as_text=True)
    assert "à valider" in page
    auth.post(f"/accompagnement/residents/{sira.id}/declaration", {"declaration": COUTURE},
              token_from=f"/accompagnement/residents/{sira.id}")
    assert session.exec(select(SkillStatement).where(SkillStatement.resident_id == sira.id)).all() == []
    assert not in_index(session, RESIDENTS, sira.id or 0)
    # No access code before validation either.
    response = auth.post(f"/accompagnement/residents/{sira.id}/code", {},
                         token_from=f"/accompagnement/residents/{sira.id}")
    assert response.headers["Location"].endswith(f"/residents/{sira.id}")  # type: ignore[attr-defined]
    assert session.exec(select(User).where(User.resident_id == sira.id)).first() is None


def test_a_habitant_relais_of_centre_a_never_reads_centre_b(client: FlaskClient, auth: Auth,
                                                            world: World, session: Session) -> None:
    relais_b = User(email="relais.b@example.org", display_name="relais.b", role=Role.HABITANT_RELAIS,
                    organisation_id=world.centre_b.id, password_hash=password_hash())
    neighbour_a = User(email="relais.a2@example.org", display_name="relais.a2",
                       role=Role.HABITANT_RELAIS, organisation_id=world.centre_a.id,
                       password_hash=password_hash())
    session.add_all([relais_b, neighbour_a])
    session.commit()
    theirs = add_resident(session, world, "Zeynep", "Je fais du pain.", recorded_by=relais_b).resident
    theirs_need, _ = create_need(session, matching, relais_b, NeedInput(
        title="Jardin partagé", description="Le jardin cherche des bras le samedi."), date.today())
    same_centre = add_resident(session, world, "Mona", "Je tricote.", recorded_by=neighbour_a).resident
    followed = add_resident(session, world, "Awa", COUTURE).resident  # recorded by worker A
    assert theirs.organisation_id == world.centre_b.id

    auth.login(world.relais.email or "")
    home = client.get("/relais/").get_data(as_text=True)
    assert "Zeynep" not in home and "Jardin partagé" not in home and "Mona" not in home
    assert [r.id for r in submitted_by(session, world.relais).residents] == []
    session.expire_all()
    for row in (theirs, same_centre):
        row.validation_status = ValidationStatus.RETURNED  # even when there is something to fix
        session.add(row)
    theirs_need.validation_status = ValidationStatus.RETURNED
    session.add(theirs_need)
    session.commit()
    for path in (f"/relais/personnes/{theirs.id}/corriger", f"/relais/personnes/{same_centre.id}/corriger",
                 f"/relais/personnes/{followed.id}/corriger", f"/relais/besoins/{theirs_need.id}/corriger"):
        assert client.get(path).status_code == 404, path  # not hers: as if it did not exist
        assert client.post(path, data={"csrf_token": auth.token(), "declaration": "x",
                                       "title": "x", "description": "x"}).status_code == 404, path
    for path in (f"/accompagnement/residents/{theirs.id}", f"/accompagnement/residents/{followed.id}",
                 "/accompagnement/a-valider", f"/structure/besoins/{theirs_need.id}"):
        assert client.get(path).status_code == 403, path
    assert client.get("/relais/personnes/999999/corriger").status_code == 404

    # Centre A's social worker neither sees nor validates centre B's submissions.
    session.expire_all()
    theirs.validation_status = ValidationStatus.PENDING
    session.add(theirs)
    session.commit()
    auth.logout()
    auth.login(world.worker_a.email or "")
    assert "Zeynep" not in client.get("/accompagnement/a-valider").get_data(as_text=True)
    response = auth.post(f"/accompagnement/a-valider/personnes/{theirs.id}/valider", {})
    assert response.status_code == 404  # type: ignore[attr-defined]
    session.expire_all()
    assert session.get(Resident, theirs.id).validation_status == ValidationStatus.PENDING  # type: ignore[union-attr]


def test_the_guided_prompts_fill_the_text_without_javascript(client: FlaskClient, auth: Auth,
                                                             world: World, session: Session) -> None:
    auth.login(world.relais.email or "")
    page = client.get(NEW_PERSON).get_data(as_text=True)
    assert "au pays" in page and 'src="/static/guided.js"' in page
    form = resident_form("Elle parle bambara.", world.tilleuls, first_name="Sira",
                         guide_home="Je cuisine pour quarante personnes.",
                         guide_work="J'étais vendeuse au marché.")
    assert auth.post(NEW_PERSON, form, token_from=NEW_PERSON).status_code == 302  # type: ignore[attr-defined]
    text = session.exec(select(SkillDeclaration.text)).one()
    assert text == "Elle parle bambara.\nJe cuisine pour quarante personnes.\nJ'étais vendeuse au marché."


def test_the_sensitive_data_warning_reads_the_guided_answers(client: FlaskClient, auth: Auth,
                                                             world: World, session: Session) -> None:
    auth.login(world.worker_a.email or "")
    path = "/accompagnement/residents/nouveau"
    form = resident_form("", world.tilleuls, guide_family="Elle s'occupe de sa mère diabétique.")
    response = auth.post(path, form, token_from=path)
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert response.status_code == 200 and "Ce texte contient des informations sensibles" in page  # type: ignore[attr-defined]
    assert "santé : diabétique" in page
    # The answer was folded into the one text the worker now rereads.
    assert "Elle s&#39;occupe de sa mère diabétique.</textarea>" in page
    assert session.exec(select(Resident)).first() is None
    form = resident_form("Elle s'occupe de sa mère.", world.tilleuls)
    assert auth.post(path, form, token_from=path).status_code == 302  # type: ignore[attr-defined]


@pytest.mark.parametrize("who", ["relais", "worker"])
def test_a_text_held_back_for_sensitive_words_says_so_at_the_top(client: FlaskClient, auth: Auth,
                                                                  world: World, who: str) -> None:
    """On a phone the form comes back at its top and the warning is screens below: a message at
    the top says nothing was saved and why, before the relais gives up."""
    account, path = ((world.relais, "/relais/personnes/nouvelle") if who == "relais"
                     else (world.worker_a, "/accompagnement/residents/nouveau"))
    auth.login(account.email or "")
    page = auth.post(path, resident_form("Elle cuisine pour le ramadan.", world.tilleuls),
                     token_from=path).get_data(as_text=True)  # type: ignore[attr-defined]
    said = "Rien n&#39;est enregistré : le texte semble contenir des informations sensibles."
    assert said in page and page.index(said) < page.index("Ce texte contient des informations sensibles")


def test_the_forms_open_on_the_centres_own_neighbourhood(client: FlaskClient, auth: Auth,
                                                        world: World) -> None:
    """They opened on the list's first neighbourhood (another village's, « Le Bourg », for a
    centre of « Les Tilleuls »), and on a phone one rarely looks."""
    selected = f'<option selected value="{world.tilleuls.id}">'
    auth.login(world.relais.email or "")
    for path in (NEW_PERSON, "/relais/besoins/nouveau"):
        assert selected in client.get(path).get_data(as_text=True), path
    auth.logout()
    auth.login(world.worker_a.email or "")
    assert selected in client.get("/accompagnement/residents/nouveau").get_data(as_text=True)
