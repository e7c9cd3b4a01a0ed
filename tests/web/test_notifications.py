"""In-app notifications: created on each event, for the right people only; counted in the header,
listed, marked read."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import Direction, Match, Need, Notification, Outcome, Role, User
from tests.conftest import Auth, World, add_resident
from web.extensions import matching
from web.services.notifications import forget_resident
from web.services.outcomes import record_outcome
from web.services.profiles import CreatedResident, ResidentInput, create_resident, withdraw_consent
from web.services.proposals import Proposal, store_proposals
from web.services.review import answer, approve


def inbox(session: Session, user: User | None) -> list[Notification]:
    assert user is not None
    return list(session.exec(select(Notification).where(Notification.user_id == user.id)
                             .order_by(Notification.id)).all())  # type: ignore[arg-type]


def resident_user(session: Session, resident_id: int) -> User:
    return session.exec(select(User).where(User.resident_id == resident_id)).one()


def _need(session: Session, world: World) -> Need:
    need = Need(organisation_id=world.association.id or 0, title="Atelier couture",
                description="Animer un atelier couture.", created_by_id=world.member.id or 0)
    session.add(need)
    session.commit()
    return need


def approved_for_awa(session: Session, world: World, reviewer: User) -> tuple[CreatedResident, Match]:
    """Awa (worker A's centre), proposed for the association's need and approved by `reviewer`."""
    created = add_resident(session, world, "Awa", "Je couds.", initial="K")
    need = _need(session, world)
    store_proposals(session, [Proposal(need.id or 0, created.resident.id or 0, 0.5, {})],
                    Direction.NEED_TO_RESIDENT)
    match = session.exec(select(Match)).one()
    approve(session, reviewer, match)
    return created, match


def test_the_whole_path_notifies_the_right_people(session: Session, world: World) -> None:
    awa = add_resident(session, world, "Awa", "Je couds des robes.", initial="K").resident
    ines = add_resident(session, world, "Inès", "Je couds aussi.", initial="B").resident
    bea = create_resident(session, matching, world.worker_b, ResidentInput(
        first_name="Béa", last_initial="", territory_id=world.bourg.id, consent_given_on=date.today(),
        consent_method="paper_signed", consent_matching=True, declaration="Je tricote."),
        12, date.today()).resident
    need = _need(session, world)
    for user in (world.worker_a, world.worker_b, world.member, world.admin):
        assert inbox(session, user) == []  # no proposal yet (no open need when they were created)

    store_proposals(session, [Proposal(need.id or 0, r.id or 0, 0.5, {}) for r in (awa, ines, bea)],
                    Direction.NEED_TO_RESIDENT)
    [to_a] = inbox(session, world.worker_a)
    [to_b] = inbox(session, world.worker_b)
    assert (to_a.kind, to_a.text, to_a.link) == ("to_review", "2 nouvelles propositions à examiner.",
                                                 "/accompagnement/propositions")
    assert to_b.text == "Une nouvelle proposition à examiner."
    assert inbox(session, world.member) == [] and inbox(session, world.admin) == []
    assert all(inbox(session, resident_user(session, r.id or 0)) == [] for r in (awa, ines, bea))

    match = session.exec(select(Match).where(Match.resident_id == awa.id)).one()
    approve(session, world.worker_a, match)
    [opportunity] = inbox(session, resident_user(session, awa.id or 0))
    assert (opportunity.kind, opportunity.link) == ("opportunity", "/moi/")
    assert opportunity.text == "Nouvelle proposition pour vous : « Atelier couture »."
    assert inbox(session, resident_user(session, ines.id or 0)) == []
    assert len(inbox(session, world.member)) == 0  # the association hears when the resident answers

    answer(session, resident_user(session, awa.id or 0), match, accept=True,
           comment="Mon numéro est le 06 11 22 33 44")
    for user in (world.member, world.worker_a):
        last = inbox(session, user)[-1]
        assert (last.kind, last.text) == ("answered", "Awa K. a dit oui pour « Atelier couture ».")
        assert last.link == f"/suivi/propositions/{match.id}"
    assert inbox(session, world.worker_b) == [to_b]
    assert not any("06 11" in n.text for n in session.exec(select(Notification)).all())

    record_outcome(session, world.member, match, Outcome.HAPPENED, "Très bien")
    last = inbox(session, world.worker_a)[-1]
    assert (last.kind, last.text) == ("outcome", "Bilan noté pour Awa K. et « Atelier couture ».")
    assert inbox(session, world.member)[-1].kind == "answered"  # the author of the outcome is not told


def test_declining_is_notified_too(session: Session, world: World) -> None:
    created, match = approved_for_awa(session, world, world.admin)
    answer(session, resident_user(session, created.resident.id or 0), match, accept=False)
    assert inbox(session, world.admin)[-1].text == "Awa K. a dit non pour « Atelier couture »."
    assert inbox(session, world.member)[-1].text == "Awa K. a dit non pour « Atelier couture »."


COUNTER = re.compile(r'<span class="counter">(\d+)</span>')


def test_counter_list_and_marking_read(client: FlaskClient, auth: Auth, session: Session,
                                       world: World) -> None:
    created, match = approved_for_awa(session, world, world.worker_a)
    binta = add_resident(session, world, "Binta", "Je couds aussi.", initial="D").resident
    store_proposals(session, [Proposal(match.need_id, binta.id or 0, 0.4, {})], Direction.NEED_TO_RESIDENT)
    answer(session, resident_user(session, created.resident.id or 0), match, accept=True)
    first, second = inbox(session, world.worker_a)

    auth.login(world.worker_a.email or "")
    home = client.get("/accompagnement/").get_data(as_text=True)
    assert COUNTER.findall(home) == ["2"]
    page = client.get("/notifications/").get_data(as_text=True)
    assert "Une nouvelle proposition à examiner." in page
    assert "Awa K. a dit oui" in page and page.count('class="card unread"') == 2

    opened = auth.post(f"/notifications/{second.id}/ouvrir", {})
    assert opened.headers["Location"] == f"/suivi/propositions/{match.id}"  # type: ignore[attr-defined]
    assert client.get(f"/suivi/propositions/{match.id}").status_code == 200  # the link works for them
    assert COUNTER.findall(client.get("/notifications/").get_data(as_text=True)) == ["1"]

    auth.post("/notifications/lues", {})
    assert COUNTER.findall(client.get("/notifications/").get_data(as_text=True)) == []
    session.expire_all()
    assert all(n.read_at is not None for n in inbox(session, world.worker_a))

    auth.logout()
    auth.login(world.worker_b.email or "")
    assert auth.post(f"/notifications/{first.id}/ouvrir", {}).status_code == 404  # type: ignore[attr-defined]
    auth.logout()
    auth.login(world.member.email or "")
    [for_member] = inbox(session, world.member)
    assert auth.post(f"/notifications/{for_member.id}/ouvrir", {}).headers["Location"] == \
        f"/suivi/propositions/{match.id}"  # type: ignore[attr-defined]
    assert client.get(f"/suivi/propositions/{match.id}").status_code == 200


def test_a_resident_sees_their_opportunity_notification(client: FlaskClient, auth: Auth, session: Session,
                                                        world: World) -> None:
    created, _match = approved_for_awa(session, world, world.worker_a)
    auth.code_login(created.access_code)
    assert COUNTER.findall(client.get("/moi/savoir-faire").get_data(as_text=True)) == ["1"]
    assert "Nouvelle proposition pour vous" in client.get("/notifications/").get_data(as_text=True)


def test_a_residents_notice_is_read_once_the_page_it_points_at_is_shown(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """« Nouvelle proposition pour vous » leads to « Mes propositions »: shown, it is read. The red
    counter stayed on every page after she had seen and answered the opportunity, until she
    found the notices' page."""
    created, match = approved_for_awa(session, world, world.worker_a)
    auth.code_login(created.access_code)
    assert COUNTER.findall(client.get("/moi/donnees").get_data(as_text=True)) == ["1"]
    client.get("/moi/")
    auth.post(f"/moi/propositions/{match.id}/non", {"comment": ""}, token_from="/moi/")
    for page in ("/moi/", "/moi/donnees", "/notifications/"):
        assert COUNTER.findall(client.get(page).get_data(as_text=True)) == [], page
    assert "Nouvelle proposition pour vous" in client.get("/notifications/").get_data(as_text=True)
    # One gone is not on « Mes propositions »: its notice stays unread until the notices' page.
    session.add(Notification(user_id=resident_user(session, created.resident.id or 0).id or 0,
                             kind="withdrawn", link="/moi/",
                             text="La proposition « Atelier couture » n'est plus disponible."))
    session.commit()
    assert COUNTER.findall(client.get("/moi/").get_data(as_text=True)) == ["1"]
    assert COUNTER.findall(client.get("/moi/donnees").get_data(as_text=True)) == ["1"]


def test_a_resident_reading_in_english_reads_their_notification_in_english(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """The text was stored in French only: a resident who reads Relais in English (French is not
    everyone's first language) got « Nouvelle proposition pour vous » all the same."""
    created, _match = approved_for_awa(session, world, world.worker_a)
    [notification] = inbox(session, resident_user(session, created.resident.id or 0))
    assert notification.text == "Nouvelle proposition pour vous : « Atelier couture »."  # the digest's
    auth.code_login(created.access_code)
    client.post("/langue", data={"lang": "en", "csrf_token": auth.token("/moi/")})
    page = client.get("/notifications/").get_data(as_text=True)
    assert "A new opportunity for you: “Atelier couture”." in page and "Nouvelle proposition" not in page
    # One written before the msgid was kept shows its French text.
    session.add(Notification(user_id=notification.user_id, kind="opportunity", text="Ancien message.",
                             link="/moi/"))
    session.commit()
    assert "Ancien message." in client.get("/notifications/").get_data(as_text=True)


def test_notifications_naming_a_resident_can_be_forgotten(session: Session, world: World) -> None:
    """For erasure: what names the person (their answer, an outcome, their own withdrawal of
    consent) goes with them and their proposals."""
    created, match = approved_for_awa(session, world, world.worker_a)
    me = resident_user(session, created.resident.id or 0)
    answer(session, me, match, accept=True)
    assert withdraw_consent(session, me, created.resident)
    assert any("Awa" in n.text for n in session.exec(select(Notification)).all())
    # the member's and the worker's answer, the worker's withdrawal
    assert forget_resident(session, created.resident.id or 0, [match.id or 0]) == 3
    session.commit()
    assert not any("Awa" in n.text for n in session.exec(select(Notification)).all())
    assert inbox(session, world.worker_a) == []  # « to review » went when she approved it


def test_a_yes_reaches_a_colleague_when_the_needs_author_left(session: Session, world: World) -> None:
    """The author's account deactivated: the association still hears of the answer and the
    outcome, through its other active members (and only them: the author is not told)."""
    colleague = User(email="colleague@example.org", display_name="Colleague", password_hash="x",
                     role=Role.ASSOCIATION_MEMBER, organisation_id=world.association.id)
    gone = User(email="gone@example.org", display_name="Gone", password_hash="x", is_active=False,
                role=Role.ASSOCIATION_MEMBER, organisation_id=world.association.id)
    session.add_all([colleague, gone])
    world.member.is_active = False
    session.add(world.member)
    session.commit()
    created, match = approved_for_awa(session, world, world.worker_a)
    answer(session, resident_user(session, created.resident.id or 0), match, accept=True)
    assert [n.text for n in inbox(session, colleague)] == ["Awa K. a dit oui pour « Atelier couture »."]
    assert inbox(session, world.member) == [] and inbox(session, gone) == []
    record_outcome(session, world.worker_a, match, Outcome.HAPPENED, "")
    assert inbox(session, colleague)[-1].text == "Bilan noté pour Awa K. et « Atelier couture »."


def yes_to_a_centres_need(session: Session, world: World, author: User, reviewer: User) -> Match:
    """Awa K. says yes to « Repair café », a need of centre A written by `author`, approved by
    `reviewer`."""
    created = add_resident(session, world, "Awa", "Je couds.", initial="K")
    need = Need(organisation_id=world.centre_a.id or 0, title="Repair café",
                description="Réparer des objets.", created_by_id=author.id or 0)
    session.add(need)
    session.commit()
    store_proposals(session, [Proposal(need.id or 0, created.resident.id or 0, 0.5, {})],
                    Direction.NEED_TO_RESIDENT)
    match = session.exec(select(Match)).one()
    approve(session, reviewer, match)
    answer(session, resident_user(session, created.resident.id or 0), match, accept=True)
    return match


def test_an_administrator_who_posted_the_need_hears_the_answer_and_the_outcome(session: Session,
                                                                                world: World) -> None:
    """An administrator may post a need for their centre (/structure): the answer went to the
    centre's workers, never to the author, who may open the follow-up page."""
    match = yes_to_a_centres_need(session, world, world.admin, world.worker_a)
    assert [n.text for n in inbox(session, world.admin)] == ["Awa K. a dit oui pour « Repair café »."]
    record_outcome(session, world.worker_a, match, Outcome.HAPPENED, "")
    assert inbox(session, world.admin)[-1].text == "Bilan noté pour Awa K. et « Repair café »."


def test_a_habitant_relais_is_not_told_who_said_yes(session: Session, world: World) -> None:
    """A need a habitant-relais noted for their centre: the answer names the resident and links to
    the follow-up page a relais may not open; the centre's social workers hear instead."""
    yes_to_a_centres_need(session, world, world.relais, world.admin)
    assert inbox(session, world.relais) == []
    assert inbox(session, world.worker_a)[-1].text == "Awa K. a dit oui pour « Repair café »."


def test_times_are_shown_on_the_sites_clock(client: FlaskClient, auth: Auth, session: Session,
                                            world: World) -> None:
    """Instants are stored in UTC and were printed as such: a notice of 00:30 in Paris (summer
    time) said 22:30 the day before."""
    session.add(Notification(user_id=world.worker_a.id or 0, kind="to_review", text="Une proposition.",
                             created_at=datetime(2026, 7, 1, 22, 30, tzinfo=UTC)))
    session.commit()
    auth.login(world.worker_a.email or "")
    page = client.get("/notifications/").get_data(as_text=True)
    assert "02/07/2026 00:30" in page and "01/07/2026 22:30" not in page


def test_the_to_review_notice_says_what_still_waits(client: FlaskClient, auth: Auth, session: Session,
                                                    world: World) -> None:
    """« n nouvelles propositions à examiner » counts the proposals still waiting: a second batch
    adds to the first (it said 1 for 3), a review at the desk or a withdrawal (the need closed)
    takes away, and a notice about none goes: the badge stayed over an empty desk, and the next
    morning's digest e-mailed it."""
    from web.services.needs import update_need
    from web.services.notifications import digest_batches
    from web.services.review import reject

    people = [add_resident(session, world, name, "Je couds.").resident for name in ("Awa", "Binta", "Inès")]
    sewing, repairs = _need(session, world), _need(session, world)

    def told() -> list[str]:
        session.expire_all()
        return [n.text for n in inbox(session, world.worker_a) if n.read_at is None]

    store_proposals(session, [Proposal(sewing.id or 0, p.id or 0, 0.5, {}) for p in people[:2]],
                    Direction.NEED_TO_RESIDENT)
    assert told() == ["2 nouvelles propositions à examiner."]
    store_proposals(session, [Proposal(repairs.id or 0, people[2].id or 0, 0.5, {})],
                    Direction.NEED_TO_RESIDENT)
    assert told() == ["3 nouvelles propositions à examiner."]
    binta = session.exec(select(Match).where(Match.resident_id == people[1].id)).one()
    reject(session, world.worker_a, binta, "other", "Elle déménage.")
    assert told() == ["2 nouvelles propositions à examiner."]
    assert update_need(session, matching, world.member, sewing, {"status": "closed"}, date.today()) == 0
    assert told() == ["Une nouvelle proposition à examiner."]
    auth.login(world.worker_a.email or "")
    assert COUNTER.findall(client.get("/accompagnement/").get_data(as_text=True)) == ["1"]
    update_need(session, matching, world.member, repairs, {"status": "paused"}, date.today())
    assert told() == []
    assert COUNTER.findall(client.get("/accompagnement/").get_data(as_text=True)) == []
    assert world.worker_a.id not in {user.id for user, _ in digest_batches(session)}
