"""The audit journal: before/after of profile changes, views by associations, reviews, exports,
erasures; never free text about a person; readable by admins only, filtered and paginated."""

from __future__ import annotations

import html
import json
import re
from datetime import date

from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import AuditEvent, Direction, Match, MatchStatus, User
from tests.conftest import Auth, World, add_resident
from web.extensions import matching
from web.services.audit import changes, record
from web.services.needs import NeedInput, create_need
from web.services.privacy import create_request, erase_resident
from web.services.profiles import update_declaration
from web.services.proposals import Proposal, store_proposals
from web.services.review import answer, approve, reject


def _events(session: Session, action: str) -> list[AuditEvent]:
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)
                             .order_by(AuditEvent.id)).all())  # type: ignore[arg-type]


def test_changes_keeps_only_what_changed() -> None:
    assert changes({"a": 1, "b": [1]}, {"a": 1, "b": [1, 2], "c": 3}) == {
        "b": {"before": [1], "after": [1, 2]}, "c": {"before": None, "after": 3}}


def test_profile_changes_are_journaled_with_before_and_after_and_shown_as_history(
        client: FlaskClient, auth: Auth, session: Session, world: World) -> None:
    awa = add_resident(session, world, "Awa", "Je fais de la couture.", languages=["fr"]).resident
    created = _events(session, "resident.create")[0]
    first_version = created.details["changes"]["declaration_id"]["after"]
    assert created.details["changes"]["languages"] == {"before": None, "after": ["fr"]}
    update_declaration(session, matching, world.worker_a, awa,
                       "Je cuisine pour quarante personnes et je parle arabe et turc.")
    update = _events(session, "declaration.update")[0]
    assert update.actor_id == world.worker_a.id and update.object_id == awa.id
    assert update.details["changes"]["languages"] == {"before": ["fr"], "after": ["fr", "ar", "tr"]}
    assert update.details["changes"]["declaration_id"]["before"] == first_version
    assert update.details["changes"]["declaration_id"]["after"] != first_version
    assert "availability" not in update.details["changes"]  # unchanged fields are not listed

    auth.login(world.worker_a.email or "")
    page = client.get(f"/accompagnement/residents/{awa.id}").get_data(as_text=True)
    assert "Historique" in page and "Texte modifié" in page and "Profil créé" in page
    assert "langues" in page and "français → français, arabe, turc" in page and "worker.a" in page
    assert "Toutes les versions du texte (2)" in page
    assert "Je fais de la couture." in page and "quarante personnes" in page


def test_association_views_reviews_and_answers_are_journaled(client: FlaskClient, auth: Auth,
                                                             session: Session, world: World) -> None:
    today = date.today()
    awa = add_resident(session, world, "Awa", "Je fais de la couture.").resident
    binta = add_resident(session, world, "Binta", "Je fais des gâteaux.").resident
    need, _ = create_need(session, matching, world.member, NeedInput(
        title="Atelier couture", description="Animer un atelier couture."), today)
    store_proposals(session, [Proposal(need.id or 0, r.id or 0, 0.5, {}) for r in (awa, binta)],
                    Direction.NEED_TO_RESIDENT)
    m_awa, m_binta = (session.exec(select(Match).where(Match.resident_id == r.id)).one()
                      for r in (awa, binta))
    approve(session, world.worker_a, m_awa)
    reject(session, world.worker_a, m_binta, "busy", "Elle travaille chez Madame Durand.")
    assert [e.object_id for e in _events(session, "match.approve")] == [m_awa.id]
    rejection = _events(session, "match.reject")[0]
    assert rejection.details == {"code": "busy", "has_note": True}  # the note stays on the proposal

    auth.login(world.member.email or "")
    assert client.get(f"/structure/besoins/{need.id}").status_code == 200
    views = _events(session, "profile.view")
    assert [(e.actor_id, e.object_type, e.object_id, e.details) for e in views] == [
        (world.member.id, "resident", awa.id, {"need_id": need.id})]  # approved candidates only
    # The follow-up page (the contact, after a yes) is a look at the profile too; the worker's is not.
    assert client.get(f"/suivi/propositions/{m_awa.id}").status_code == 200
    auth.logout()
    auth.login(world.worker_a.email or "")
    assert client.get(f"/suivi/propositions/{m_awa.id}").status_code == 200
    views = _events(session, "profile.view")
    assert [(e.actor_id, e.object_id, e.details) for e in views] == [
        (world.member.id, awa.id, {"need_id": need.id})] * 2


