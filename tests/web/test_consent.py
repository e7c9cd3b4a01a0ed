"""Consent as the gate to matching: withdrawal takes effect at once, renewal brings back."""

from __future__ import annotations

from datetime import date

from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import AuditEvent, Match, MatchStatus, Need, Resident
from tests.conftest import Auth, World, add_resident
from web.extensions import matching
from web.services.proposals import propose_for_need, valid_consent_residents


def test_withdrawn_consent_removes_the_resident_from_matching(client: FlaskClient, auth: Auth,
                                                             session: Session, world: World) -> None:
    today = date.today()
    awa = add_resident(session, world, "Awa", "Je fais de la couture et des retouches.").resident
    need = Need(organisation_id=world.association.id or 0, title="Atelier couture",
                description="Animer un atelier de couture.", created_by_id=world.member.id or 0)
    session.add(need)
    session.flush()
    matching.store_need(session, need)
    session.commit()
    assert propose_for_need(session, matching, need, today) == 1

    auth.login(world.worker_a.email or "")
    page = client.get(f"/accompagnement/residents/{awa.id}").get_data(as_text=True)
    assert "valable jusqu" in page
    auth.post(f"/accompagnement/residents/{awa.id}/consentement/retrait", {})
    session.expire_all()
    assert awa.id not in valid_consent_residents(session, today)
    assert session.exec(select(Match).where(Match.status == MatchStatus.PROPOSED)).all() == []
    assert propose_for_need(session, matching, need, today) == 0  # never proposed again
    page = client.get(f"/accompagnement/residents/{awa.id}").get_data(as_text=True)
    assert "Pas de consentement valide" in page

    auth.post(f"/accompagnement/residents/{awa.id}/consentement", {"method": "oral_in_person"})
    session.expire_all()
    assert awa.id in valid_consent_residents(session, today)
    assert propose_for_need(session, matching, need, today) == 1
    actions = [e.action for e in session.exec(select(AuditEvent).where(
        AuditEvent.object_type == "resident", AuditEvent.object_id == awa.id)).all()]
    assert actions.count("consent.record") == 2 and "consent.withdraw" in actions
    assert session.get(Resident, awa.id) is not None


def test_login_starts_a_fresh_expiring_session(client: FlaskClient, auth: Auth,
                                               world: World) -> None:
    with client.session_transaction() as before:
        before["planted"] = "by an attacker"
    auth.login(world.worker_a.email or "")
    with client.session_transaction() as after:
        assert "planted" not in after and after.permanent
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.expires is not None and cookie.http_only
