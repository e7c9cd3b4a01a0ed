"""After a yes: the contact channel appears only then, and only the need's association or the
resident's worker records the outcome, only on an accepted proposal."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import date

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import (
    AuditEvent,
    Direction,
    Match,
    MatchStatus,
    Need,
    Notification,
    Organisation,
    Outcome,
    Resident,
    Role,
    User,
)
from tests.conftest import Auth, World, add_resident, need_form, password_hash, taps
from web.services import ServiceError
from web.services.impact import Period, proposals_per_month
from web.services.outcomes import record_outcome, set_contact
from web.services.proposals import Proposal, store_proposals
from web.services.review import answer, approve


@dataclass
class Followup:
    world: World
    match_id: int
    need_id: int
    resident_id: int
    code: str
    other_member: User


@pytest.fixture
def followup(session: Session, world: World) -> Followup:
    """Awa (worker A's centre) approved for the association's need; not answered yet."""
    created = add_resident(session, world, "Awa", "Je couds des robes et des rideaux.", initial="K")
    need = Need(organisation_id=world.association.id or 0, title="Atelier couture",
                description="Animer un atelier couture.", created_by_id=world.member.id or 0)
    other_org = Organisation(name="Une autre association", kind="association")
    session.add_all([need, other_org])
    session.commit()
    other_member = User(email="other.member@example.org", display_name="other", password_hash=password_hash(),
                        role=Role.ASSOCIATION_MEMBER, organisation_id=other_org.id)
    session.add(other_member)
    session.commit()
    rid = created.resident.id or 0
    store_proposals(session, [Proposal(need.id or 0, rid, 0.5, {})], Direction.NEED_TO_RESIDENT)
    match = session.exec(select(Match).where(Match.need_id == need.id)).one()
    approve(session, world.worker_a, match)
    return Followup(world, match.id or 0, need.id or 0, rid, created.access_code, other_member)


def _accept(session: Session, f: Followup) -> Match:
    match = session.get(Match, f.match_id)
    assert match is not None
    resident_user = session.exec(select(User).where(User.resident_id == f.resident_id)).one()
    answer(session, resident_user, match, accept=True)
    return match


def _post_outcome(auth: Auth, f: Followup, outcome: str = "happened", note: str = "Super atelier") -> int:
    response = auth.post(f"/suivi/propositions/{f.match_id}/bilan", {"outcome": outcome, "note": note})
    return response.status_code  # type: ignore[attr-defined]


@pytest.mark.parametrize(("who", "status", "recorded"), [
    ("member", 302, True),  # the association that posted the need
    ("worker_a", 302, True),  # the resident's worker
    ("admin", 302, True),
    ("worker_b", 404, False),  # another centre's worker: not found, as if it did not exist
    ("other_member", 404, False),  # another association
])
def test_who_may_record_an_outcome(client: FlaskClient, auth: Auth, session: Session, followup: Followup,
                                   who: str, status: int, recorded: bool) -> None:
    _accept(session, followup)
    w = followup.world
    email = {"member": w.member.email, "worker_a": w.worker_a.email, "admin": w.admin.email,
             "worker_b": w.worker_b.email, "other_member": followup.other_member.email}[who]
    auth.login(email or "")
    assert _post_outcome(auth, followup) == status
    session.expire_all()
    match = session.get(Match, followup.match_id)
    assert match is not None
    assert (match.outcome == Outcome.HAPPENED) is recorded
    if recorded:
        assert match.outcome_note == "Super atelier" and match.outcome_at is not None
    assert client.get(f"/suivi/propositions/{followup.match_id}").status_code == (200 if recorded else 404)


def test_a_resident_cannot_record_an_outcome(auth: Auth, session: Session, followup: Followup) -> None:
    _accept(session, followup)
    auth.code_login(followup.code)
    assert _post_outcome(auth, followup) == 403


def test_outcome_only_on_an_accepted_proposal(client: FlaskClient, auth: Auth, session: Session,
                                              followup: Followup) -> None:
    auth.login(followup.world.member.email or "")
    page = auth.post(f"/suivi/propositions/{followup.match_id}/bilan",
                     {"outcome": "happened", "note": ""}, follow_redirects=True)
    assert "seulement quand la personne a dit oui" in page.get_data(as_text=True)  # type: ignore[attr-defined]
    match = session.get(Match, followup.match_id)
    assert match is not None and match.status == MatchStatus.APPROVED
    session.refresh(match)
    assert match.outcome is None
    with pytest.raises(ServiceError):
        record_outcome(session, followup.world.member, match, Outcome.HAPPENED)


def test_outcome_on_a_proposal_not_yet_reviewed_does_not_exist(auth: Auth, session: Session,
                                                              followup: Followup) -> None:
    match = session.get(Match, followup.match_id)
    assert match is not None
    match.status = MatchStatus.PROPOSED
    session.add(match)
    session.commit()
    auth.login(followup.world.member.email or "")
    assert _post_outcome(auth, followup) == 404


def test_outcome_values_are_checked(session: Session, followup: Followup) -> None:
    match = _accept(session, followup)
    with pytest.raises(ServiceError):
        record_outcome(session, followup.world.member, match, "maybe")
    with pytest.raises(ServiceError):
        record_outcome(session, followup.world.member, match, Outcome.HAPPENED, "x" * 201)
    record_outcome(session, followup.world.member, match, Outcome.DID_NOT_HAPPEN, "  pas   venue ")
    assert (match.outcome, match.outcome_note) == (Outcome.DID_NOT_HAPPEN, "pas venue")


def test_contact_is_hidden_until_the_resident_accepts(client: FlaskClient, auth: Auth, session: Session,
                                                     followup: Followup) -> None:
    auth.code_login(followup.code)
    response = auth.post("/moi/contact", {"channel": "phone", "value": "06 12 34 56 78"},
                         token_from="/moi/contact")
    assert response.status_code == 302  # type: ignore[attr-defined]
    auth.logout()
    auth.login(followup.world.member.email or "")
    need_page = client.get(f"/structure/besoins/{followup.need_id}").get_data(as_text=True)
    detail = client.get(f"/suivi/propositions/{followup.match_id}").get_data(as_text=True)
    assert "Awa K." in need_page and "Awa K." in detail
    for page in (need_page, detail):
        assert "06 12 34 56 78" not in page
    assert "Contact et bilan" not in need_page
    assert 'name="outcome"' not in detail

    _accept(session, followup)
    need_page = client.get(f"/structure/besoins/{followup.need_id}").get_data(as_text=True)
    detail = client.get(f"/suivi/propositions/{followup.match_id}").get_data(as_text=True)
    assert "Contact et bilan" in need_page
    assert "06 12 34 56 78" in detail and 'name="outcome"' in detail


def test_a_withdrawal_after_the_yes_hides_the_persons_own_contact(
        client: FlaskClient, auth: Auth, session: Session, followup: Followup) -> None:
    """The person said yes and gave a number, then withdrew consent on « Mes données »: the
    association keeps the yes (and may record what became of it) but reaches the person through
    their centre; Relais stops handing out the number, and whatever it is changed to."""
    auth.code_login(followup.code)
    auth.post("/moi/contact", {"channel": "phone", "value": "06 12 34 56 78"}, token_from="/moi/contact")
    _accept(session, followup)
    auth.post("/moi/donnees/accord/retrait", {"confirm": "y"}, token_from="/moi/donnees")
    auth.logout()
    auth.login(followup.world.member.email or "")
    detail = client.get(f"/suivi/propositions/{followup.match_id}").get_data(as_text=True)
    assert "06 12 34 56 78" not in detail
    assert "Relais ne montre plus son contact" in detail and "Centre social A" in detail
    assert 'name="outcome"' in detail


def test_a_no_before_a_withdrawal_no_longer_names_the_person_to_the_association(
        client: FlaskClient, auth: Auth, session: Session, followup: Followup) -> None:
    """The person said no, then withdrew consent: the association kept seeing « Awa K. » under its
    need, though nothing ties them (a yes stays: they work together)."""
    match = session.get(Match, followup.match_id)
    assert match is not None
    answer(session, session.exec(select(User).where(User.resident_id == followup.resident_id)).one(), match,
           accept=False)
    auth.login(followup.world.member.email or "")
    need_page = f"/structure/besoins/{followup.need_id}"
    assert "Awa K." in client.get(need_page).get_data(as_text=True)
    auth.logout()
    auth.code_login(followup.code)
    auth.post("/moi/donnees/accord/retrait", {"confirm": "y"}, token_from="/moi/donnees")
    auth.logout()
    auth.login(followup.world.member.email or "")
    assert "Awa K." not in client.get(need_page).get_data(as_text=True)
    assert client.get(f"/suivi/propositions/{followup.match_id}").status_code == 404


def test_a_worker_of_the_needs_centre_reading_anothers_resident_is_journaled(
        client: FlaskClient, auth: Auth, session: Session, followup: Followup) -> None:
    """A centre's own need (its habitant-relais noted it, its worker validated it) met a resident
    another centre follows: that worker reading the person's contact is in the person's history,
    as an association's reading is; the person's own worker's is not."""
    need = session.get(Need, followup.need_id)
    assert need is not None
    need.organisation_id = followup.world.centre_b.id or 0  # the need is centre B's
    session.add(need)
    session.commit()
    _accept(session, followup)

    def views() -> int:
        return len(session.exec(select(AuditEvent).where(AuditEvent.action == "profile.view",
                                                         AuditEvent.object_id == followup.resident_id)).all())

    for email, journaled in ((followup.world.worker_a.email, 0), (followup.world.worker_b.email, 1)):
        auth.login(email or "")
        assert client.get(f"/suivi/propositions/{followup.match_id}").status_code == 200
        assert views() == journaled, email
        auth.logout()


def test_default_contact_is_the_social_worker(client: FlaskClient, auth: Auth, session: Session,
                                             followup: Followup) -> None:
    """Nobody chose a channel: the association is told to go through the centre (it read « la
    personne préfère », a choice nobody made), and whom: the worker who approved the proposal,
    with their address (the centre's name alone gave it nothing to act on from a phone)."""
    _accept(session, followup)
    auth.login(followup.world.member.email or "")
    detail = client.get(f"/suivi/propositions/{followup.match_id}").get_data(as_text=True)
    assert "travailleur·se social·e : Centre social A" in detail and "préfère" not in detail
    worker = followup.world.worker_a
    assert f'href="mailto:{worker.email}"' in detail and f"{worker.display_name}, qui a validé" in detail
    assert "a dit oui" in detail and "acceptée" not in detail  # the person's answer, not a status

    worker.is_active = False  # gone from the centre: nobody named
    session.add(worker)
    session.commit()
    detail = client.get(f"/suivi/propositions/{followup.match_id}").get_data(as_text=True)
    assert "travailleur·se social·e : Centre social A" in detail and "mailto:" not in detail


def test_an_outcome_word_with_sensitive_words_is_refused(client: FlaskClient, auth: Auth, session: Session,
                                                         followup: Followup) -> None:
    """The person reads the association's word in the copy of their data."""
    _accept(session, followup)
    auth.login(followup.world.member.email or "")
    page = auth.post(f"/suivi/propositions/{followup.match_id}/bilan",
                     {"outcome": "happened", "note": "Super, malgré le Ramadan"},
                     token_from=f"/suivi/propositions/{followup.match_id}")
    shown = html.unescape(page.get_data(as_text=True))  # type: ignore[attr-defined]
    assert "Rien n'est enregistré : le mot parle de religion ou convictions (« Ramadan »)" in shown
    assert "Super, malgré le Ramadan" in shown  # kept in the form
    session.expire_all()
    assert session.get(Match, followup.match_id).outcome is None  # type: ignore[union-attr]


def test_a_no_shows_no_empty_outcome_section(client: FlaskClient, auth: Auth, session: Session,
                                             followup: Followup) -> None:
    match = session.get(Match, followup.match_id)
    assert match is not None
    answer(session, session.exec(select(User).where(User.resident_id == followup.resident_id)).one(), match,
           accept=False)
    auth.login(followup.world.member.email or "")
    detail = client.get(f"/suivi/propositions/{followup.match_id}").get_data(as_text=True)
    assert "a dit non" in detail and "Relais ne donne pas son contact" in detail
    assert 'id="bilan-h"' not in detail


def test_saying_yes_leads_to_the_contact_choice(client: FlaskClient, auth: Auth, followup: Followup) -> None:
    auth.code_login(followup.code)
    response = auth.post(f"/moi/propositions/{followup.match_id}/oui", {"comment": ""}, token_from="/moi/")
    assert response.headers["Location"].endswith("/moi/contact")  # type: ignore[attr-defined]
    page = client.get("/moi/contact").get_data(as_text=True)
    assert "Comment la structure peut vous joindre" in page


def test_the_worker_sets_the_contact_and_it_is_validated(auth: Auth, session: Session,
                                                         followup: Followup) -> None:
    path = f"/accompagnement/residents/{followup.resident_id}/contact"
    auth.login(followup.world.worker_a.email or "")
    page = auth.post(path, {"channel": "email", "value": "pas-une-adresse"}, token_from=path,
                     follow_redirects=True)
    shown = page.get_data(as_text=True)  # type: ignore[attr-defined]
    assert 'id="value-error"' in shown and "Écrivez une adresse e-mail" in shown  # beside the field
    assert 'aria-invalid="true"' in shown and "pas-une-adresse" in shown  # what was typed stays
    assert auth.post(path, {"channel": "email", "value": "awa@example.org"},
                     token_from=path).status_code == 302  # type: ignore[attr-defined]
    auth.logout()
    auth.login(followup.world.worker_b.email or "")
    assert auth.client.get(path).status_code == 404  # another centre's person
    resident = session.exec(select(User).where(User.resident_id == followup.resident_id)).one()
    session.expire_all()
    person = session.get(Resident, followup.resident_id)
    assert person is not None
    assert (person.contact_channel, person.contact_value) == ("email", "awa@example.org")
    with pytest.raises(ServiceError):
        set_contact(session, followup.world.worker_b, person, "phone", "06 12 34 56 78")
    set_contact(session, resident, person, "worker", "ignored")
    assert (person.contact_channel, person.contact_value) == ("worker", None)


@pytest.mark.parametrize(("value", "callable_"), [
    ("06 12 34 56 78", True), ("0612345678", True), ("06.12.34.56.78", True), ("+33 6 12 34 56 78", True),
    ("0033 6 12 34 56 78", True), ("+212 6 12 34 56 78", True), ("+1 (514) 555-0199", True),
    ("06 12 34", False), ("0612345", False), ("1-----1", False), ("0 . . . . 0", False),
    ("612345678", False), ("06 12 34 56 78 90", False), ("+33", False), ("06 12 34 56 7a", False),
])
def test_a_phone_number_is_one_an_association_can_call(session: Session, followup: Followup, value: str,
                                                       callable_: bool) -> None:
    """« 06 12 34 » was saved with « C'est noté » and the person's yes reached nobody."""
    person = session.get(Resident, followup.resident_id)
    assert person is not None
    resident = session.exec(select(User).where(User.resident_id == followup.resident_id)).one()
    if callable_:
        set_contact(session, resident, person, "phone", value)
        assert person.contact_value == value
    else:
        with pytest.raises(ServiceError, match="numéro de téléphone entier"):
            set_contact(session, resident, person, "phone", value)


def test_outcome_feeds_the_timeline_and_the_dashboard(client: FlaskClient, auth: Auth, session: Session,
                                                      followup: Followup) -> None:
    match = _accept(session, followup)
    record_outcome(session, followup.world.member, match, Outcome.HAPPENED, "Très bien")
    auth.login(followup.world.worker_a.email or "")
    timeline = client.get(f"/accompagnement/residents/{followup.resident_id}").get_data(as_text=True)
    assert "ça s&#39;est fait" in timeline or "ça s'est fait" in timeline
    period = Period.parse(None, None, date.today())
    table = proposals_per_month(session, None, period)
    assert table.counts[-1] == [1, 1, 1, 1]  # made, approved, accepted, completed this month


def test_the_resident_reads_what_became_of_their_yes(client: FlaskClient, auth: Auth, session: Session,
                                                    followup: Followup) -> None:
    """After the outcome, the resident's page still said « La structure va vous contacter »,
    even when it had not happened and the need was closed."""
    match = _accept(session, followup)
    auth.code_login(followup.code)
    assert "La structure va vous contacter." in client.get("/moi/").get_data(as_text=True)
    record_outcome(session, followup.world.member, match, Outcome.DID_NOT_HAPPEN, "Atelier annulé")
    page = client.get("/moi/").get_data(as_text=True)
    assert "Finalement, ça ne s'est pas fait." in page and "va vous contacter" not in page
    record_outcome(session, followup.world.member, match, Outcome.HAPPENED, "")
    assert "et ça s'est fait. Merci !" in client.get("/moi/").get_data(as_text=True)


def test_need_asks_for_a_number_of_people(client: FlaskClient, auth: Auth, session: Session,
                                          world: World) -> None:
    auth.login(world.member.email or "")
    bad = auth.post("/structure/besoins/nouveau", need_form("Déménagement", "Porter des cartons.",
                                                            kind="resource", people_wanted=0),
                    token_from="/structure/besoins/nouveau")
    assert bad.status_code == 200  # type: ignore[attr-defined]
    ok = auth.post("/structure/besoins/nouveau", need_form("Déménagement", "Porter des cartons.",
                                                           kind="resource", people_wanted=3),
                   token_from="/structure/besoins/nouveau")
    assert ok.status_code == 302  # type: ignore[attr-defined]
    need = session.exec(select(Need).where(Need.title == "Déménagement")).one()
    assert (need.people_wanted, need.kind) == (3, "resource")
    assert "Combien :</strong> 3" in client.get(f"/structure/besoins/{need.id}").get_data(as_text=True)


def test_correcting_an_outcome_starts_from_what_was_recorded(client: FlaskClient, auth: Auth,
                                                             session: Session, followup: Followup) -> None:
    """« Corriger le bilan » shows the outcome and note held: sending the form back unchanged but
    for the outcome keeps the note (an empty form used to erase it)."""
    _accept(session, followup)
    auth.login(followup.world.member.email or "")
    assert _post_outcome(auth, followup, note="Trois samedis, très bien") == 302
    page = client.get(f"/suivi/propositions/{followup.match_id}").get_data(as_text=True)
    assert re.search(r'<input[^>]*name="note"[^>]*value="Trois samedis, très bien"', page)
    assert re.search(r'<input[^>]*checked[^>]*value="happened"|<input[^>]*value="happened"[^>]*checked', page)


def test_an_outcome_without_its_answer_keeps_the_note_typed(client: FlaskClient, auth: Auth,
                                                            session: Session, followup: Followup) -> None:
    """« Ça s'est fait ? » left unanswered: the page came back empty, the note typed was lost."""
    _accept(session, followup)
    auth.login(followup.world.member.email or "")
    page = auth.post(f"/suivi/propositions/{followup.match_id}/bilan",
                     {"note": "Trois ateliers, les enfants ont adoré"},
                     token_from=f"/suivi/propositions/{followup.match_id}")
    html = page.get_data(as_text=True)  # type: ignore[attr-defined]
    assert page.status_code == 200  # type: ignore[attr-defined]
    assert 'value="Trois ateliers, les enfants ont adoré"' in html
    assert "Dites si ça s'est fait ou non." in html and 'aria-invalid="true"' in html
    session.expire_all()
    match = session.get(Match, followup.match_id)
    assert match is not None and match.outcome is None


def test_an_outcome_sent_twice_is_journaled_and_told_once(client: FlaskClient, auth: Auth,
                                                          session: Session, followup: Followup) -> None:
    """Taps on « Enregistrer le bilan »: the journal said it three times and the resident's
    workers were told three times. A real correction is still journaled and told."""
    _accept(session, followup)
    auth.login(followup.world.member.email or "")
    path = f"/suivi/propositions/{followup.match_id}/bilan"
    sent = {"outcome": "happened", "note": "Super atelier",
            "csrf_token": auth.token(f"/suivi/propositions/{followup.match_id}")}
    assert [r.status_code for r in taps(client, path, sent, 3)] == [302] * 3
    client.post(path, data=sent)  # and a reload
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "match.outcome")).all()
    told = session.exec(select(Notification).where(Notification.kind == "outcome")).all()
    assert len(events) == 1 and len(told) == len({n.user_id for n in told}) >= 1
    client.post(path, data={**sent, "outcome": "did_not_happen"})
    assert len(session.exec(select(AuditEvent).where(AuditEvent.action == "match.outcome")).all()) == 2
