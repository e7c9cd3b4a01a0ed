"""Consent as the gate to matching: withdrawal takes effect at once, renewal brings back."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from models import (
    AuditEvent,
    Consent,
    ConsentScope,
    Match,
    MatchStatus,
    Need,
    Notification,
    Resident,
    User,
    ValidationStatus,
)
from tests.conftest import Auth, World, add_resident, approved_opportunity, taps
from web.extensions import matching
from web.services.proposals import propose_for_need, valid_consent_residents, with_valid_consent


def sewing_need(session: Session, world: World) -> Need:
    """The association's need, stored and indexed (no proposal yet)."""
    need = Need(organisation_id=world.association.id or 0, title="Atelier couture",
                description="Animer un atelier de couture.", created_by_id=world.member.id or 0)
    session.add(need)
    session.flush()
    matching.store_need(session, need)
    session.commit()
    return need


def test_withdrawn_consent_removes_the_resident_from_matching(client: FlaskClient, auth: Auth,
                                                             session: Session, world: World) -> None:
    today = date.today()
    awa = add_resident(session, world, "Awa", "Je fais de la couture et des retouches.").resident
    need = sewing_need(session, world)
    assert propose_for_need(session, matching, need, today) == 1

    auth.login(world.worker_a.email or "")
    page = client.get(f"/accompagnement/residents/{awa.id}").get_data(as_text=True)
    assert "valable jusqu" in page
    # Two steps: the button that withdraws sits behind a summary that only opens it.
    assert page.index("<summary>La personne retire son consentement</summary>") < page.index(
        "Confirmer : retirer son consentement")
    radio = re.search(r'<input[^>]*value="oral_in_person"[^>]*>', page)
    assert radio is not None and "required" in radio.group(0)  # renewing asks how, in the browser
    auth.post(f"/accompagnement/residents/{awa.id}/consentement/retrait", {})
    session.expire_all()
    assert awa.id not in valid_consent_residents(session, today)
    assert session.exec(select(Match).where(Match.status == MatchStatus.PROPOSED)).all() == []
    assert propose_for_need(session, matching, need, today) == 0  # never proposed again
    page = client.get(f"/accompagnement/residents/{awa.id}").get_data(as_text=True)
    paris = datetime.now(ZoneInfo("Europe/Paris"))  # the day the page shows (BABEL_DEFAULT_TIMEZONE)
    assert f"Consentement retiré le {paris:%d/%m/%Y}" in page  # not merely « pas valide »

    auth.post(f"/accompagnement/residents/{awa.id}/consentement", {"method": "oral_in_person"})
    session.expire_all()
    assert awa.id in valid_consent_residents(session, today)
    # The renewal proposed the open need again at once: nothing left for the need's round.
    again = session.exec(select(Match).where(Match.resident_id == awa.id)).all()
    assert [m.need_id for m in again] == [need.id]
    assert propose_for_need(session, matching, need, today) == 0
    actions = [e.action for e in session.exec(select(AuditEvent).where(
        AuditEvent.object_type == "resident", AuditEvent.object_id == awa.id)).all()]
    assert actions.count("consent.record") == 2 and "consent.withdraw" in actions
    assert session.get(Resident, awa.id) is not None


def test_withdrawing_twice_is_said_and_journaled_once(client: FlaskClient, auth: Auth,
                                                     session: Session, world: World) -> None:
    """A second click (or a colleague's tab still open) finds nothing left to withdraw."""
    awa = add_resident(session, world, "Awa", "Je fais de la couture et des retouches.").resident
    auth.login(world.worker_a.email or "")
    first = auth.post(f"/accompagnement/residents/{awa.id}/consentement/retrait", {}, follow_redirects=True)
    assert "Consentement retiré" in first.get_data(as_text=True)  # type: ignore[attr-defined]
    session.expire_all()
    when = select(Consent.withdrawn_at).where(Consent.resident_id == awa.id)
    withdrawn_at = session.exec(when).one()
    second = auth.post(f"/accompagnement/residents/{awa.id}/consentement/retrait", {}, follow_redirects=True)
    assert "Le consentement était déjà retiré." in second.get_data(as_text=True)  # type: ignore[attr-defined]
    session.expire_all()
    assert session.exec(when).one() == withdrawn_at
    actions = [e.action for e in session.exec(select(AuditEvent).where(
        AuditEvent.object_type == "resident", AuditEvent.object_id == awa.id)).all()]
    assert actions.count("consent.withdraw") == 1


