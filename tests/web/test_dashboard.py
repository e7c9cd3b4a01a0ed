"""The social worker's home page: what to look at today."""

from __future__ import annotations

from datetime import date, timedelta

from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import Consent, Match, MatchStatus, Need, Resident
from tests.conftest import Auth, World, add_resident
from web.services.dashboard import worker_dashboard

TODAY = date.today()


def test_worker_dashboard_lists(client: FlaskClient, auth: Auth, session: Session,
                                world: World) -> None:
    def person(name: str, text: str, given_days_ago: int) -> int:
        created = add_resident(session, world, name, text,
                               given_on=TODAY - timedelta(days=given_days_ago))
        return created.resident.id or 0

    awa = person("Awa", "Je fais de la couture.", given_days_ago=350)  # expires in ~2 weeks
    ben = person("Ben", "Je répare les vélos.", given_days_ago=10)
    lonely = Need(organisation_id=world.association.id or 0, title="Apiculteur",
                  description="Nous cherchons un apiculteur.", created_by_id=world.member.id or 0)
    session.add(lonely)
    session.commit()
    approved_need = Need(organisation_id=world.association.id or 0, title="Vélos",
                         description="Atelier vélo.", created_by_id=world.member.id or 0)
    session.add(approved_need)
    session.commit()
    cooking = Need(organisation_id=world.association.id or 0, title="Cuisine",
                   description="Cuisiner pour la fête.", created_by_id=world.member.id or 0)
    session.add(cooking)
    session.commit()
    for need_id, resident_id, status in ((approved_need.id, ben, MatchStatus.APPROVED),
                                         (cooking.id, awa, MatchStatus.PROPOSED),
                                         (lonely.id, awa, MatchStatus.REJECTED)):
        session.add(Match(need_id=need_id or 0, resident_id=resident_id, direction="need_to_resident",
                          score=0.6, status=status))
    session.commit()

    residents = list(session.exec(select(Resident).order_by(Resident.first_name)).all())
    today = worker_dashboard(session, residents, TODAY)
    assert [r.first_name for r, _ in today.expiring] == ["Awa"]
    assert today.pending == 1  # Cuisine, waiting for review
    assert [r.first_name for r in today.without_opportunity] == ["Awa"]  # proposed or rejected only
    assert lonely.id in {n.id for n in today.needs_without_candidate}  # its one candidate was rejected
    assert not {approved_need.id, cooking.id} & {n.id for n in today.needs_without_candidate}
    expires = session.exec(select(Consent).where(Consent.resident_id == awa)).one().expires_on
    assert expires is not None and expires - TODAY <= timedelta(days=30)

    auth.login(world.worker_a.email or "")
    page = client.get("/accompagnement/").get_data(as_text=True)
    assert "Consentements qui expirent bientôt" in page and "Apiculteur" in page
    auth.logout()
    auth.login(world.member.email or "")
    home = client.get("/structure/").get_data(as_text=True)  # candidates it may see, per need
    assert "1 personne(s) proposée(s)" in home and home.count("0 personne(s) proposée(s)") == 2
