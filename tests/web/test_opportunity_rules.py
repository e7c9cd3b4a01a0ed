"""An approved opportunity stays answerable only while it still means what was approved: its
need open, the resident's consent valid, its text unchanged; and it is answered once."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, col, select

from models import (
    AuditEvent,
    Consent,
    Direction,
    Match,
    MatchStatus,
    Need,
    NeedStatus,
    Notification,
    Outcome,
    Resident,
    User,
)
from tests.conftest import Auth, World, add_resident, need_form
from web.extensions import db, matching
from web.services import ServiceError, review
from web.services.needs import NeedInput, create_need, update_need
from web.services.profiles import withdraw_consent
from web.services.proposals import Proposal, store_proposals, visible_candidates
from web.services.review import answer, approve, bulk_approve, reject


@pytest.fixture(autouse=True)
def _use_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proposals are written by hand: the ranker's e5 is not needed."""
    monkeypatch.setenv("RELAIS_ENCODERS", "use")


@dataclass
class Scene:
    world: World
    awa_id: int
    code: str
    need_id: int
    match_id: int  # Awa's, approved
    binta_match_id: int  # Binta's, waiting for review


@pytest.fixture
def scene(session: Session, world: World) -> Scene:
    awa = add_resident(session, world, "Awa", "Je fais de la couture.", initial="K")
    binta = add_resident(session, world, "Binta", "Je couds des boubous.", initial="D")
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier de couture."), date.today())
    for m in session.exec(select(Match)).all():
        session.delete(m)
    session.commit()  # the matcher's own proposals, replaced by ours
    store_proposals(session, [Proposal(need.id or 0, r.resident.id or 0, 0.5, {}) for r in (awa, binta)],
                    Direction.NEED_TO_RESIDENT)
    mine = session.exec(select(Match).where(Match.resident_id == awa.resident.id)).one()
    approve(session, world.worker_a, mine)
    theirs = session.exec(select(Match).where(Match.resident_id == binta.resident.id)).one()
    return Scene(world, awa.resident.id or 0, awa.access_code, need.id or 0, mine.id or 0, theirs.id or 0)


def answer_page(client: FlaskClient, auth: Auth, scene: Scene, choice: str = "oui",
                comment: str = "") -> str:
    auth.code_login(scene.code)
    auth.post(f"/moi/propositions/{scene.match_id}/{choice}", {"comment": comment}, token_from="/moi/")
    return client.get("/moi/").get_data(as_text=True)


def resident_user(session: Session, scene: Scene) -> User:
    return session.exec(select(User).where(User.resident_id == scene.awa_id)).one()


def status_of(session: Session, match_id: int) -> str:
    session.expire_all()
    match = session.get(Match, match_id)
    assert match is not None
    return match.status


def test_a_closed_need_takes_no_more_answers(client: FlaskClient, auth: Auth, session: Session,
                                            scene: Scene) -> None:
    auth.login(scene.world.member.email or "")
    auth.post(f"/structure/besoins/{scene.need_id}/statut", {"status": "closed"})
    auth.logout()
    page = answer_page(client, auth, scene)
    assert status_of(session, scene.match_id) == MatchStatus.APPROVED
    assert "Cette proposition est close : la structure n&#39;attend plus de réponse." in page
    assert "Oui, ça m&#39;intéresse" not in page  # no buttons left to press
    # Nor through the API, nor by a worker approving what waited for review.
    match = session.get(Match, scene.match_id)
    assert match is not None
    with pytest.raises(ServiceError, match="close"):
        answer(session, resident_user(session, scene), match, accept=True)
    waiting = session.get(Match, scene.binta_match_id)
    assert waiting is None  # closing the need dropped the unreviewed one


def test_a_paused_need_refuses_the_approval_of_a_proposal_made_before(session: Session, scene: Scene) -> None:
    waiting = session.get(Match, scene.binta_match_id)
    need = session.get(Need, scene.need_id)
    assert waiting is not None and need is not None
    need.status = NeedStatus.PAUSED  # as a page opened before the pause would still offer it
    session.add(need)
    session.commit()
    with pytest.raises(ServiceError, match="plus ouvert"):
        approve(session, scene.world.worker_a, waiting)
    assert status_of(session, scene.binta_match_id) == MatchStatus.PROPOSED


