"""The whole story with Flask's test client: profile → need → proposals → review → answer."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from sqlmodel import Session, select

from models import AuditEvent, Match, MatchStatus, Need, Resident, SkillStatement
from tests.conftest import Auth, World, need_form, resident_form

SEAMSTRESS = ("Moi je coud depuis toute petite, c'est ma mère qui m'a appris au pays. "
              "Je fais les ourlets et je retouche les robes pour toutes les voisines. "
              "Je parle turc et un peu kurde.")
MECHANIC = ("J'ai été mécanicien pendant trente ans. Je répare les voitures, les mobylettes "
            "et les vélos des gamins du quartier.")
SEWING_NEED = ("Atelier couture pour les femmes du quartier. Nous cherchons une personne qui sait "
               "coudre à la machine et faire des retouches pour animer l'atelier le mercredi "
               "après-midi à la Maison des projets.")
CODE = re.compile(r'data-testid="access-code">([A-Z0-9]{4}-[A-Z0-9]{4})<')


def create_resident(auth: Auth, world: World, declaration: str, **overrides: object) -> str:
    """Create a profile through the form; return the access code shown to the worker."""
    response = auth.post("/accompagnement/residents/nouveau",
                         resident_form(declaration, world.tilleuls, **overrides),
                         token_from="/accompagnement/residents/nouveau", follow_redirects=True)
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    found = CODE.search(page)
    assert found, page
    # Shown once: reloading the page does not show it again, nor create the person twice.
    assert "access-code" not in auth.client.get(response.request.path).get_data(as_text=True)  # type: ignore[attr-defined]
    return found.group(1)


def test_whole_story(client: FlaskClient, auth: Auth, world: World, session: Session) -> None:
    # 1. A social worker records two residents, with consent, in their own words.
    auth.login(world.worker_a.email or "")
    fatma_code = create_resident(auth, world, SEAMSTRESS)
    create_resident(auth, world, MECHANIC, first_name="Antonio", last_initial="R",
                    languages=["pt", "fr"])
    fatma = session.exec(select(Resident).where(Resident.first_name == "Fatma")).one()
    assert fatma.organisation_id == world.centre_a.id
    assert {"tr", "ku"} <= set(fatma.languages)  # "je parle turc et un peu kurde"
    statements = session.exec(select(SkillStatement).where(
        SkillStatement.resident_id == fatma.id)).all()
    assert len(statements) >= 3
    assert statements[0].text.startswith("Moi je coud")  # shown in her own spelling
    auth.logout()

    # 2. An association member posts a need.
    auth.login(world.member.email or "")
    response = auth.post("/structure/besoins/nouveau",
                         need_form("Animer l'atelier couture", SEWING_NEED),
                         token_from="/structure/besoins/nouveau")
    assert response.status_code == 302  # type: ignore[attr-defined]
    need = session.exec(select(Need)).one()
    # The association sees no candidate before a social worker has reviewed.
    page = client.get(f"/structure/besoins/{need.id}").get_data(as_text=True)
    assert "Fatma" not in page
    auth.logout()

    # 3. Relais proposed matches, need → residents, with a reason in French.
    proposals = session.exec(select(Match).where(Match.need_id == need.id)
                             .order_by(Match.score.desc())).all()  # type: ignore[attr-defined]
    assert proposals and proposals[0].resident_id == fatma.id
    assert proposals[0].status == MatchStatus.PROPOSED
    why = proposals[0].explanation["pairs"][0]
    assert why["resident_text"] and why["need_text"] and 0 < why["similarity"] <= 1

    # 4. The social worker reviews: approves Fatma, rejects the other with a reason.
    auth.login(world.worker_a.email or "")
    desk = client.get("/accompagnement/propositions").get_data(as_text=True)
    assert "rejoint" in desk and "ressemblance" in desk and "Animer l&#39;atelier couture" in desk
    response = auth.post(f"/accompagnement/propositions/{proposals[0].id}/valider", {})
    assert response.status_code == 302  # type: ignore[attr-defined]
    others = [m for m in proposals[1:]]
    for other in others:
        auth.post(f"/accompagnement/propositions/{other.id}/refuser",
                  {"reason_code": "schedule", "reason_text": "travaille le mercredi"})
    session.expire_all()
    assert session.get(Match, proposals[0].id).status == MatchStatus.APPROVED  # type: ignore[union-attr]
    for other in others:
        rejected = session.get(Match, other.id)
        assert rejected is not None and rejected.status == MatchStatus.REJECTED
        assert rejected.rejection_code == "schedule"
        assert rejected.rejection_note == "travaille le mercredi"
    auth.logout()

    # 5. The resident logs in with her code and sees the approved opportunity only.
    auth.code_login(fatma_code.lower().replace("-", " "))  # typed loosely on a phone
    page = client.get("/moi/").get_data(as_text=True)
    assert "Animer l&#39;atelier couture" in page
    assert "Oui, ça m'intéresse" in page
    response = auth.post(f"/moi/propositions/{proposals[0].id}/oui", {"comment": "avec plaisir"},
                         token_from="/moi/")
    assert response.status_code == 302  # type: ignore[attr-defined]
    session.expire_all()
    assert session.get(Match, proposals[0].id).status == MatchStatus.ACCEPTED  # type: ignore[union-attr]
    auth.logout()

    # The association now sees her, by first name and initial only.
    auth.login(world.member.email or "")
    page = client.get(f"/structure/besoins/{need.id}").get_data(as_text=True)
    assert "Fatma Y." in page and "a dit oui" in page
    assert "Antonio" not in page

    # Everything above left an audit trail.
    actions = {e.action for e in session.exec(select(AuditEvent)).all()}
    assert {"resident.create", "consent.record", "need.create", "match.approve", "match.reject",
            "match.accept", "login", "login.code"} <= actions


def test_resident_to_needs_direction(client: FlaskClient, auth: Auth, world: World,
                                     session: Session) -> None:
    """A profile created after the need is proposed for it (resident → needs)."""
    auth.login(world.member.email or "")
    auth.post("/structure/besoins/nouveau", need_form("Atelier couture", SEWING_NEED),
              token_from="/structure/besoins/nouveau")
    auth.logout()
    auth.login(world.worker_a.email or "")
    create_resident(auth, world, SEAMSTRESS)
    match = session.exec(select(Match)).one()
    assert match.direction == "resident_to_need"
    page = client.get(f"/accompagnement/residents/{match.resident_id}").get_data(as_text=True)
    assert "Atelier couture" in page and "à examiner" in page


def test_negated_statement_is_never_matched(auth: Auth, world: World, session: Session) -> None:
    auth.login(world.worker_a.email or "")
    create_resident(auth, world, "Je ne sais pas conduire. Je garde les enfants des voisins.",
                    first_name="Malika")
    auth.logout()
    auth.login(world.member.email or "")
    auth.post("/structure/besoins/nouveau",
              need_form("Chauffeur", "Nous cherchons une personne qui sait conduire une camionnette "
                        "pour livrer les colis."), token_from="/structure/besoins/nouveau")
    malika = session.exec(select(Resident)).one()
    negated = session.exec(select(SkillStatement).where(SkillStatement.negated)).one()
    assert negated.text == "Je ne sais pas conduire"
    for match in session.exec(select(Match).where(Match.resident_id == malika.id)).all():
        assert all("conduire" not in e["resident_text"] for e in match.explanation["pairs"])
