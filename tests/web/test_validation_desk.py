"""The validation desk: a habitant-relais's submission naming health or religion enters matching
only when a social worker confirms it too, as when they type it themselves (the journal keeps the
categories, not the words); a profile waiting for validation offers no code it cannot give; a
submission sent back is announced to the habitant-relais who noted it."""

from __future__ import annotations

import html
import re

from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import AuditEvent, Notification, ValidationStatus
from tests.conftest import Auth, World, resident_form
from tests.web.test_habitant_relais import NEW_PERSON, correction, only_resident
from web.extensions import matching
from web.services.privacy import erase_resident

SENSITIVE = "Je cuisine pour le ramadan à la mosquée, et je suis diabétique alors je goûte peu."


def submitted(auth: Auth, world: World, session: Session) -> int:
    auth.login(world.relais.email or "")
    sent = auth.post(NEW_PERSON, {**resident_form(SENSITIVE, world.tilleuls, first_name="Khadija"),
                                  "sensitive_ok": "y"}, token_from=NEW_PERSON)
    assert sent.status_code == 302  # type: ignore[attr-defined]
    auth.logout()
    auth.login(world.worker_a.email or "")
    return only_resident(session, "Khadija").id or 0


def test_the_worker_confirms_sensitive_words_before_validating(client: FlaskClient, auth: Auth,
                                                                world: World, session: Session) -> None:
    rid = submitted(auth, world, session)
    listed = html.unescape(client.get("/accompagnement/a-valider").get_data(as_text=True))
    assert "Ce texte contient des informations sensibles." in listed and "diabétique" in listed
    box = re.search(r'<input type="checkbox" name="sensitive_ok"[^>]*>', listed)
    assert box is not None and "required" in box.group(0)
    profile = html.unescape(client.get(f"/accompagnement/residents/{rid}").get_data(as_text=True))
    assert 'data-testid="sensitive-to-confirm"' in profile

    path = f"/accompagnement/a-valider/personnes/{rid}/valider"
    refused = auth.post(path, {"from": "fiche"}, token_from="/accompagnement/a-valider")
    assert refused.headers["Location"].endswith(f"/accompagnement/residents/{rid}")  # type: ignore[attr-defined]
    session.expire_all()
    assert only_resident(session, "Khadija").validation_status == ValidationStatus.PENDING
    shown = html.unescape(client.get(f"/accompagnement/residents/{rid}").get_data(as_text=True))
    assert "vérifiez avec la personne qu'elles sont nécessaires et cochez la case" in shown

    done = auth.post(path, {"sensitive_ok": "y"}, token_from="/accompagnement/a-valider")
    assert done.status_code == 302  # type: ignore[attr-defined]
    session.expire_all()
    assert only_resident(session, "Khadija").validation_status == ValidationStatus.VALIDATED
    journal = session.exec(select(AuditEvent).where(AuditEvent.action == "resident.validate",
                                                    AuditEvent.object_id == rid)).one()
    assert journal.details == {"sensitive_confirmed": ["health", "religion"]}


def test_a_plain_text_validates_in_one_click(client: FlaskClient, auth: Auth, world: World,
                                             session: Session) -> None:
    auth.login(world.relais.email or "")
    auth.post(NEW_PERSON, resident_form("Je fais de la couture.", world.tilleuls, first_name="Sira"),
              token_from=NEW_PERSON)
    auth.logout()
    auth.login(world.worker_a.email or "")
    rid = only_resident(session, "Sira").id
    listed = client.get("/accompagnement/a-valider").get_data(as_text=True)
    assert 'name="sensitive_ok"' not in listed
    page = html.unescape(client.get(f"/accompagnement/residents/{rid}").get_data(as_text=True))
    assert "Donner un nouveau code" not in page and "Le code sera donné quand le profil sera validé." in page
    auth.post(f"/accompagnement/a-valider/personnes/{rid}/valider", {},
              token_from="/accompagnement/a-valider")
    session.expire_all()
    assert only_resident(session, "Sira").validation_status == ValidationStatus.VALIDATED
    assert "Donner un nouveau code" in client.get(f"/accompagnement/residents/{rid}").get_data(as_text=True)


def test_a_submission_sent_back_is_announced_to_its_habitant_relais(client: FlaskClient, auth: Auth,
                                                                     world: World, session: Session) -> None:
    auth.login(world.relais.email or "")
    auth.post(NEW_PERSON, resident_form("Je fais de la couture.", world.tilleuls, first_name="Sira",
                                        last_initial="T"), token_from=NEW_PERSON)
    auth.logout()
    auth.login(world.worker_a.email or "")
    rid = only_resident(session, "Sira").id
    desk = html.unescape(client.get("/accompagnement/a-valider").get_data(as_text=True))
    assert "pourra corriger le texte et les réponses de la fiche" in desk
    auth.post(f"/accompagnement/a-valider/personnes/{rid}/renvoyer",
              {"note": "Quels vêtements ? Ses langues ?"}, token_from="/accompagnement/a-valider")
    told = session.exec(select(Notification).where(Notification.user_id == world.relais.id)).one()
    assert told.link == f"/relais/personnes/{rid}/corriger" and "Sira T." in told.text
    assert "vêtements" not in told.text  # the worker's word stays on the correction page
    auth.logout()
    auth.login(world.relais.email or "")
    listed = html.unescape(client.get("/notifications/").get_data(as_text=True))
    assert "La fiche de Sira T. vous est renvoyée" in listed
    opened = auth.post(f"/notifications/{told.id}/ouvrir", {}, token_from="/notifications/")
    assert opened.headers["Location"].endswith(f"/relais/personnes/{rid}/corriger")  # type: ignore[attr-defined]
    assert "Quels vêtements ? Ses langues ?" in html.unescape(
        client.get(f"/relais/personnes/{rid}/corriger").get_data(as_text=True))
    # Corrected, the fiche waits for the centre again: the notice asking for it goes.
    fix = f"/relais/personnes/{rid}/corriger"
    auth.post(fix, correction(only_resident(session, "Sira"), "Je couds des robes."), token_from=fix)
    assert session.exec(select(Notification).where(Notification.user_id == world.relais.id)).all() == []
    session.expire_all()
    assert only_resident(session, "Sira").validation_status == ValidationStatus.PENDING

    # Erased, the person is named by no notice any more.
    erase_resident(session, matching, world.worker_a, only_resident(session, "Sira"), "worker")
    assert session.exec(select(Notification).where(Notification.user_id == world.relais.id)).all() == []