def test_after_consent_ends_the_resident_cannot_say_yes_and_the_association_stops_seeing_them(
        client: FlaskClient, auth: Auth, session: Session, scene: Scene) -> None:
    need = session.get(Need, scene.need_id)
    assert need is not None
    assert [r.id for _, r in visible_candidates(session, need)] == [scene.awa_id]
    awa = session.get(Resident, scene.awa_id)
    assert awa is not None
    withdraw_consent(session, scene.world.worker_a, awa)
    assert visible_candidates(session, need) == []
    page = answer_page(client, auth, scene)
    assert status_of(session, scene.match_id) == MatchStatus.APPROVED
    assert "Votre accord pour recevoir des propositions a pris fin : vous ne pouvez plus répondre" in \
        html.unescape(page)  # not only « parlez-en », which read as "go and renew"
    auth.logout()
    auth.login(scene.world.member.email or "")
    assert "Awa K." not in client.get(f"/structure/besoins/{scene.need_id}").get_data(as_text=True)
    # Nor counted on the association's home, nor opened on the follow-up page.
    assert "0 oui · 0 en attente de réponse" in client.get("/structure/").get_data(as_text=True)
    assert client.get(f"/suivi/propositions/{scene.match_id}").status_code == 404


def test_an_expired_consent_refuses_the_approval(session: Session, scene: Scene) -> None:
    for consent in session.exec(select(Consent).where(Consent.resident_id != scene.awa_id)).all():
        consent.expires_on = date.today() - timedelta(days=1)  # expiry is no event: read at use
        session.add(consent)
    session.commit()
    waiting = session.get(Match, scene.binta_match_id)
    assert waiting is not None
    with pytest.raises(ServiceError, match="consentement"):
        approve(session, scene.world.worker_a, waiting)
    assert status_of(session, scene.binta_match_id) == MatchStatus.PROPOSED


def test_the_review_desk_leaves_out_what_can_no_longer_be_approved(client: FlaskClient, auth: Auth,
                                                                  session: Session, scene: Scene) -> None:
    """A lapsed consent (no event) leaves its proposals waiting out of the desk and its count,
    rather than offering buttons that refuse, or a bulk approval refused for one of them."""
    auth.login(scene.world.worker_a.email or "")
    desk = "/accompagnement/propositions"
    assert f"proposal-{scene.binta_match_id}" in client.get(desk).get_data(as_text=True)
    assert "1 proposition(s) à examiner" in client.get("/accompagnement/").get_data(as_text=True)
    for consent in session.exec(select(Consent).where(Consent.resident_id != scene.awa_id)).all():
        consent.expires_on = date.today() - timedelta(days=1)
        session.add(consent)
    session.commit()
    assert f"proposal-{scene.binta_match_id}" not in client.get(desk).get_data(as_text=True)
    assert "0 proposition(s) à examiner" in client.get("/accompagnement/").get_data(as_text=True)
    assert status_of(session, scene.binta_match_id) == MatchStatus.PROPOSED  # back once renewed


def test_a_need_whose_text_changes_takes_back_the_approvals_not_answered(
        client: FlaskClient, auth: Auth, session: Session, scene: Scene) -> None:
    auth.login(scene.world.member.email or "")
    edit = f"/structure/besoins/{scene.need_id}/modifier"
    response = auth.post(edit, need_form("Garde d'enfants de nuit", "Garder des enfants la nuit."),
                         token_from=edit)
    assert response.status_code == 302  # type: ignore[attr-defined]
    session.expire_all()
    awa = session.exec(select(Match.status).where(Match.resident_id == scene.awa_id)).all()
    assert MatchStatus.APPROVED not in awa  # gone, or proposed again for a worker's review
    auth.logout()
    auth.code_login(scene.code)
    page = client.get("/moi/").get_data(as_text=True)
    assert "Garde d&#39;enfants" not in page  # not under an approval given for sewing


