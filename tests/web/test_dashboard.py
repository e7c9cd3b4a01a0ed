"""The social worker's home page: what to look at today."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from alembic import command
from flask.testing import FlaskClient
from sqlalchemy import insert, update
from sqlmodel import Session, select

from models import Consent, Database, Match, MatchStatus, Need, Resident
from models.tables import fold
from tests.conftest import Auth, World, add_resident
from web.services.dashboard import worker_dashboard


def test_worker_dashboard_lists(client: FlaskClient, auth: Auth, session: Session,
                                world: World) -> None:
    def person(name: str, text: str, given_days_ago: int) -> int:
        created = add_resident(session, world, name, text,
                               given_on=date.today() - timedelta(days=given_days_ago))
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

    today = worker_dashboard(session, select(Resident), date.today())
    assert [r.first_name for r, _ in today.expiring.items] == ["Awa"] and today.expiring.total == 1
    assert today.pending == 1 and today.followed == 2  # Cuisine, waiting for review
    assert [r.first_name for r in today.without_opportunity.items] == ["Awa"]  # proposed or rejected only
    lonely_ids = {n.id for n in today.needs_without_candidate.items}
    assert lonely.id in lonely_ids  # its one candidate was rejected
    assert not {approved_need.id, cooking.id} & lonely_ids
    assert today.needs_without_candidate.total == len(lonely_ids)
    elsewhere = worker_dashboard(session, select(Resident).where(Resident.organisation_id == -1),
                                 date.today())
    assert (elsewhere.followed, elsewhere.pending, elsewhere.expiring.total) == (0, 0, 0)
    expires = session.exec(select(Consent).where(Consent.resident_id == awa)).one().expires_on
    assert expires is not None and expires - date.today() <= timedelta(days=30)

    auth.login(world.worker_a.email or "")
    page = client.get("/accompagnement/").get_data(as_text=True)
    assert "Consentements qui expirent bientôt" in page and "Apiculteur" in page
    auth.logout()
    auth.login(world.member.email or "")
    home = client.get("/structure/").get_data(as_text=True)  # candidates it may see, per need
    assert "0 oui · 1 en attente de réponse" in home and home.count("0 oui · 0 en attente de réponse") == 2


def test_followed_residents_come_a_page_at_a_time(client: FlaskClient, auth: Auth, session: Session,
                                                   world: World) -> None:
    """An admin follows every resident of the site: the home page shows them 50 at a time, finds
    them by first name, and its panels name the first ones and count the rest."""
    centre = world.centre_a.id or 0
    people = [Resident(first_name=f"Personne{i:03d}", territory_id=world.tilleuls.id or 0,
                       organisation_id=centre, created_by_id=world.worker_a.id or 0) for i in range(120)]
    people += [Resident(first_name=name, territory_id=world.tilleuls.id or 0, organisation_id=centre,
                        created_by_id=world.worker_a.id or 0) for name in ("Zoé", "zineb", "Z%_")]
    session.add_all(people)
    session.commit()
    auth.login(world.worker_a.email or "")

    def names(page: str) -> list[str]:
        listed = page.split('data-testid="people"', 1)[1].split("</ul>", 1)[0]
        return re.findall(r'/residents/\d+">([^<]+)</a>', listed)

    first = client.get("/accompagnement/").get_data(as_text=True)
    assert names(first) == [f"Personne{i:03d}" for i in range(50)]
    assert "Page 1 sur 3" in first and "(123)" in first and 'rel="prev"' not in first
    assert "Personne011</a></li></ul>" in first and "et 111 autres" in first  # 12 named, no consent
    last = client.get("/accompagnement/?page=3").get_data(as_text=True)
    assert names(last)[:20] == [f"Personne{i:03d}" for i in range(100, 120)]
    assert sorted(names(last)[20:]) == ["Z%_", "Zoé", "zineb"]  # (their order is the collation's)
    assert 'rel="next"' not in last and "Page 3 sur 3" in last
    assert names(client.get("/accompagnement/?page=99").get_data(as_text=True)) == names(last)
    assert names(client.get("/accompagnement/?page=abc").get_data(as_text=True)) == names(first)

    assert sorted(names(client.get("/accompagnement/?nom=z").get_data(as_text=True))) == \
        sorted(["Zoé", "zineb", "Z%_"])  # any case
    assert names(client.get("/accompagnement/?nom=Z%25").get_data(as_text=True)) == ["Z%_"]  # % is a %
    assert names(client.get("/accompagnement/?nom=personne11").get_data(as_text=True)) == \
        [f"Personne{i:03d}" for i in range(110, 120)]
    nobody = client.get("/accompagnement/?nom=Xavier").get_data(as_text=True)
    assert "Aucun prénom ne commence par « Xavier »." in nobody and "Page 1 sur" not in nobody

    auth.logout()
    auth.login(world.worker_b.email or "")  # another centre follows none of them
    other = client.get("/accompagnement/?nom=Personne").get_data(as_text=True)
    assert "Personne0" not in other


def test_and_n_others_lead_to_the_whole_list(client: FlaskClient, auth: Auth, session: Session,
                                           world: World) -> None:
    """Each panel that names residents links its "and N others" to its whole list, a page at a
    time and searchable by first name, below the panels."""
    centre, worker = world.centre_a.id or 0, world.worker_a.id or 0
    people = [Resident(first_name=f"Sans{i:02d}", territory_id=world.tilleuls.id or 0, organisation_id=centre,
                       created_by_id=worker) for i in range(55)]
    helped = Resident(first_name="Aidée", territory_id=world.tilleuls.id or 0, organisation_id=centre,
                      created_by_id=worker)
    session.add_all([*people, helped])
    session.commit()
    need = Need(organisation_id=world.association.id or 0, title="Vélos", description="Atelier vélo.",
                created_by_id=world.member.id or 0)
    session.add(need)
    session.commit()
    session.add(Match(need_id=need.id or 0, resident_id=helped.id or 0, direction="need_to_resident",
                      score=0.6, status=MatchStatus.APPROVED))

    def consent(resident: Resident, ends_in: int, withdrawn: bool = False) -> None:
        session.add(Consent(resident_id=resident.id or 0, given_on=date.today() - timedelta(days=300),
                            scope="matching", method="paper_signed", recorded_by_id=worker,
                            expires_on=date.today() + timedelta(days=ends_in),
                            withdrawn_at=datetime.now(UTC) if withdrawn else None))

    for resident in people[:3]:
        consent(resident, 10)  # ending soon
    consent(helped, 20)
    consent(people[3], 10)
    consent(people[3], 200)  # renewed: its latest consent ends later
    consent(people[4], 60)  # not soon
    consent(people[5], 5, withdrawn=True)  # withdrawn: nothing to renew
    for resident in people[6:8]:
        resident.retention_warned_at = datetime.now(UTC)
        session.add(resident)
    session.commit()
    auth.login(world.worker_a.email or "")

    def names(page: str) -> list[str]:
        if 'data-testid="people"' not in page:
            return []
        listed = page.split('data-testid="people"', 1)[1].split("</ul>", 1)[0]
        return re.findall(r'/residents/\d+">([^<]+)</a>', listed)

    home = client.get("/accompagnement/").get_data(as_text=True)
    assert '/accompagnement/?liste=sans-proposition#people-heading">et 43 autres</a>' in home  # 55 - 12
    without = client.get("/accompagnement/?liste=sans-proposition").get_data(as_text=True)
    assert "Personnes sans proposition validée <span class=\"muted\">(55)</span>" in without
    assert names(without) == [f"Sans{i:02d}" for i in range(50)] and "Aidée" not in names(without)
    second = client.get("/accompagnement/?liste=sans-proposition&page=2").get_data(as_text=True)
    assert names(second) == [f"Sans{i:02d}" for i in range(50, 55)]
    assert 'href="/accompagnement/?page=1&amp;liste=sans-proposition" rel="prev"' in second
    searched = client.get("/accompagnement/?liste=sans-proposition&nom=sans5").get_data(as_text=True)
    assert names(searched) == [f"Sans{i:02d}" for i in range(50, 55)]
    assert '<input type="hidden" name="liste" value="sans-proposition">' in searched

    ending = client.get("/accompagnement/?liste=consentement").get_data(as_text=True)
    assert sorted(names(ending)) == sorted(["Aidée", "Sans00", "Sans01", "Sans02"])
    warned = client.get("/accompagnement/?liste=anonymisation").get_data(as_text=True)
    assert names(warned) == ["Sans06", "Sans07"] and "Profils qui seront anonymisés" in warned
    assert len(names(client.get("/accompagnement/?liste=autre").get_data(as_text=True))) == 50  # all
    auth.logout()
    auth.login(world.worker_b.email or "")  # another centre follows none of them
    other = client.get("/accompagnement/?liste=sans-proposition").get_data(as_text=True)
    assert names(other) == [] and "Personne dans cette liste aujourd'hui." in other


def test_the_name_search_ignores_case_and_accents(client: FlaskClient, auth: Auth, session: Session,
                                                  world: World) -> None:
    """Workers type names as a phone lets them: "elodie" finds "Élodie", "ZOE" finds "Zoé", on
    SQLite (whose LIKE folds ASCII only) as on PostgreSQL; rows written without the ORM too."""
    def resident(name: str) -> dict[str, object]:
        return {"first_name": name, "territory_id": world.tilleuls.id or 0,
                "organisation_id": world.centre_a.id or 0, "created_by_id": world.worker_a.id or 0}

    session.add_all([Resident(**resident(name)) for name in ("Élodie", "élise", "Zoé", "Noël", "Elsa")])
    bulk = [{**resident(name), "languages": [], "availability": [], "wants": []}
            for name in ("Émile", "Œlya")]
    session.execute(insert(Resident), bulk)  # not through the ORM's events: the column default
    session.commit()
    auth.login(world.worker_a.email or "")

    def found(typed: str) -> list[str]:
        page = client.get("/accompagnement/", query_string={"nom": typed}).get_data(as_text=True)
        if 'data-testid="people"' not in page:
            return []
        listed = page.split('data-testid="people"', 1)[1].split("</ul>", 1)[0]
        return sorted(re.findall(r'/residents/\d+">([^<]+)</a>', listed))

    assert found("elodie") == found("ÉLODIE") == found("Élo") == ["Élodie"]
    assert found("el") == sorted(["Elsa", "élise", "Élodie"])
    assert found("zoe") == ["Zoé"] and found("NOEL") == ["Noël"]
    assert found("emile") == ["Émile"] and found("oel") == ["Œlya"]
    assert found("Elodie ") == ["Élodie"] and found("lodie") == []  # a beginning, not any part

    # A name changed later is folded again.
    session.execute(update(Resident).where(Resident.first_name == "Elsa").values(first_name="Ève"))
    session.commit()
    changed = session.exec(select(Resident).where(Resident.first_name == "Ève")).one()
    changed.first_name = "Éva"
    session.add(changed)
    session.commit()
    assert found("eva") == ["Éva"]


def test_the_migration_folds_the_names_written_before(session: Session, world: World,
                                                      migrated: Database) -> None:
    names = ["Élodie", "Zoé", "BENOÎT", "Awa"]
    session.add_all([Resident(first_name=n, territory_id=world.tilleuls.id or 0,
                              organisation_id=world.centre_a.id or 0, created_by_id=world.worker_a.id or 0)
                     for n in names])
    session.commit()
    session.close()
    config = migrated.alembic_config()
    command.downgrade(config, "0011")  # the column goes
    command.upgrade(config, "head")
    with migrated.session() as again:
        keys = {r.first_name: r.name_key for r in again.exec(select(Resident)).all()}
    assert {n: keys[n] for n in names} == {"Élodie": "elodie", "Zoé": "zoe", "BENOÎT": "benoit", "Awa": "awa"}
    assert all(key == fold(name) for name, key in keys.items())


def test_profiles_waiting_for_validation_are_not_said_to_have_a_proposal(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """Every followed profile a habitant-relais's submission: the panel said « Toutes ont au moins
    une proposition » of people who cannot have one yet."""
    add_resident(session, world, "Sira", "Je fais de la couture et des retouches.", recorded_by=world.relais)
    auth.login(world.worker_a.email or "")
    page = client.get("/accompagnement/").get_data(as_text=True)
    assert "Toutes ont au moins une proposition" not in page
    assert "attendent encore leur validation" in page