def test_audit_details_never_hold_free_text_about_the_person(session: Session, world: World) -> None:
    secrets = ["Zéphyrine", "ZORGLUB", "NOTE-SECRETE", "COMMENTAIRE-SECRET", "MESSAGE-SECRET"]
    person = add_resident(session, world, "Zéphyrine", "Je répare des vélos ZORGLUB.", initial="Q")
    resident = person.resident
    update_declaration(session, matching, world.worker_a, resident, "Je répare des motos ZORGLUB.")
    needs = [create_need(session, matching, world.member, NeedInput(title=t, description=t + "."),
                         date.today())[0] for t in ("Atelier vélo", "Atelier moto")]
    store_proposals(session, [Proposal(n.id or 0, resident.id or 0, 0.5, {}) for n in needs],
                    Direction.NEED_TO_RESIDENT)
    first, second = session.exec(select(Match).where(Match.resident_id == resident.id)).all()
    assert first.status == second.status == MatchStatus.PROPOSED
    reject(session, world.worker_a, first, "other", "NOTE-SECRETE")
    approve(session, world.worker_a, second)
    login = session.exec(select(User).where(User.resident_id == resident.id)).one()
    answer(session, login, second, accept=False, comment="COMMENTAIRE-SECRET")
    create_request(session, login, resident, "change", "MESSAGE-SECRET")
    erase_resident(session, matching, world.worker_a, resident, "worker")
    details = json.dumps([e.details for e in session.exec(select(AuditEvent)).all()], ensure_ascii=False)
    assert [s for s in secrets if s in details] == []
    assert "resident.erase" in {e.action for e in session.exec(select(AuditEvent)).all()}


def test_the_journal_is_filtered_and_paginated_for_admins(client: FlaskClient, auth: Auth,
                                                          session: Session, world: World) -> None:
    for i in range(60):
        record(session, world.worker_a, "resident.export", "resident", 1000 + i % 3, format="json")
    record(session, world.worker_b, "need.update", "need", 7, fields=["title"])
    session.commit()
    auth.login(world.admin.email or "")
    page = client.get("/admin/journal").get_data(as_text=True)
    assert "62 événement(s)" in page and "Page 1 sur 2" in page  # + the admin's login
    assert len(re.findall(r'data-testid="event-', page)) == 50
    assert "need.update" in page  # newest first
    # The actor's role in words (the action stays a code: the filter takes it).
    assert "(travailleur·se social·e)" in html.unescape(page) and "(social_worker)" not in page
    second = client.get("/admin/journal?page=2").get_data(as_text=True)
    assert len(re.findall(r'data-testid="event-', second)) == 12 and "Page 2 sur 2" in second

    mine = client.get("/admin/journal?object_type=resident&object_id=1001").get_data(as_text=True)
    assert "20 événement(s)" in mine and "need.update" not in mine
    by_actor = client.get(f"/admin/journal?actor_id={world.worker_b.id}").get_data(as_text=True)
    assert "1 événement(s)" in by_actor and "worker.b" in by_actor
    by_action = client.get("/admin/journal?action=need.").get_data(as_text=True)
    assert "1 événement(s)" in by_action
    assert client.get("/admin/journal?page=999&object_id=abc").status_code == 200  # clamped, ignored
    # Reading the journal changes nothing in it.
    assert len(session.exec(select(AuditEvent)).all()) == 62