def test_an_edit_of_when_alone_keeps_the_approvals(client: FlaskClient, auth: Auth, session: Session,
                                                   scene: Scene) -> None:
    """A browser sends the description back with "\r\n" line ends: an edit of "Quand" alone is
    not a new text (which would withdraw the approvals not answered yet)."""
    need = session.get(Need, scene.need_id)
    assert need is not None
    need.description = "Animer un atelier de couture.\nLe mercredi."  # as an import or the API writes it
    session.add(need)
    session.commit()
    auth.login(scene.world.member.email or "")
    edit = f"/structure/besoins/{scene.need_id}/modifier"
    auth.post(edit, need_form("Atelier couture", "Animer un atelier de couture.\r\nLe mercredi.  ",
                              when_text="le jeudi"), token_from=edit)
    assert status_of(session, scene.match_id) == MatchStatus.APPROVED
    need = session.get(Need, scene.need_id)
    assert need is not None and need.when_text == "le jeudi"
    assert need.description == "Animer un atelier de couture.\nLe mercredi."


def test_an_answered_opportunity_survives_an_edit_of_the_text(client: FlaskClient, auth: Auth,
                                                             session: Session, scene: Scene) -> None:
    answer_page(client, auth, scene)
    assert status_of(session, scene.match_id) == MatchStatus.ACCEPTED
    auth.logout()
    auth.login(scene.world.member.email or "")
    edit = f"/structure/besoins/{scene.need_id}/modifier"
    auth.post(edit, need_form("Atelier couture et broderie", "Animer un atelier de couture."),
              token_from=edit)
    assert status_of(session, scene.match_id) == MatchStatus.ACCEPTED


def test_a_comment_too_long_is_said(client: FlaskClient, auth: Auth, session: Session, scene: Scene) -> None:
    page = answer_page(client, auth, scene, comment="é" * 501)
    assert "Votre mot est trop long (500 caractères au plus)" in page
    assert status_of(session, scene.match_id) == MatchStatus.APPROVED


def test_of_two_answers_sent_at_once_the_first_counts(session: Session, scene: Scene) -> None:
    """The second answer was read before the first was written (a double tap; yes on the phone,
    no in the app): it is refused, not written over the first."""
    with db.session() as other:
        late = other.get(Match, scene.match_id)
        assert late is not None and late.status == MatchStatus.APPROVED
        first = session.get(Match, scene.match_id)
        assert first is not None
        answer(session, resident_user(session, scene), first, accept=True)
        with pytest.raises(ServiceError, match="déjà dit oui"):  # what stands, and how to change it
            answer(other, resident_user(other, scene), late, accept=False)
    assert status_of(session, scene.match_id) == MatchStatus.ACCEPTED
    events = session.exec(select(AuditEvent.action).where(AuditEvent.object_id == scene.match_id,
                                                          AuditEvent.object_type == "match")).all()
    assert sorted(events) == ["match.accept", "match.approve"]


def test_an_answer_to_an_approval_withdrawn_meanwhile_says_so(session: Session, scene: Scene) -> None:
    """The resident's page was read before the need's text changed (which withdrew the approval):
    the answer is refused as closed, not as 'already answered'."""
    with db.session() as other:
        stale = other.get(Match, scene.match_id)
        assert stale is not None and stale.status == MatchStatus.APPROVED
        need = session.get(Need, scene.need_id)
        assert need is not None
        update_need(session, matching, scene.world.member, need,
                    {"description": "Garder des enfants la nuit."}, date.today())
        assert session.exec(select(Match).where(Match.resident_id == scene.awa_id,
                                                Match.status == MatchStatus.APPROVED)).first() is None
        with pytest.raises(ServiceError, match="close"):
            answer(other, resident_user(other, scene), stale, accept=True)


