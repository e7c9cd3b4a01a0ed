"""Associations edit, pause, close and reopen their needs; matching follows."""

from __future__ import annotations

import re
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, delete, select, update

from models import (
    AuditEvent,
    Direction,
    Match,
    MatchStatus,
    Need,
    NeedStatement,
    Notification,
    Resident,
    User,
    utcnow,
)
from tests.conftest import Auth, World, add_resident, approved_opportunity, at_once, need_form, taps
from web.extensions import matching
from web.services import ServiceError
from web.services.needs import NeedInput, create_need
from web.services.profiles import CreatedResident
from web.services.proposals import Proposal, store_proposals
from web.services.review import approve

NEW = "/structure/besoins/nouveau"


def posted_need(auth: Auth, session: Session, world: World, residents: list[tuple[str, str]]) -> Need:
    """« Atelier couture » posted by the association's member from /structure, after `residents`
    (first name, declaration) were recorded; the member stays logged in."""
    for name, text in residents:
        add_resident(session, world, name, text)
    auth.login(world.member.email or "")
    auth.post(NEW, need_form("Atelier couture", "Animer un atelier de couture."), token_from=NEW)
    return session.exec(select(Need)).one()


def test_edit_pause_close_reopen(client: FlaskClient, auth: Auth, session: Session,
                                 world: World) -> None:
    need = posted_need(auth, session, world, [("Awa", "Je fais de la couture et des retouches."),
                                              ("Jorge", "Je répare les vélos et les mobylettes.")])
    proposed = {m.resident_id for m in session.exec(select(Match)).all()}
    assert proposed

    # Edit: the text changes, unreviewed proposals are remade from the new text.
    edit = f"/structure/besoins/{need.id}/modifier"
    page = client.get(edit).get_data(as_text=True)
    assert "Atelier couture" in page and "Modifier le besoin" in page
    response = auth.post(edit, need_form("Atelier vélo", "Réparer des vélos avec les jeunes."),
                         token_from=edit)
    assert response.status_code == 302  # type: ignore[attr-defined]
    session.expire_all()
    assert session.get(Need, need.id).title == "Atelier vélo"  # type: ignore[union-attr]
    titles = [s.text for s in session.exec(select(NeedStatement).where(
        NeedStatement.need_id == need.id)).all()]
    assert titles[0] == "Atelier vélo"
    statuses = {m.status for m in session.exec(select(Match)).all()}
    assert statuses == {MatchStatus.PROPOSED}

    # Pause: proposals nobody reviewed are dropped and none are made.
    status = f"/structure/besoins/{need.id}/statut"
    auth.post(status, {"status": "paused"})
    session.expire_all()
    assert session.get(Need, need.id).status == "paused"  # type: ignore[union-attr]
    assert session.exec(select(Match)).all() == []
    assert "en pause" in client.get(f"/structure/besoins/{need.id}").get_data(as_text=True)

    # Reopen: matching runs again; close: gone again.
    auth.post(status, {"status": "open"})
    session.expire_all()
    assert session.exec(select(Match)).all()
    auth.post(status, {"status": "closed"})
    auth.post(status, {"status": "nonsense"})
    again = auth.post(status, {"status": "closed"}, follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Rien n&#39;a changé" in again and "Besoin clôturé" not in again  # a second tap did nothing
    session.expire_all()
    assert session.get(Need, need.id).status == "closed"  # type: ignore[union-attr]
    updates = session.exec(select(AuditEvent).where(AuditEvent.action == "need.update")).all()
    assert len(updates) == 4


def test_other_organisations_cannot_edit(client: FlaskClient, auth: Auth, session: Session,
                                         world: World) -> None:
    need = Need(organisation_id=world.association.id or 0, title="Couture", description="Couture.",
                created_by_id=world.member.id or 0)
    session.add(need)
    session.commit()
    auth.login(world.worker_a.email or "")  # a social worker reads needs, never edits them
    assert client.get(f"/structure/besoins/{need.id}/modifier").status_code == 403
    assert client.post(f"/structure/besoins/{need.id}/statut",
                       data={"status": "closed", "csrf_token": auth.token()}).status_code == 403
    assert client.get("/structure/besoins/424242/modifier").status_code == 403


def test_a_need_reads_the_same_to_its_association_the_worker_and_the_resident(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """What the association asked (time slots and languages included) is shown on its own page,
    on the social worker's and to the resident who got it; the head count to staff only."""
    awa = add_resident(session, world, "Awa", "Je fais de la couture et je parle arabe.")
    auth.login(world.member.email or "")
    refused = auth.post(NEW, need_form("Atelier couture", "Animer un atelier.", people_wanted="deux"),
                        token_from=NEW).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Écrivez un nombre en chiffres, par exemple 3." in refused and "entier" not in refused
    auth.post(NEW, need_form("Atelier couture", "Animer un atelier de couture.", people_wanted=2,
                             availability=["weekend", "weekday_morning"], languages=["ar"]),
              token_from=NEW)
    need = session.exec(select(Need)).one()
    assert need.availability and need.languages == ["ar"]
    slots = "Créneaux :</strong> en semaine, le matin ; le week-end"
    languages = "Langues :</strong> arabe"
    page = client.get(f"/structure/besoins/{need.id}").get_data(as_text=True)
    assert slots in page and languages in page and "Combien :</strong> 2" in page
    auth.logout()
    auth.login(world.worker_a.email or "")
    page = client.get(f"/accompagnement/besoins/{need.id}").get_data(as_text=True)
    assert slots in page and languages in page and "Combien :</strong> 2" in page
    auth.logout()
    match = session.exec(select(Match).where(Match.need_id == need.id,
                                             Match.resident_id == awa.resident.id)).one()
    match.status = MatchStatus.APPROVED
    session.add(match)
    session.commit()
    auth.code_login(awa.access_code)
    page = client.get("/moi/").get_data(as_text=True)
    assert "Atelier couture" in page and slots in page and languages in page
    assert "Combien" not in page and "Maison des projets" in page


def test_editing_a_need_keeps_a_language_no_box_offers(client: FlaskClient, auth: Auth, session: Session,
                                                       world: World) -> None:
    """A need imported with « allemand » (no box on the form): its edit page offers that box,
    ticked, so saving the page keeps the language; unticking it removes it."""
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Traduire un courrier", description="Traduire un courrier de l'allemand.",
        languages=["de", "fr"]), date.today())
    auth.login(world.member.email or "")
    path = f"/structure/besoins/{need.id}/modifier"
    page = client.get(path).get_data(as_text=True)
    assert re.search(r'<input[^>]*checked[^>]*value="de"|<input[^>]*value="de"[^>]*checked', page)
    auth.post(path, need_form("Traduire une lettre", need.description, languages=["de", "fr"]),
              token_from=path)
    session.expire_all()
    assert (need.title, need.languages) == ("Traduire une lettre", ["de", "fr"])
    auth.post(path, need_form("Traduire une lettre", need.description, languages=["fr"]), token_from=path)
    session.expire_all()
    assert need.languages == ["fr"]


