"""A need as a social worker sees it: its proposals for the people they follow, the closest
people the matcher did not propose, and a proposal the worker makes there."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, col, delete, select

from models import AuditEvent, Consent, Database, Direction, Match, MatchStatus, Need, NeedStatus, Resident
from tests.conftest import Auth, World, add_resident
from web.extensions import matching
from web.services import ServiceError, proposals
from web.services.needs import NeedInput, create_need
from web.services.proposals import Proposal, calibrated_min_score, nearest_residents, store_proposals


def sewing_need(session: Session, world: World) -> Need:
    """An open need nobody was proposed for (its proposals dropped: why the matcher proposed
    nobody, floor, filters or fairness, is not what this page is about)."""
    need, _ = create_need(session, matching, world.member,
                          NeedInput(title="Atelier couture", description="Animer un atelier de couture.",
                                    territory_id=world.tilleuls.id), date.today())
    session.exec(delete(Match).where(col(Match.need_id) == need.id))
    session.commit()
    return need


def people(session: Session, world: World) -> dict[str, int]:
    made = {
        "Awa": add_resident(session, world, "Awa", "Je fais de la couture et je retouche les robes."),
        "Chloé": add_resident(session, world, "Chloé", "Je cuisine pour les fêtes du quartier."),
        # Her consent ended a year ago: out of matching, out of this list.
        "Eve": add_resident(session, world, "Eve", "Je couds des rideaux.",
                            given_on=date.today() - timedelta(days=800)),
        # Followed by centre B: not worker A's to see or to propose.
        "Dina": add_resident(session, world, "Dina", "Je suis couturière.", recorded_by=world.worker_b,
                             territory_id=world.bourg.id),
    }
    return {name: created.resident.id or 0 for name, created in made.items()}


def test_the_closest_followed_people_with_consent_and_no_proposal(session: Session, world: World) -> None:
    ids = people(session, world)
    need = sewing_need(session, world)
    followed = select(Resident).where(Resident.organisation_id == world.centre_a.id)
    nearby = nearest_residents(session, matching, need, date.today(), followed)
    names = [n.resident.first_name for n in nearby]
    assert names[0] == "Awa" and "Eve" not in names and "Dina" not in names
    why = nearby[0].explanation
    assert why["pairs"][0]["resident_text"] == "Je fais de la couture"
    assert "couture" in why["shared_terms"] and "rank" not in why
    # Everyone followed by an admin (every centre): Dina too.
    assert "Dina" in [n.resident.first_name for n in nearest_residents(session, matching, need, date.today(),
                                                                        select(Resident))]
    # Once proposed, or rejected, a person is no longer offered for this need.
    for status in (MatchStatus.PROPOSED, MatchStatus.REJECTED):
        session.exec(delete(Match))
        session.add(Match(need_id=need.id or 0, resident_id=ids["Awa"], direction=Direction.NEED_TO_RESIDENT,
                          score=0.5, status=status))
        session.commit()
        assert "Awa" not in [n.resident.first_name for n in
                             nearest_residents(session, matching, need, date.today(), followed)]
    need.status = NeedStatus.PAUSED
    session.add(need)
    session.commit()
    assert nearest_residents(session, matching, need, date.today(), followed) == []


def test_a_worker_proposes_from_the_need_page(client: FlaskClient, auth: Auth, session: Session,
                                              world: World) -> None:
    ids = people(session, world)
    need = sewing_need(session, world)
    page_url = f"/accompagnement/besoins/{need.id}"
    auth.login(world.worker_a.email or "")
    home = client.get("/accompagnement/").get_data(as_text=True)
    assert f'href="{page_url}"' in home  # "Besoins sans candidat·e" leads to the need's page
    page = client.get(page_url).get_data(as_text=True)
    assert "Animer un atelier de couture." in page and "Les Mains Agiles" in page
    assert "Awa" in page and "Dina" not in page and "Eve" not in page
    assert "Relais n'a proposé ce besoin à aucune" in page

    response = auth.post(f"{page_url}/proposer", {"resident_id": ids["Awa"]}, token_from=page_url,
                         follow_redirects=True)
    assert "verra ce besoin dans son espace" in response.get_data(as_text=True)  # type: ignore[attr-defined]
    match = session.exec(select(Match).where(Match.need_id == need.id)).one()
    session.refresh(match)
    assert (match.resident_id, match.status, match.direction) == (ids["Awa"], MatchStatus.APPROVED,
                                                                  Direction.WORKER)
    assert match.reviewed_by_id == world.worker_a.id and match.score > 0
    assert match.explanation["pairs"][0]["resident_text"] == "Je fais de la couture"
    actions = session.exec(select(AuditEvent.action).where(AuditEvent.object_type == "match",
                                                           AuditEvent.object_id == match.id)).all()
    assert sorted(actions) == ["match.approve", "match.propose"]
    page = client.get(page_url).get_data(as_text=True)
    proposals = page.split('data-testid="need-proposals"')[1].split("</ul>")[0]
    assert "Awa" in proposals and "proposée par un·e travailleur·se social·e" in proposals
    assert "Awa" not in page.split('id="nearby-heading"')[1]

    # Twice the same pair, a person without a valid consent, a person another centre follows.
    again = auth.post(f"{page_url}/proposer", {"resident_id": ids["Awa"]}, token_from=page_url,
                      follow_redirects=True)
    assert "a déjà une proposition pour ce besoin" in again.get_data(as_text=True)  # type: ignore[attr-defined]
    lapsed = auth.post(f"{page_url}/proposer", {"resident_id": ids["Eve"]}, token_from=page_url,
                       follow_redirects=True)
    assert "Sans consentement valide" in lapsed.get_data(as_text=True)  # type: ignore[attr-defined]
    # Noted by the habitant-relais, not validated yet: that, not its consent, keeps it out.
    waiting = add_resident(session, world, "Fanta", "Je couds.", recorded_by=world.relais).resident
    early = auth.post(f"{page_url}/proposer", {"resident_id": waiting.id}, token_from=page_url,
                      follow_redirects=True)
    assert "pas encore validée : validez-la" in early.get_data(as_text=True)  # type: ignore[attr-defined]
    other = auth.post(f"{page_url}/proposer", {"resident_id": ids["Dina"]}, token_from=page_url)
    assert other.status_code == 404  # another centre's person: none for this worker  # type: ignore[attr-defined]
    for malformed in ("", "abc", "-3", str(2**31), str(2**63)):  # a bad request, never a 500
        bad = auth.post(f"{page_url}/proposer", {"resident_id": malformed}, token_from=page_url)
        assert bad.status_code == 400, malformed  # type: ignore[attr-defined]
    assert session.exec(select(Match).where(Match.need_id == need.id)).all() == [match]

    need.status = NeedStatus.CLOSED
    session.add(need)
    session.commit()
    assert "Ce besoin n'est pas ouvert" in client.get(page_url).get_data(as_text=True)
    closed = auth.post(f"{page_url}/proposer", {"resident_id": ids["Chloé"]}, token_from=page_url,
                       follow_redirects=True)
    assert "on ne peut plus y proposer" in closed.get_data(as_text=True)  # type: ignore[attr-defined]
    auth.logout()
    auth.login(world.member.email or "")
    assert client.get(page_url).status_code == 403  # the association has its own page


def test_a_workers_own_proposals_do_not_teach_the_floor(session: Session, world: World) -> None:
    """The review-learnt floor is about the matcher's proposals: a worker's own, approved at a low
    similarity, says nothing of where the matcher should stop."""
    awa = add_resident(session, world, "Awa", "Je fais de la couture.").resident
    session.exec(delete(Match))
    needs = []
    for i in range(40):
        row = Need(organisation_id=world.association.id or 0, title=f"Besoin {i}", description="Un besoin.",
                   created_by_id=world.member.id or 0)
        session.add(row)
        session.flush()
        needs.append(row.id or 0)
    session.commit()
    store_proposals(session, [Proposal(n, awa.id or 0, 0.5 + i / 100, {}) for i, n in enumerate(needs[:30])],
                    Direction.NEED_TO_RESIDENT)
    for i, m in enumerate(session.exec(select(Match).order_by(col(Match.score))).all()):
        m.status = MatchStatus.REJECTED if i < 10 else MatchStatus.APPROVED
        session.add(m)
    session.commit()
    floor = calibrated_min_score(session, 0.25)
    assert 0.6 <= floor <= 0.61
    session.add_all(Match(need_id=n, resident_id=awa.id or 0, direction=Direction.WORKER, score=0.05,
                          status=MatchStatus.APPROVED) for n in needs[30:])
    session.commit()
    assert calibrated_min_score(session, 0.25) == floor


def test_the_whole_list_of_needs_without_a_candidate(client: FlaskClient, auth: Auth, session: Session,
                                                     world: World) -> None:
    """The home panel names the twelve oldest; its "et N autres" opens the whole list, a page at a
    time, each need linked to its page; a need with a candidate is not in it."""
    lonely = [Need(organisation_id=world.association.id or 0, title=f"Besoin {i:02d}",
                   description="Un besoin.", created_by_id=world.member.id or 0) for i in range(55)]
    session.add_all(lonely)
    session.commit()
    awa = add_resident(session, world, "Awa", "Je fais de la couture.").resident
    session.exec(delete(Match))
    session.add(Match(need_id=lonely[0].id or 0, resident_id=awa.id or 0, score=0.5,
                      direction=Direction.NEED_TO_RESIDENT, status=MatchStatus.APPROVED))
    session.commit()
    auth.login(world.worker_b.email or "")
    home = client.get("/accompagnement/").get_data(as_text=True)
    assert 'href="/accompagnement/besoins/sans-candidat"' in home and "et 42 autres" in home
    first = client.get("/accompagnement/besoins/sans-candidat").get_data(as_text=True)
    assert "(54)" in first and "Page 1 sur 2" in first
    assert f'href="/accompagnement/besoins/{lonely[1].id}"' in first and "Les Mains Agiles" in first
    assert f'href="/accompagnement/besoins/{lonely[0].id}"' not in first  # it has a candidate
    second = client.get("/accompagnement/besoins/sans-candidat?page=2").get_data(as_text=True)
    assert second.count('<li class="card"><a href="/accompagnement/besoins/') == 4
    assert f'href="/accompagnement/besoins/{lonely[54].id}"' in second


def test_two_workers_proposing_the_same_pair_at_once(session: Session, world: World, migrated: Database,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The second of two workers proposing one person for one need at the same moment is told,
    not shown an error page: the other's proposal is written between its check and its own."""
    ids = people(session, world)
    need = sewing_need(session, world)
    awa = session.get(Resident, ids["Awa"])
    assert awa is not None
    read_statements = proposals.statements_of_residents

    def meanwhile(own: Session, wanted: list[int]) -> dict[int, list[proposals.Quotable]]:
        with migrated.session() as other:  # the other worker's request, committed first
            other.add(Match(need_id=need.id or 0, resident_id=ids["Awa"], direction=Direction.WORKER,
                            score=0.5, status=MatchStatus.APPROVED))
            other.commit()
        return read_statements(own, wanted)

    monkeypatch.setattr(proposals, "statements_of_residents", meanwhile)
    with pytest.raises(ServiceError, match="déjà une proposition"):
        proposals.worker_proposal(session, matching, need, awa, date.today())
    assert len(session.exec(select(Match).where(Match.need_id == need.id)).all()) == 1


def test_a_proposal_whose_consent_lapsed_is_not_sent_to_an_empty_desk(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """The review desk leaves out a proposal whose person's consent ended (it waits for the
    renewal); the need page offered « Examiner » for it, which opened an empty desk."""
    need = sewing_need(session, world)
    awa = add_resident(session, world, "Awa", "Je fais de la couture et je retouche les robes.")
    store_proposals(session, [Proposal(need.id or 0, awa.resident.id or 0, 0.5, {})],
                    Direction.NEED_TO_RESIDENT)
    auth.login(world.worker_a.email or "")
    page = f"/accompagnement/besoins/{need.id}"
    assert "Examiner" in client.get(page).get_data(as_text=True)
    consent = session.exec(select(Consent).where(Consent.resident_id == awa.resident.id)).one()
    consent.expires_on = date.today() - timedelta(days=1)
    session.add(consent)
    session.commit()
    shown = client.get(page).get_data(as_text=True)
    assert "Examiner" not in shown and "consentement terminé" in shown