def test_login_starts_a_fresh_expiring_session(client: FlaskClient, auth: Auth,
                                               world: World) -> None:
    with client.session_transaction() as before:
        before["planted"] = "by an attacker"
    auth.login(world.worker_a.email or "")
    with client.session_transaction() as after:
        assert "planted" not in after and after.permanent
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.expires is not None and cookie.http_only


def test_the_sql_conditions_of_consent_agree_with_consent_is_valid(session: Session, world: World) -> None:
    """`valid_consent_residents` (a list of ids) and `with_valid_consent` (a condition on residents,
    used by the API search) select the validated residents holding a consent that `is_valid`."""
    today = date.today()
    consents: dict[str, list[dict[str, object]]] = {
        "valid": [{}],
        "open ended": [{"expires_on": None}],
        "last day": [{"expires_on": today}],
        "expired": [{"expires_on": today - timedelta(days=1)}],
        "not yet": [{"given_on": today + timedelta(days=1)}],
        "withdrawn": [{"withdrawn_at": datetime.now(UTC)}],
        "another scope": [{"scope": "contact"}],
        "renewed": [{"expires_on": today - timedelta(days=30)}, {}],
        "none": [],
        "waiting for validation": [{}],
    }
    ids = {}
    for name, rows in consents.items():
        resident = Resident(first_name=name, territory_id=world.tilleuls.id or 0,
                            organisation_id=world.centre_a.id or 0, languages=[], availability=[],
                            wants=[], created_by_id=world.worker_a.id or 0,
                            validation_status=ValidationStatus.PENDING if name.startswith("waiting")
                            else ValidationStatus.VALIDATED)
        session.add(resident)
        session.flush()
        ids[name] = resident.id or 0
        for row in rows:
            fields: dict[str, Any] = {"given_on": today - timedelta(days=10), "scope": ConsentScope.MATCHING,
                                      "method": "paper_signed", "recorded_by_id": world.worker_a.id or 0,
                                      "expires_on": today + timedelta(days=300)} | row
            session.add(Consent(resident_id=resident.id or 0, **fields))
    session.commit()
    residents = session.exec(select(Resident).where(col(Resident.id).in_(ids.values()))).all()
    expected = {r.id for r in residents if r.validation_status == ValidationStatus.VALIDATED and any(
        c.is_valid(today) for c in session.exec(select(Consent).where(Consent.resident_id == r.id)).all())}
    assert expected == {ids[n] for n in ("valid", "open ended", "last day", "renewed")}
    assert valid_consent_residents(session, today, ids.values()) == expected
    assert set(session.exec(select(Resident.id).where(col(Resident.id).in_(ids.values()),
                                                      with_valid_consent(today))).all()) == expected


def test_the_resident_withdraws_consent_from_their_own_page(client: FlaskClient, auth: Auth,
                                                            session: Session, world: World) -> None:
    """As easy to withdraw as to give: one button on « Mes données ». Out of matching at once,
    the unreviewed proposals dropped, the worker told, the journal naming the person; the data
    stay (erasure is another request)."""
    today = date.today()
    created = add_resident(session, world, "Awa", "Je fais de la couture et des retouches.", initial="K")
    awa = created.resident
    need = sewing_need(session, world)
    assert propose_for_need(session, matching, need, today) == 1

    auth.code_login(created.access_code)
    page = client.get("/moi/donnees").get_data(as_text=True)
    assert 'href="/moi/donnees/accord/retrait"' in page and "Retirer mon accord" in page
    # One tap by mistake only asks: nothing is withdrawn without the « Oui » of the question.
    asked = auth.post("/moi/donnees/accord/retrait", {}, token_from="/moi/donnees")
    assert asked.status_code == 302 and asked.headers["Location"].endswith("/moi/donnees/accord/retrait")
    question = client.get("/moi/donnees/accord/retrait").get_data(as_text=True)
    assert "Oui, retirer mon accord" in question and 'href="/moi/donnees"' in question
    session.expire_all()
    assert awa.id in valid_consent_residents(session, today)
    done = auth.post("/moi/donnees/accord/retrait", {"confirm": "y"},
                     token_from="/moi/donnees/accord/retrait", follow_redirects=True)
    text = done.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "vous ne recevrez plus de proposition" in text and "Retirer mon accord" not in text
    session.expire_all()
    assert awa.id not in valid_consent_residents(session, today)
    assert session.exec(select(Match).where(Match.status == MatchStatus.PROPOSED)).all() == []
    assert propose_for_need(session, matching, need, today) == 0
    me = session.exec(select(User).where(User.resident_id == awa.id)).one()
    [event] = session.exec(select(AuditEvent).where(AuditEvent.action == "consent.withdraw")).all()
    assert (event.actor_id, event.object_id) == (me.id, awa.id)
    told = session.exec(select(Notification).where(Notification.user_id == world.worker_a.id,
                                                   Notification.kind == "consent")).all()
    assert [n.text for n in told] == ["Awa K. a retiré son accord : plus de proposition pour cette personne."]
    assert client.get("/moi/donnees/accord/retrait").headers["Location"].endswith("/moi/donnees")
    again = auth.post("/moi/donnees/accord/retrait", {"confirm": "y"}, token_from="/moi/donnees",
                      follow_redirects=True)
    assert "Votre accord était déjà retiré." in again.get_data(as_text=True)  # type: ignore[attr-defined]
    assert session.get(Resident, awa.id) is not None