def test_a_need_sent_twice_is_published_once(client: FlaskClient, auth: Auth, session: Session,
                                             world: World) -> None:
    """A double click or a reload of the form's answer: one need, one round of proposals; another
    text is another need."""
    path = "/structure/besoins/nouveau"
    auth.login(world.member.email or "")
    form = {**need_form("Atelier couture", "Animer un atelier\r\nde couture."),
            "csrf_token": auth.token(path)}
    first, second = client.post(path, data=form), client.post(path, data=form)
    [need] = session.exec(select(Need)).all()
    assert first.headers["Location"] == second.headers["Location"] == f"/structure/besoins/{need.id}"
    assert "vient d&#39;être publié" in client.get(second.headers["Location"]).get_data(as_text=True)
    assert len(session.exec(select(AuditEvent).where(AuditEvent.action == "need.create")).all()) == 1
    client.post(path, data={**form, "description": "Animer un atelier de tricot."})
    assert len(session.exec(select(Need)).all()) == 2
    # The same words for another neighbourhood are another need, not the first one again.
    other = client.post(path, data={**form, "territory_id": world.bourg.id, "where_text": "Salle du Bourg"})
    assert other.headers["Location"] != first.headers["Location"]
    assert len(session.exec(select(Need)).all()) == 3


def test_a_need_sent_twice_at_the_same_instant_is_published_once(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """Two taps in a row on a slow connection: both requests pass the first look for a twin
    before either is written (the text's encoding takes a while); the second sees the first
    after its own insert and gives way."""
    path = "/structure/besoins/nouveau"
    auth.login(world.member.email or "")
    form = {**need_form("Atelier couture", "Animer un atelier de couture."), "csrf_token": auth.token(path)}
    answers = [sent.headers["Location"] for sent in taps(client, path, form)]
    [need] = session.exec(select(Need)).all()
    assert answers == [f"/structure/besoins/{need.id}"] * 2


def test_what_the_proposals_were_made_on_decides_if_they_are_made_again(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """Changing « Combien » only keeps the proposal waiting for review (same id, no new notice to
    workers), even when the form lists the languages asked in another order than the one stored;
    moving the need to another neighbourhood (distance filters) makes them again."""
    add_resident(session, world, "Awa", "Je parle arabe et je couds des robes.", initial="K")
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier couture en arabe.", languages=["ar", "fr"],
        availability=["weekday_morning", "weekday_afternoon"], territory_id=world.tilleuls.id), date.today())
    waiting = session.exec(select(Match.id).where(Match.need_id == need.id)).all()
    assert waiting
    auth.login(world.member.email or "")
    path = f"/structure/besoins/{need.id}/modifier"
    form = {"languages": ["fr", "ar"], "availability": ["weekday_afternoon", "weekday_morning"],
            "people_wanted": 3, "when_text": "", "where_text": ""}
    auth.post(path, need_form("Atelier couture", "Animer un atelier couture en arabe.", **form,
                              territory_id=world.tilleuls.id), token_from=path)
    session.expire_all()
    assert session.exec(select(Match.id).where(Match.need_id == need.id)).all() == waiting
    update = session.exec(select(AuditEvent).where(AuditEvent.action == "need.update")).one()
    assert update.details["fields"] == ["people_wanted"]
    auth.post(path, need_form("Atelier couture", "Animer un atelier couture en arabe.", **form,
                              territory_id=world.bourg.id), token_from=path)
    session.expire_all()
    assert not set(session.exec(select(Match.id).where(Match.need_id == need.id)).all()) & set(waiting)