def test_a_yes_sent_as_the_need_is_closed_is_not_written(session: Session, scene: Scene,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The association closes the need between the answer's check and its write: the yes is not
    written on a closed need (the association has just closed the door on it)."""
    real = review._refuse_if_closed

    def closed_right_after(session_: Session, match: Match, messages: Any) -> None:
        real(session_, match, messages)
        with db.session() as other:
            need = other.get(Need, scene.need_id)
            assert need is not None
            update_need(other, matching, scene.world.member, need, {"status": NeedStatus.CLOSED},
                        date.today())

    monkeypatch.setattr(review, "_refuse_if_closed", closed_right_after)
    mine = session.get(Match, scene.match_id)
    assert mine is not None
    with pytest.raises(ServiceError, match="close"):
        answer(session, resident_user(session, scene), mine, accept=True)
    assert status_of(session, scene.match_id) == MatchStatus.APPROVED


@pytest.mark.parametrize("bulk", [False, True])
def test_of_two_reviews_read_at_once_the_first_counts(session: Session, scene: Scene, bulk: bool) -> None:
    """Two workers (or two tabs) read the same proposal; one sets it aside, then the other
    approves from what they read: the approval is refused, not written over the rejection."""
    with db.session() as other:
        stale = other.get(Match, scene.binta_match_id)
        assert stale is not None and stale.status == MatchStatus.PROPOSED
        first = session.get(Match, scene.binta_match_id)
        assert first is not None
        reject(session, scene.world.worker_a, first, "busy")
        with pytest.raises(ServiceError, match="déjà été examinée"):
            if bulk:
                bulk_approve(other, scene.world.worker_a, [stale])
            else:
                approve(other, scene.world.worker_a, stale)
    session.expire_all()
    match = session.get(Match, scene.binta_match_id)
    assert match is not None and (match.status, match.rejection_code) == (MatchStatus.REJECTED, "busy")
    events = session.exec(select(AuditEvent.action).where(AuditEvent.object_id == scene.binta_match_id,
                                                          AuditEvent.object_type == "match")).all()
    assert events == ["match.reject"]


def test_a_second_tap_on_yes_still_leads_to_the_contact_choice(client: FlaskClient, auth: Auth,
                                                               session: Session, scene: Scene) -> None:
    """Two taps on « Oui » (or a reload of the answer): the first one answered; the second was
    told « Vous avez déjà répondu » and never reached the page where the resident chooses how the
    association may reach them. It now thanks them and goes on as the first; a different answer
    is still refused."""
    auth.code_login(scene.code)
    token = auth.token("/moi/")
    yes = f"/moi/propositions/{scene.match_id}/oui"
    for _ in range(2):
        response = client.post(yes, data={"comment": "", "csrf_token": token})
        assert response.headers["Location"] == "/moi/contact"
        page = client.get("/moi/contact").get_data(as_text=True)
        assert "Merci ! Votre réponse est envoyée." in page and "déjà répondu" not in page
    assert status_of(session, scene.match_id) == MatchStatus.ACCEPTED
    assert len(session.exec(select(AuditEvent).where(AuditEvent.action == "match.accept")).all()) == 1
    client.post(f"/moi/propositions/{scene.match_id}/non", data={"comment": "", "csrf_token": token})
    said = html.unescape(client.get("/moi/").get_data(as_text=True))
    assert "Vous avez déjà dit oui à cette proposition. Si vous ne pouvez plus, touchez « Je ne" in said
    assert status_of(session, scene.match_id) == MatchStatus.ACCEPTED


def test_a_resident_changes_her_mind_and_who_heard_of_her_answer_hears_it(
        client: FlaskClient, auth: Auth, session: Session, scene: Scene) -> None:
    """Once answered, a card had no button: a yes she could no longer keep, or a no she regretted,
    was refused (« Vous avez déjà répondu ») with nobody to turn to. A yes becomes a no until what
    happened is recorded, a no a yes on the terms of any yes; the association and the worker who
    approved are told, the journal says it was a change of mind."""
    home = answer_page(client, auth, scene, "oui")
    assert "Je ne peux plus, finalement" in home and 'name="change" value="y"' in home
    # Asked first: her place may go to someone else.
    assert '<details class="confirm">' in home and "Oui, je ne peux plus" in home
    response = auth.post(f"/moi/propositions/{scene.match_id}/non", {"change": "y"}, token_from="/moi/")
    assert response.headers["Location"] == "/moi/"  # type: ignore[attr-defined]
    home = html.unescape(client.get("/moi/").get_data(as_text=True))
    assert "la structure et la personne qui vous accompagne sont prévenues" in home
    assert "Vous avez dit non." in home and "J'ai changé d'avis : ça m'intéresse" in home
    assert status_of(session, scene.match_id) == MatchStatus.DECLINED
    told = session.exec(select(Notification.user_id, Notification.text).where(
        Notification.kind == "answered", col(Notification.text).contains("changé d'avis"))).all()
    assert sorted(told) == sorted([
        (user_id, "Awa K. a changé d'avis : finalement non pour « Atelier couture ». Ne comptez plus sur "
                  "sa venue.") for user_id in (scene.world.member.id, scene.world.worker_a.id)])
    response = auth.post(f"/moi/propositions/{scene.match_id}/oui", {"change": "y"}, token_from="/moi/")
    assert response.headers["Location"] == "/moi/contact"  # type: ignore[attr-defined]
    assert status_of(session, scene.match_id) == MatchStatus.ACCEPTED
    changes = session.exec(select(AuditEvent.action, AuditEvent.details).where(
        AuditEvent.object_id == scene.match_id, col(AuditEvent.action).in_(["match.accept", "match.decline"]))
        .order_by(col(AuditEvent.id))).all()
    assert changes == [("match.accept", {}), ("match.decline", {"changed_mind": True}),
                       ("match.accept", {"changed_mind": True})]
    # Once what happened is recorded, the yes stays: no button, and a late change is refused.
    match = session.get(Match, scene.match_id)
    assert match is not None
    match.outcome = Outcome.HAPPENED
    session.add(match)
    session.commit()
    assert "Je ne peux plus" not in client.get("/moi/").get_data(as_text=True)
    auth.post(f"/moi/propositions/{scene.match_id}/non", {"change": "y"}, token_from="/moi/")
    assert "Cette réponse ne peut plus changer" in html.unescape(client.get("/moi/").get_data(as_text=True))
    assert status_of(session, scene.match_id) == MatchStatus.ACCEPTED


def test_a_no_becomes_a_yes_only_while_the_need_has_a_place(client: FlaskClient, auth: Auth,
                                                            session: Session, scene: Scene) -> None:
    need = session.get(Need, scene.need_id)
    assert need is not None
    need.people_wanted = 1
    session.add(need)
    session.commit()
    answer_page(client, auth, scene, "non")
    binta = session.get(Match, scene.binta_match_id)
    assert binta is not None
    approve(session, scene.world.worker_a, binta)
    binta_user = session.exec(select(User).join(Resident, col(Resident.id) == User.resident_id)
                              .where(Resident.id == binta.resident_id)).one()
    answer(session, binta_user, binta, accept=True)  # the one place is hers
    home = html.unescape(client.get("/moi/").get_data(as_text=True))
    assert "Vous avez dit non." in home and "J'ai changé d'avis" not in home
    auth.post(f"/moi/propositions/{scene.match_id}/oui", {"change": "y"}, token_from="/moi/")
    assert "Les places sont déjà prises" in html.unescape(client.get("/moi/").get_data(as_text=True))
    assert status_of(session, scene.match_id) == MatchStatus.DECLINED
    # Binta can no longer come: the place is free again, and Awa may take it.
    answer(session, binta_user, binta, accept=False, change=True)
    assert "J'ai changé d'avis" in html.unescape(client.get("/moi/").get_data(as_text=True))
    auth.post(f"/moi/propositions/{scene.match_id}/oui", {"change": "y"}, token_from="/moi/")
    assert status_of(session, scene.match_id) == MatchStatus.ACCEPTED


def test_a_yes_become_a_no_proposes_the_need_again(client: FlaskClient, auth: Auth, session: Session,
                                                   scene: Scene) -> None:
    """Her yes filled the need: the proposals waiting for review went. When she can no longer
    come, the place is free and Relais proposes people for it again (the matcher's choice)."""
    need = session.get(Need, scene.need_id)
    assert need is not None
    need.people_wanted = 1
    session.add(need)
    session.commit()
    answer_page(client, auth, scene, "oui")
    session.expire_all()
    assert session.get(Match, scene.binta_match_id) is None  # the need is full: Binta's went
    chloe = add_resident(session, scene.world, "Chloé", "J'anime des ateliers de couture pour les "
                         "jeunes du quartier.", initial="D").resident  # recorded while it is full
    waiting = select(Match.resident_id).where(Match.need_id == scene.need_id,
                                              Match.status == MatchStatus.PROPOSED)
    assert chloe.id not in session.exec(waiting).all()
    auth.post(f"/moi/propositions/{scene.match_id}/non", {"change": "y"}, token_from="/moi/")
    session.expire_all()
    again = session.exec(waiting).all()
    assert chloe.id in again and scene.awa_id not in again