def test_a_renewed_consent_proposes_the_open_needs_again(client: FlaskClient, auth: Auth,
                                                         session: Session, world: World) -> None:
    """Withdrawal dropped the proposals nobody reviewed; a renewal puts the person back in
    matching, and the open needs are proposed again at once (not at the next edit of their text)."""
    awa = add_resident(session, world, "Awa", "Je fais de la couture et des retouches.").resident
    need = sewing_need(session, world)
    assert propose_for_need(session, matching, need, date.today()) == 1
    auth.login(world.worker_a.email or "")
    auth.post(f"/accompagnement/residents/{awa.id}/consentement/retrait", {})
    session.expire_all()
    assert session.exec(select(Match).where(Match.resident_id == awa.id)).all() == []
    renewed = auth.post(f"/accompagnement/residents/{awa.id}/consentement", {"method": "oral_in_person"},
                        follow_redirects=True)
    assert "1 nouvelle(s) proposition(s) à examiner" in renewed.get_data(as_text=True)  # type: ignore[attr-defined]
    session.expire_all()
    again = session.exec(select(Match).where(Match.resident_id == awa.id)).all()
    assert [m.need_id for m in again] == [need.id]


def test_a_renewal_sent_twice_is_one_consent(client: FlaskClient, auth: Auth, session: Session,
                                            world: World) -> None:
    """A double tap wrote two consents in the register (a legal record) and the journal, and ran
    matching twice."""
    awa = add_resident(session, world, "Awa", "Je fais de la couture et des retouches.").resident
    auth.login(world.worker_a.email or "")
    auth.post(f"/accompagnement/residents/{awa.id}/consentement/retrait", {})
    path = f"/accompagnement/residents/{awa.id}/consentement"
    token = auth.token(f"/accompagnement/residents/{awa.id}")
    sent = taps(client, path, {"method": "paper_signed", "csrf_token": token}, count=3)
    assert [r.status_code for r in sent] == [302] * 3
    session.expire_all()
    consents = session.exec(select(Consent).where(Consent.resident_id == awa.id)).all()
    assert sorted(c.withdrawn_at is None for c in consents) == [False, True]
    journal = session.exec(select(AuditEvent).where(AuditEvent.action == "consent.record",
                                                    AuditEvent.object_id == awa.id)).all()
    assert len(journal) == 2  # the first consent and the renewal


def test_a_consent_recorded_again_another_way_the_same_day_is_a_new_record(auth: Auth, session: Session,
                                                                           world: World) -> None:
    """The person signed the paper form after agreeing orally, minutes after the profile was made:
    taken for a double tap, the record was dropped while the page said « Consentement enregistré »."""
    awa = add_resident(session, world, "Awa", "Je fais de la couture et des retouches.").resident
    first = session.exec(select(Consent.method).where(Consent.resident_id == awa.id)).one()
    other = "oral_in_person" if first != "oral_in_person" else "paper_signed"
    auth.login(world.worker_a.email or "")
    page = f"/accompagnement/residents/{awa.id}"
    auth.post(f"{page}/consentement", {"method": other}, token_from=page)
    session.expire_all()
    assert session.exec(select(Consent.method).where(Consent.resident_id == awa.id)
                        .order_by(col(Consent.id))).all() == [first, other]


def test_a_consent_ending_soon_can_be_renewed_before_it_lapses(client: FlaskClient, auth: Auth,
                                                               session: Session, world: World) -> None:
    """The dashboard lists consents ending within a month: the person's page offers the renewal
    then (open), and any time in a closed box, not only once the consent has lapsed."""
    ending = add_resident(session, world, "Awa", "Je fais de la couture.",
                          given_on=date.today() - timedelta(days=365 - 10)).resident
    recent = add_resident(session, world, "Binta", "Je couds des boubous.").resident
    auth.login(world.worker_a.email or "")
    page = client.get(f"/accompagnement/residents/{ending.id}").get_data(as_text=True)
    assert f'action="/accompagnement/residents/{ending.id}/consentement"' in page
    assert "<details open>" in page and "Il expire bientôt" in page
    page = client.get(f"/accompagnement/residents/{recent.id}").get_data(as_text=True)
    assert f'action="/accompagnement/residents/{recent.id}/consentement"' in page
    assert "<details open>" not in page
    auth.post(f"/accompagnement/residents/{ending.id}/consentement", {"method": "paper_signed"})
    session.expire_all()
    latest = session.exec(select(Consent).where(Consent.resident_id == ending.id)
                          .order_by(col(Consent.id).desc())).first()
    assert latest is not None and latest.given_on == date.today()