def test_a_text_change_keeps_a_workers_own_pick_and_tells_who_answers_too_late(
        app: Flask, client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """A typo fixed in the title took away, silently and for good (the matcher never proposed
    her), the person a worker proposed by hand from the need's page. The matcher's approved
    opportunities still go (the need asks something else), and the worker who approved one is
    told; the resident who taps « Oui » on a page loaded before gets a sentence, not « Cette page
    n'existe pas ou plus »."""
    awa = approved_opportunity(session, world, "Animer un atelier de couture.")  # the matcher's
    need = session.exec(select(Need)).one()
    gone = session.exec(select(Match.id)).one()
    chloe = add_resident(session, world, "Chloé", "Je cuisine pour les fêtes du quartier.", initial="D")
    for m in session.exec(select(Match).where(Match.resident_id == chloe.resident.id)).all():
        session.delete(m)
    session.commit()
    auth.login(world.worker_a.email or "")
    page = f"/accompagnement/besoins/{need.id}"
    auth.post(f"{page}/proposer", {"resident_id": chloe.resident.id}, token_from=page)
    auth.logout()
    auth.code_login(awa.access_code)
    token = auth.token("/moi/")

    member = Auth(app.test_client())
    member.login(world.member.email or "")
    edit = f"/structure/besoins/{need.id}/modifier"
    member.post(edit, need_form("Atelier de couture", "Animer un atelier de couture."), token_from=edit)
    session.expire_all()
    kept = session.exec(select(Match).where(Match.resident_id == chloe.resident.id)).one()
    assert (kept.status, kept.direction) == (MatchStatus.APPROVED, Direction.WORKER)
    assert session.get(Match, gone) is None
    told = session.exec(select(Notification).where(Notification.user_id == world.worker_a.id,
                                                   Notification.kind == "withdrawn")).one()
    assert told.text == ("« Atelier de couture » a été modifié : la proposition validée pour Awa K. est "
                         "retirée avant sa réponse. Le besoin repasse dans les propositions.")
    # She had seen it (her « Mes propositions » was shown): she is told it went.
    resident_notices = select(Notification).join(User, col(User.id) == Notification.user_id).where(
        User.resident_id == awa.resident.id, Notification.kind == "withdrawn")
    [gone_notice] = session.exec(resident_notices).all()
    assert "n'est plus disponible : le besoin a changé" in gone_notice.text
    late = client.post(f"/moi/propositions/{gone}/oui", data={"csrf_token": token}, follow_redirects=True)
    assert late.status_code == 200
    assert "Cette proposition n&#39;est plus disponible" in late.get_data(as_text=True)


@pytest.mark.parametrize(("status", "said"), [
    ("paused", "« Atelier de couture » a été modifié pendant sa pause : la proposition validée pour Awa K. "
               "est retirée avant sa réponse. Le besoin repassera dans les propositions s'il rouvre."),
    ("closed", "« Atelier de couture » a été modifié après sa clôture : la proposition validée pour Awa K. "
               "est retirée avant sa réponse.")])
def test_a_need_rewritten_while_paused_or_closed_promises_no_proposal(
        client: FlaskClient, auth: Auth, session: Session, world: World, status: str, said: str) -> None:
    """The worker read « Le besoin repasse dans les propositions » about a closed need, which
    nothing is proposed for."""
    approved_opportunity(session, world, "Animer un atelier de couture.")
    need = session.exec(select(Need)).one()
    auth.login(world.member.email or "")
    auth.post(f"/structure/besoins/{need.id}/statut", {"status": status})
    edit = f"/structure/besoins/{need.id}/modifier"
    auth.post(edit, need_form("Atelier de couture", "Animer un atelier de couture."), token_from=edit)
    session.expire_all()
    told = session.exec(select(Notification).where(Notification.user_id == world.worker_a.id,
                                                   Notification.kind == "withdrawn")).one()
    assert told.text == said
    assert session.exec(select(Match)).all() == []


def test_an_approval_the_new_languages_or_place_rule_out_goes_and_its_worker_is_told(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """A need that asks Arabic after a worker approved someone who does not speak it kept the
    opportunity: the resident could say yes to what they cannot do, and the matcher would never
    have proposed them. The approvals the need's languages or place now filter out go, the worker
    is told why; a speaker's stays, and so does a worker's own pick."""
    awa = approved_opportunity(session, world, "Animer un atelier de couture.")
    need = session.exec(select(Need)).one()
    binta = add_resident(session, world, "Binta", "Je couds des robes.", initial="S", languages=["ar"])
    chloe = add_resident(session, world, "Chloé", "Je cuisine pour les fêtes du quartier.", initial="D")
    for m in session.exec(select(Match).where(Match.resident_id != awa.resident.id)).all():
        session.delete(m)
    session.commit()
    store_proposals(session, [Proposal(need.id or 0, binta.resident.id or 0, 0.5, {})],
                    Direction.NEED_TO_RESIDENT)
    approve(session, world.worker_a, session.exec(select(Match).where(
        Match.resident_id == binta.resident.id)).one())
    auth.login(world.worker_a.email or "")
    page = f"/accompagnement/besoins/{need.id}"
    auth.post(f"{page}/proposer", {"resident_id": chloe.resident.id}, token_from=page)
    auth.logout()

    def approved() -> set[str]:
        session.expire_all()
        return {r.first_name for m in session.exec(select(Match).where(
            Match.need_id == need.id, Match.status == MatchStatus.APPROVED)).all()
            if (r := session.get(Resident, m.resident_id)) is not None}

    def told() -> list[str]:
        return [n.text for n in session.exec(select(Notification).where(
            Notification.user_id == world.worker_a.id, Notification.kind == "withdrawn")
            .order_by(col(Notification.id))).all()]

    assert approved() == {"Awa", "Binta", "Chloé"}
    auth.login(world.member.email or "")
    edit = f"/structure/besoins/{need.id}/modifier"
    auth.post(edit, need_form("Atelier couture", "Animer un atelier de couture.", languages=["ar"]),
              token_from=edit)
    assert approved() == {"Binta", "Chloé"}
    assert told() == ["« Atelier couture » demande maintenant une langue que Awa K. ne parle pas : la "
                      "proposition validée est retirée avant sa réponse."]
    # The need moves 390 km away: out of the matcher's reach (max_distance_km) for Binta too.
    # She had read her notice: she is told the opportunity went.
    binta_account = session.exec(select(User.id).where(User.resident_id == binta.resident.id)).one()
    session.exec(update(Notification).where(col(Notification.user_id) == binta_account)
                 .values(read_at=utcnow()))
    world.tilleuls.latitude, world.tilleuls.longitude = 48.8566, 2.3522
    world.bourg.latitude, world.bourg.longitude = 45.7640, 4.8357
    session.add_all([world.tilleuls, world.bourg])
    session.commit()
    auth.post(edit, need_form("Atelier couture", "Animer un atelier de couture.", languages=["ar"],
                              territory_id=world.bourg.id), token_from=edit)
    assert approved() == {"Chloé"}
    assert told()[1:] == ["« Atelier couture » a changé de quartier, trop loin de Binta S. : la "
                          "proposition validée est retirée avant sa réponse."]
    assert [n.text for n in session.exec(select(Notification).where(
        Notification.user_id == binta_account).order_by(col(Notification.id))).all()] == [
        "Nouvelle proposition pour vous : « Atelier couture ».",
        "La proposition « Atelier couture » n'est plus disponible : le besoin a changé. La personne qui "
        "vous accompagne vous dira s'il y a du nouveau."]


def test_a_withdrawn_opportunity_takes_its_own_notice_and_speaks_of_the_title_read(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """Notices were matched by title: withdrawing one « Atelier couture » deleted the unread notice
    of another need with the same title, still open to her. And once read, she was told of the
    new title, which she had never seen."""
    awa = approved_opportunity(session, world, "Animer un atelier de couture.")
    first = session.exec(select(Need)).one()
    second, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Coudre des rideaux pour la salle des fêtes."), date.today())
    for m in session.exec(select(Match).where(Match.need_id == second.id)).all():
        session.delete(m)
    session.commit()
    store_proposals(session, [Proposal(second.id or 0, awa.resident.id or 0, 0.5, {})],
                    Direction.NEED_TO_RESIDENT)
    approve(session, world.worker_a, session.exec(select(Match).where(Match.need_id == second.id)).one())
    account = session.exec(select(User.id).where(User.resident_id == awa.resident.id)).one()

    def notices() -> list[tuple[object, str]]:
        session.expire_all()
        return [((n.message_values or {}).get("need_id"), n.text) for n in session.exec(
            select(Notification).where(Notification.user_id == account).order_by(col(Notification.id))).all()]

    auth.login(world.member.email or "")
    edit = f"/structure/besoins/{first.id}/modifier"
    auth.post(edit, need_form("Atelier couture", "Animer un atelier de couture le mardi."), token_from=edit)
    assert notices() == [(second.id, "Nouvelle proposition pour vous : « Atelier couture ».")]
    session.exec(update(Notification).where(col(Notification.user_id) == account).values(read_at=utcnow()))
    session.commit()
    edit = f"/structure/besoins/{second.id}/modifier"
    auth.post(edit, need_form("Rideaux de la salle", "Coudre des rideaux pour la salle."), token_from=edit)
    gone = ("La proposition « Atelier couture » n'est plus disponible : le besoin a changé. La personne "
            "qui vous accompagne vous dira s'il y a du nouveau.")
    assert notices()[1:] == [(None, gone)]


def test_a_change_of_languages_withdraws_on_languages_only(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """A person who moved away after her approval kept it (a profile's edit drops unreviewed
    proposals only); a later change of the languages asked withdrew it « a changé de quartier,
    trop loin », a change the need had not made. Each filter is read when its field changes."""
    awa = approved_opportunity(session, world, "Animer un atelier de couture.")
    need = session.exec(select(Need)).one()
    world.tilleuls.latitude, world.tilleuls.longitude = 48.8566, 2.3522
    world.bourg.latitude, world.bourg.longitude = 45.7640, 4.8357
    need.territory_id = world.tilleuls.id
    awa.resident.territory_id, awa.resident.languages = world.bourg.id, ["ar"]  # moved since
    session.add_all([world.tilleuls, world.bourg, need, awa.resident])
    session.commit()
    auth.login(world.member.email or "")
    edit = f"/structure/besoins/{need.id}/modifier"
    auth.post(edit, need_form("Atelier couture", "Animer un atelier de couture.", languages=["ar"],
                              territory_id=world.tilleuls.id), token_from=edit)
    session.expire_all()
    assert session.exec(select(Match.status).where(Match.need_id == need.id)).all() == [MatchStatus.APPROVED]


def test_proposals_remade_by_an_edit_are_announced_once(client: FlaskClient, auth: Auth, session: Session,
                                                        world: World) -> None:
    """A need edited, paused and reopened remade the same two proposals each time: the worker
    read « 2 nouvelles propositions à examiner » three times. Notices not read (nor emailed) yet
    are replaced; once read, the next batch is announced on its own."""
    need = posted_need(auth, session, world, [("Awa", "Je fais de la couture et des retouches."),
                                              ("Binta", "Je couds des robes et des rideaux.")])
    edit, status = f"/structure/besoins/{need.id}/modifier", f"/structure/besoins/{need.id}/statut"
    auth.post(edit, need_form("Atelier couture !", "Animer un atelier de couture."), token_from=edit)
    auth.post(status, {"status": "paused"})
    auth.post(status, {"status": "open"})

    def told() -> list[tuple[str, bool]]:
        session.expire_all()
        return [(n.text, n.read_at is not None) for n in session.exec(
            select(Notification).where(Notification.user_id == world.worker_a.id)
            .order_by(col(Notification.id))).all()]

    waiting = session.exec(select(Match).where(Match.status == MatchStatus.PROPOSED)).all()
    assert len(waiting) == 2 and told() == [("2 nouvelles propositions à examiner.", False)]
    session.exec(update(Notification).values(read_at=utcnow()))
    session.commit()
    auth.post(status, {"status": "paused"})
    auth.post(status, {"status": "open"})
    two = "2 nouvelles propositions à examiner."
    assert told() == [(two, True), (two, False)]


def test_saving_a_need_unchanged_says_nothing_changed(client: FlaskClient, auth: Auth, session: Session,
                                                     world: World) -> None:
    need = posted_need(auth, session, world, [])
    edit = f"/structure/besoins/{need.id}/modifier"
    same = auth.post(edit, need_form("Atelier couture", "Animer un atelier de couture."), token_from=edit,
                     follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Rien n&#39;a changé." in same and "Besoin modifié." not in same
    changed = auth.post(edit, need_form("Atelier couture", "Animer un atelier de couture le mardi."),
                        token_from=edit, follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Besoin modifié." in changed


@pytest.mark.parametrize(("page", "field", "limit"), [
    (NEW, "description", 10_000), ("/structure/presentation", "description", 4_000)])
def test_a_text_at_the_limit_written_in_lines_is_kept(client: FlaskClient, auth: Auth, session: Session,
                                                     world: World, page: str, field: str, limit: int) -> None:
    """The page's counter and maxlength count a line break as one character; the browser sends
    two (CRLF): a need or a presentation at the limit, written in lines, used to come back
    « trop long » and was not saved."""
    line = "Nous cherchons une personne pour animer un atelier de couture le mercredi."
    typed = "\n".join([line] * (limit // (len(line) + 1)))
    typed += "\n" + "x" * (limit - len(typed) - 1)
    assert len(typed) == limit
    auth.login(world.member.email or "")
    form = need_form("Atelier couture", typed) if page == NEW else {field: typed}
    form[field] = typed.replace("\n", "\r\n")
    done = auth.post(page, form, token_from=page, follow_redirects=True).get_data(as_text=True)  # type: ignore[attr-defined]
    assert "10000 caractères" not in done and "4000 caractères" not in done
    session.expire_all()
    if page == NEW:
        assert session.exec(select(Need).where(Need.title == "Atelier couture")).one().description == typed
    else:
        assert world.association.description == typed


def test_a_need_with_as_many_yeses_as_it_asked_for_gets_no_more_proposals(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    """« Combien de personnes : 1 » was only shown: after the one yes, Relais kept proposing the
    need to new people, and a second approved person could say yes and be told « La structure va
    vous contacter » for a place taken."""
    from web.services.proposals import worker_proposal
    from web.services.review import answer, propose_and_approve

    text = "Je fais de la couture et des retouches."
    awa = add_resident(session, world, "Awa", text)
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier de couture.", people_wanted=1), date.today())
    binta = add_resident(session, world, "Binta", text)  # proposed by the matcher: the need wants people
    assert binta.resident.id in {m.resident_id for m in session.exec(select(Match)).all()}
    dina = add_resident(session, world, "Dina", text)
    session.exec(delete(Match))
    session.commit()
    store_proposals(session, [Proposal(need.id or 0, p.resident.id or 0, 0.5, {}) for p in (awa, binta)],
                    Direction.NEED_TO_RESIDENT)
    for person in (awa, binta):
        approve(session, world.worker_a, session.exec(select(Match).where(
            Match.resident_id == person.resident.id)).one())
    picked = propose_and_approve(session, world.worker_a, matching, need, dina.resident, date.today())

    def says_yes(person: CreatedResident) -> None:
        login = session.exec(select(User).where(User.resident_id == person.resident.id)).one()
        hers = session.exec(select(Match).where(Match.resident_id == person.resident.id)).one()
        answer(session, login, hers, True)

    says_yes(awa)
    session.expire_all()
    # Binta's approval (the matcher's) goes, her worker told why; Dina, the worker's own pick, stays
    # but her yes is refused: the place is taken.
    assert {m.resident_id: m.status for m in session.exec(select(Match)).all()} == {
        awa.resident.id: MatchStatus.ACCEPTED, dina.resident.id: MatchStatus.APPROVED}
    told = session.exec(select(Notification.text).where(Notification.kind == "withdrawn",
                                                        Notification.user_id == world.worker_a.id)).all()
    assert told == ["« Atelier couture » a trouvé toutes les personnes demandées : la proposition validée "
                    "pour Binta est retirée avant sa réponse."]
    with pytest.raises(ServiceError, match="Les places sont déjà prises pour cette fois"):
        says_yes(dina)
    assert session.get(Match, picked.id).status == MatchStatus.APPROVED  # type: ignore[union-attr]
    chloe = add_resident(session, world, "Chloé", text)  # the matcher proposes her nothing
    assert not session.exec(select(Match).where(Match.resident_id == chloe.resident.id)).all()
    with pytest.raises(ServiceError, match="déjà toutes les personnes demandées"):
        worker_proposal(session, matching, need, chloe.resident, date.today())
    auth.login(world.member.email or "")
    page = client.get(f"/structure/besoins/{need.id}").get_data(as_text=True)
    assert "une personne a dit oui : <strong>complet</strong>, Relais ne propose plus personne." in page


def test_two_yeses_at_once_for_one_place_take_it_once(session: Session, world: World) -> None:
    """Each yes checked the count before the other had written it: both went through."""
    from web.extensions import db
    from web.services.review import answer

    people = [add_resident(session, world, name, "Je couds.") for name in ("Awa", "Binta")]
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier de couture.", people_wanted=1), date.today())
    session.exec(delete(Match))
    session.commit()
    store_proposals(session, [Proposal(need.id or 0, p.resident.id or 0, 0.5, {}) for p in people],
                    Direction.NEED_TO_RESIDENT)
    for match in session.exec(select(Match)).all():
        approve(session, world.worker_a, match)

    def says_yes(resident_id: int) -> str:
        with db.session() as mine:
            login = mine.exec(select(User).where(User.resident_id == resident_id)).one()
            hers = mine.exec(select(Match).where(Match.resident_id == resident_id)).one()
            try:
                answer(mine, login, hers, True)
            except ServiceError as exc:
                return str(exc)
            return "oui"

    said = at_once(*[lambda rid=p.resident.id: says_yes(rid or 0) for p in people])
    assert said.count("oui") == 1
    session.expire_all()
    assert [m.status for m in session.exec(select(Match)).all()] == [MatchStatus.ACCEPTED]


def test_what_a_need_does_not_ask_is_no_sentence_to_match(session: Session, world: World) -> None:
    """« Il ne s'agit ni de soins ni de ménage » was quoted beside a cleaner's « le ménage, je fais
    ça très bien » as the reason to propose her; a relative clause's « ne » is the need's task."""
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Visites aux aînés", description="Rendre visite à des personnes âgées qui ne sortent plus. "
        "Il ne s'agit ni de soins ni de ménage."), date.today())
    texts = [st.text for st in session.exec(select(NeedStatement).where(NeedStatement.need_id == need.id))]
    assert texts == ["Visites aux aînés", "Rendre visite à des personnes âgées qui ne sortent plus"]