def test_after_a_yes_and_a_withdrawal_her_pages_say_the_structure_reaches_her_through_her_centre(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """She said yes, then withdrew her consent: the association gets her centre, never her phone
    number. Her card still said « La structure va vous contacter » and offered to choose a phone
    or an e-mail, whose page promised the structure would see it after a yes; she waited for a
    call that could not come. The question before withdrawing now says it too, naming the
    contact she gave (a phone she never gave, or « votre adresse », which Relais never asks, was
    named to everyone)."""
    awa = approved_opportunity(session, world, "Montrer la couture aux jeunes du quartier.")
    match_id = session.exec(select(Match.id)).one()
    auth.code_login(awa.access_code)
    assert "téléphone" not in client.get("/moi/donnees/accord/retrait").get_data(as_text=True)
    auth.post(f"/moi/propositions/{match_id}/oui", {"comment": ""}, token_from="/moi/")
    home = html.unescape(client.get("/moi/").get_data(as_text=True))
    assert "La structure va vous contacter" in home and "Choisir comment la structure vous contacte" in home
    awa.resident.contact_channel, awa.resident.contact_value = "phone", "06 12 34 56 78"
    session.add(awa.resident)
    session.commit()
    assert "elle ne verra plus votre téléphone" in client.get("/moi/donnees/accord/retrait") \
        .get_data(as_text=True)
    auth.post("/moi/donnees/accord/retrait", {"confirm": "y"}, token_from="/moi/donnees")
    home = " ".join(html.unescape(client.get("/moi/").get_data(as_text=True)).split())
    assert ("Vous avez dit oui, puis retiré votre accord. La structure ne voit plus votre téléphone. "
            "Pour vous joindre, la structure passe par la personne qui vous accompagne.") in home
    assert "La structure va vous contacter" not in home and "Choisir comment" not in home
    contact = html.unescape(client.get("/moi/contact").get_data(as_text=True))
    assert "les structures ne voient plus ce contact" in contact
    assert "La structure voit ce contact seulement quand vous dites oui" not in contact


def test_a_consent_that_ran_out_is_not_called_a_withdrawal(client: FlaskClient, auth: Auth,
                                                           session: Session, world: World) -> None:
    """She said yes, then her consent expired: her pages said « Vous avez retiré votre accord »,
    which she never did. They say it came to an end."""
    awa = approved_opportunity(session, world, "Montrer la couture aux jeunes du quartier.")
    match_id = session.exec(select(Match.id)).one()
    auth.code_login(awa.access_code)
    auth.post(f"/moi/propositions/{match_id}/oui", {"comment": ""}, token_from="/moi/")
    consent = session.exec(select(Consent).where(Consent.resident_id == awa.resident.id)).one()
    consent.expires_on = date.today() - timedelta(days=1)
    session.add(consent)
    session.commit()
    home = " ".join(html.unescape(client.get("/moi/").get_data(as_text=True)).split())
    assert ("Vous avez dit oui. Votre accord pour Relais a pris fin. Pour vous joindre, la structure "
            "passe par la personne qui vous accompagne.") in home and "téléphone" not in home
    assert "retiré votre accord" not in home and "La structure va vous contacter" not in home
    contact = html.unescape(client.get("/moi/contact").get_data(as_text=True))
    assert "Votre accord pour Relais a pris fin : les structures ne voient plus ce contact" in contact
    assert "retiré votre accord" not in contact


def test_a_profile_says_when_its_consent_expired(client: FlaskClient, auth: Auth, session: Session,
                                                 world: World) -> None:
    awa = add_resident(session, world, "Awa", "Je fais de la couture.",
                       given_on=date.today() - timedelta(days=400)).resident
    consent = session.exec(select(Consent).where(Consent.resident_id == awa.id)).one()
    assert consent.expires_on is not None and consent.expires_on < date.today()
    auth.login(world.worker_a.email or "")
    page = client.get(f"/accompagnement/residents/{awa.id}").get_data(as_text=True)
    assert f"Consentement expiré : il était valable jusqu'au {consent.expires_on:%d/%m/%Y}." in page
